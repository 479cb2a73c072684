"""Engagement background work: pulses."""

from __future__ import annotations
