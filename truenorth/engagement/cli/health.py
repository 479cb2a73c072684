"""Engagement commands: health."""

from __future__ import annotations
