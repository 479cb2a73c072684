"""Engagement background work: briefs."""

from __future__ import annotations
