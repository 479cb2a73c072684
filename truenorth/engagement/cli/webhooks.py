"""Engagement commands: webhooks."""

from __future__ import annotations
