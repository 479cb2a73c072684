"""Engagement models: mail."""

from __future__ import annotations

__all__: list[str] = []
