"""Engagement models: pulses."""

from __future__ import annotations

__all__: list[str] = []
