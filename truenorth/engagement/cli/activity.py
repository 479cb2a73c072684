"""Engagement commands: activity."""

from __future__ import annotations
