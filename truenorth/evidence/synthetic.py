"""Synthetic experiment data with known planted effects, generated in vectorised chunks (numpy only;
writing Parquet needs pyarrow, a development dependency).

Each unit has an activity level ``q`` (gamma, mean 1). Page views arrive at ``q · views_per_day`` per day
in the pre period (``pre_days`` before exposure) and the post period (``post_days`` after), x(1 +
``page_view_lift``) in treatment. A unit converts (buys) after exposure with probability
``base_conversion · q`` (x(1 + ``conversion_lift``) in treatment), making 1 + Poisson(0.5) purchases
within ``conversion_window_days``; the same process without lift runs in the pre period, so the
pre-period metric is a covariate correlated with the outcome (through ``q``). Purchase values are
log-normal with mean ``mean_order_value``, x (1 + revenue_lift) / (1 + conversion_lift) in treatment, so
revenue per user moves by exactly ``revenue_lift``. The relative effects each metric should recover are
`Planted.true_lifts`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from truenorth.evidence.metrics import Denominator, Metric, Selection

EVENT_NAMES = ("page_view", "purchase")
START = np.datetime64("2026-01-01T00:00:00", "us")
DAY_US = 86_400_000_000
EXPERIMENT = "checkout"


@dataclass(frozen=True)
class Planted:
    """The generating process and its true effects."""

    base_conversion: float = 0.10
    conversion_lift: float = 0.03
    revenue_lift: float = 0.02
    page_view_lift: float = 0.015
    mean_order_value: float = 50.0
    views_per_day: float = 0.7
    pre_days: int = 14
    post_days: int = 14
    conversion_window_days: int = 7
    #: The share of units actually assigned to treatment (0.5 planned; change it to plant an SRM).
    treatment_share: float = 0.5

    def true_lifts(self) -> dict[str, float]:
        """Relative effect (treatment / control - 1) each of `standard_metrics` should recover."""
        return {
            "conversion": self.conversion_lift,
            "purchases": self.conversion_lift,
            "revenue": self.revenue_lift,
            "page_views": self.page_view_lift,
            "revenue_per_page_view": (1 + self.revenue_lift) / (1 + self.page_view_lift) - 1,
            # Each order's value is scaled so that revenue per user moves by exactly revenue_lift.
            "order_value": (1 + self.revenue_lift) / (1 + self.conversion_lift) - 1,
        }

    def events_per_unit(self) -> float:
        views = self.views_per_day * (self.pre_days + self.post_days)
        return views + 2 * self.base_conversion * 1.5


def standard_metrics(planted: Planted | None = None) -> list[Metric]:
    """The metrics the synthetic data plants effects in (also a sample metrics file's content)."""
    p = planted or Planted()
    purchase = Selection(("purchase",), window_days=p.conversion_window_days)
    views = Selection(("page_view",), window_days=p.post_days)
    return [
        Metric("conversion", "proportion", purchase, covariate_days=p.pre_days),
        Metric("purchases", "count", purchase),
        Metric("revenue", "sum", purchase, covariate_days=p.pre_days),
        Metric("page_views", "count", views, covariate_days=p.pre_days),
        Metric("revenue_per_page_view", "ratio", purchase, denominator=Denominator("count", views)),
        Metric("order_value", "mean", purchase),
    ]


Arrays = dict[str, npt.NDArray[Any]]


def generate_chunk(
    rng: np.random.Generator, first_unit: int, units: int, p: Planted
) -> tuple[Arrays, Arrays]:
    """Assignments and events for units ``first_unit ..< first_unit + units`` (columns as arrays; event
    ``name`` as codes into `EVENT_NAMES`, ``value`` NaN where the event has none)."""
    unit_id = np.arange(first_unit, first_unit + units, dtype=np.int64)
    treated = rng.random(units) < p.treatment_share
    exposed = START + rng.integers(0, 14 * DAY_US, units).astype("timedelta64[us]")
    q = rng.gamma(2.0, 0.5, units)
    assignments: Arrays = {
        "unit_id": unit_id,
        "variation": np.where(treated, "treatment", "control"),
        "first_exposure_at": exposed,
    }

    def spread(counts: npt.NDArray[np.int64], start_days: float, days: float) -> tuple[Any, Any]:
        owner = np.repeat(np.arange(units), counts)
        offset = (start_days * DAY_US + rng.random(owner.size) * days * DAY_US).astype(np.int64)
        return owner, exposed[owner] + offset.astype("timedelta64[us]")

    view_rate = q * p.views_per_day
    pre_views = rng.poisson(view_rate * p.pre_days)
    post_views = rng.poisson(view_rate * p.post_days * np.where(treated, 1 + p.page_view_lift, 1.0))
    conv = np.minimum(p.base_conversion * q, 1.0)
    post_buyer = rng.random(units) < conv * np.where(treated, 1 + p.conversion_lift, 1.0)
    pre_buyer = rng.random(units) < conv
    post_buys = np.where(post_buyer, 1 + rng.poisson(0.5, units), 0)
    pre_buys = np.where(pre_buyer, 1 + rng.poisson(0.5, units), 0)
    w = p.conversion_window_days
    parts = [
        (0, *spread(pre_views, -p.pre_days, p.pre_days)),
        (0, *spread(post_views, 0, p.post_days)),
        (1, *spread(pre_buys, -p.pre_days, p.pre_days)),
        (1, *spread(post_buys, 0, w)),
    ]
    owners = np.concatenate([o for _, o, _ in parts])
    sigma = 0.8
    value_multiplier = np.where(treated, (1 + p.revenue_lift) / (1 + p.conversion_lift), 1.0)
    values = []
    for i, (code, owner, _) in enumerate(parts):
        if code == 0:
            values.append(np.full(owner.size, np.nan))
        else:
            draw = p.mean_order_value * rng.lognormal(-(sigma**2) / 2, sigma, owner.size)
            # Only the post-period purchases (index 3) carry the treatment's revenue effect.
            values.append(draw * (value_multiplier[owner] if i == 3 else 1.0))
    events: Arrays = {
        "unit_id": unit_id[owners],
        "at": np.concatenate([t for _, _, t in parts]),
        "name": np.concatenate([np.full(o.size, c, dtype=np.int8) for c, o, _ in parts]),
        "value": np.concatenate(values),
    }
    return assignments, events


def generate(
    events: int, *, seed: int = 7, planted: Planted | None = None, chunk_units: int = 250_000
) -> Iterator[tuple[Arrays, Arrays]]:
    """About ``events`` events in chunks of ``chunk_units`` units (memory per chunk ~ 20 x chunk_units rows)."""
    p = planted or Planted()
    units = max(2, round(events / p.events_per_unit()))
    rng = np.random.default_rng(seed)
    for first in range(0, units, chunk_units):
        yield generate_chunk(rng, first, min(chunk_units, units - first), p)


def _tables(assignments: Arrays, events: Arrays) -> tuple[Any, Any]:
    import pyarrow as pa  # type: ignore[import-untyped]

    a = pa.table(
        {
            "unit_id": pa.array(assignments["unit_id"]),
            "experiment": pa.array(np.full(assignments["unit_id"].size, EXPERIMENT)),
            "variation": pa.array(assignments["variation"].astype(str)),
            "first_exposure_at": pa.array(assignments["first_exposure_at"]),
        }
    )
    names = pa.DictionaryArray.from_arrays(pa.array(events["name"]), pa.array(list(EVENT_NAMES)))
    value = events["value"]
    e = pa.table(
        {
            "unit_id": pa.array(events["unit_id"]),
            "at": pa.array(events["at"]),
            "name": names,
            "value": pa.array(value, mask=np.isnan(value)),
        }
    )
    return a, e


def write_parquet(
    directory: Path, events: int, *, seed: int = 7, planted: Planted | None = None
) -> tuple[int, int]:
    """Write ``assignments.parquet`` and ``events.parquet`` into ``directory``; returns (units, events)."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    directory.mkdir(parents=True, exist_ok=True)
    a_writer = e_writer = None
    n_units = n_events = 0
    try:
        for assignments, ev in generate(events, seed=seed, planted=planted):
            a, e = _tables(assignments, ev)
            if a_writer is None:
                a_writer = pq.ParquetWriter(directory / "assignments.parquet", a.schema)
                e_writer = pq.ParquetWriter(directory / "events.parquet", e.schema)
            assert e_writer is not None
            a_writer.write_table(a)
            e_writer.write_table(e)
            n_units += a.num_rows
            n_events += e.num_rows
    finally:
        if a_writer is not None:
            a_writer.close()
        if e_writer is not None:
            e_writer.close()
    return n_units, n_events


def create_postgres_tables(cursor: Any, schema: str) -> None:
    """Create ``schema.assignments`` and ``schema.events`` (``schema`` must be a plain identifier)."""
    from psycopg import sql

    s = sql.Identifier(schema)
    cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
    cursor.execute(
        sql.SQL(
            "CREATE TABLE {}.assignments (unit_id bigint, experiment text, variation text, first_exposure_at timestamp)"
        ).format(s)
    )
    cursor.execute(
        sql.SQL(
            "CREATE TABLE {}.events (unit_id bigint, at timestamp, name text, value double precision)"
        ).format(s)
    )


def copy_to_postgres(cursor: Any, schema: str, assignments: Arrays, events: Arrays) -> None:
    """Load one chunk with COPY (CSV written by pyarrow)."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv  # type: ignore[import-untyped]
    from psycopg import sql

    a, e = _tables(assignments, events)
    e = e.set_column(2, "name", e.column("name").cast(pa.string()))
    for table, name in ((a, "assignments"), (e, "events")):
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
        statement = sql.SQL("COPY {}.{} FROM STDIN (FORMAT csv)").format(
            sql.Identifier(schema), sql.Identifier(name)
        )
        with cursor.copy(statement) as copy:
            copy.write(buffer.getvalue())
