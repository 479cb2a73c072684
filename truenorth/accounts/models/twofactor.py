"""Accounts models: twofactor (issue 13)."""

from __future__ import annotations
