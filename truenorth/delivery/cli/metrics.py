"""Delivery commands: metrics."""

from __future__ import annotations
