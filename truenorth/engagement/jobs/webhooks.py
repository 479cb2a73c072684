"""Engagement background work: webhooks."""

from __future__ import annotations
