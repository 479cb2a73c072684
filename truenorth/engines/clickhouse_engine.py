"""The clickhouse connector (see truenorth.engines.base)."""

from __future__ import annotations
