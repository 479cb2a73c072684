"""Engagement background work: activity."""

from __future__ import annotations
