"""Delivery commands: sources."""

from __future__ import annotations
