"""The duckdb connector (see truenorth.engines.base)."""

from __future__ import annotations
