"""Engagement commands: mail."""

from __future__ import annotations
