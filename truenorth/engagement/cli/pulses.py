"""Engagement commands: pulses."""

from __future__ import annotations
