"""Delivery services: fetching from the GitHub REST API with a token (issue 12 part; empty until filled)."""

from __future__ import annotations
