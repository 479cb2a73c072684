"""Delivery services: process changes as experiments (issue 12 part; empty until filled)."""

from __future__ import annotations
