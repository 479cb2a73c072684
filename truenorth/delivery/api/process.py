"""API: delivery process (issue 12 part; empty until filled)."""

from __future__ import annotations

from ninja import Router

router = Router()
