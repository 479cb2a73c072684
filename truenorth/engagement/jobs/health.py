"""Engagement background work: health."""

from __future__ import annotations
