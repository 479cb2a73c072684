"""Engagement background work: mail."""

from __future__ import annotations
