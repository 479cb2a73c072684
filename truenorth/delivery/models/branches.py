"""Delivery models: branches (issue 12 part; empty until filled)."""

from __future__ import annotations

__all__: list[str] = []
