"""Core's one table: the rate-limit counters of the database-backed shared cache (core/counters.py)."""

from __future__ import annotations

from django.db import models


class RateCounter(models.Model):
    """One fixed-window counter: hits of `counter_key` in the window ending at `expires` (Unix seconds).

    Written only by counters.py's one-statement upsert (atomic on SQLite and PostgreSQL); a row past its
    `expires` starts over at the next hit, and old rows are swept now and then."""

    counter_key = models.CharField(max_length=255, primary_key=True)
    count = models.BigIntegerField()
    expires = models.BigIntegerField(db_index=True)

    class Meta:
        db_table = "truenorth_rate_counter"

    def __str__(self) -> str:
        return f"{self.counter_key}: {self.count} until {self.expires}"
