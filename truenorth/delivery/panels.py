"""Delivery panels on Vision pages (goal: forecast against the target date); registered in ready()."""

from __future__ import annotations
