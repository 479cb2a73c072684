"""Engagement commands: briefs."""

from __future__ import annotations
