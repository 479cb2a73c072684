"""Delivery services: forecasts attached to goals with target dates (issue 12 part; empty until filled)."""

from __future__ import annotations
