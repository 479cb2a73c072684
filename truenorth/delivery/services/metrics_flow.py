"""Delivery metrics, flow: the items' histories loaded and replayed, then flow.flow_metrics' figures over a
window. Re-exported by `services.metrics`.

Two ways to load, the same figures:

- `item_table(sources, end)` (what the pages, the API, the jobs and forecasts use): the items (one query)
  and their transitions (one query, ordered by item and time) are streamed with `.iterator()`, and each
  item is replayed as soon as its transitions are read (`flow_arrays.ItemTable`): what stays in memory is
  a few numbers an item, never the transitions as Python objects (1,000,000 transitions: tens of MB
  rather than hundreds).
- `histories(sources, end)`: every item as a `flow.ItemHistory` (the reference, for small scopes that
  need the objects, e.g. the weekly feed).

`flow_of` takes either and computes one run per distinct state mapping, merged (`_merge`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, F, Func, QuerySet
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.constants import MULTI

from truenorth.delivery import flow, flow_arrays
from truenorth.delivery.models import DeliveryItem, StateTransition
from truenorth.delivery.services.metrics_load import CHUNK, Scope, SourceRow, sources_in
from truenorth.orgs.models import Membership


def _mapping(raw: str) -> flow.StateMapping:
    try:
        return flow.StateMapping.from_config(json.loads(raw))
    except (ValueError, TypeError, AttributeError):  # a malformed mapping falls back to the defaults
        return flow.StateMapping.from_config({})


def histories(sources: list[SourceRow], end: dt.datetime) -> dict[int, list[flow.ItemHistory]]:
    """Item histories up to `end` by source id (two queries, streamed)."""
    ids = [s.id for s in sources]
    if not ids:
        return {}
    steps: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
    transitions = (
        StateTransition.objects.filter(item__source_id__in=ids, at__lte=end)
        .order_by()
        .values_list("item_id", "at", "to_state")
    )
    for item_id, at, state in transitions.iterator(chunk_size=CHUNK):
        steps[item_id].append((at, state))
    groups: dict[int, list[flow.ItemHistory]] = defaultdict(list)
    items = (
        DeliveryItem.objects.filter(source_id__in=ids, created_at__lte=end)
        .order_by()
        .values_list("pk", "source_id", "external_id", "created_at", "item_type")
    )
    for pk, source_id, external_id, created_at, item_type in items.iterator(chunk_size=CHUNK):
        groups[source_id].append(flow.ItemHistory(external_id, created_at, steps.pop(pk, []), item_type))
    return groups


class EpochMicros(Func):
    """A datetime column as integer microseconds since the epoch, computed by the database (exact), so
    that a million rows are not each turned into a Python datetime. SQLite stores Django's datetimes as
    UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]"; PostgreSQL's EXTRACT(EPOCH ...) of a timestamptz is UTC."""

    output_field = BigIntegerField()

    def __init__(self, column: str) -> None:
        super().__init__(F(column))

    def as_sqlite(self, compiler: SQLCompiler, connection: Any, **extra_context: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"(CAST(strftime('%%s', substr({sql}, 1, 19)) AS INTEGER) * 1000000"
            f" + CASE WHEN length({sql}) > 19 THEN CAST(substr({sql}, 21, 6) AS INTEGER) ELSE 0 END)",
            [*params, *params, *params],
        )

    def as_postgresql(self, compiler: SQLCompiler, connection: Any, **extra_context: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST(ROUND(EXTRACT(EPOCH FROM {sql}) * 1000000) AS BIGINT)", list(params)


def _rows(qs: QuerySet[Any, Any]) -> Iterator[tuple[Any, ...]]:
    """The queryset's rows as the database driver returns them, streamed CHUNK rows a fetch (a server-side
    cursor on PostgreSQL, as `.iterator()`), without the ORM's per-value conversions: only for queries
    whose columns need none (integers, text, EpochMicros)."""
    compiler = qs.query.get_compiler(using=qs.db)
    chunks = compiler.execute_sql(MULTI, chunked_fetch=True, chunk_size=CHUNK)
    for chunk in chunks or ():
        yield from chunk


def item_table(sources: list[SourceRow], end: dt.datetime) -> flow_arrays.ItemTable:
    """The items created by `end` and their transitions up to `end`, each item replayed with its source's
    state mapping (two queries, streamed side by side: items by primary key, transitions by item, time
    and primary key, so ties keep the order they were stored in)."""
    table = flow_arrays.ItemTable()
    ids = [s.id for s in sources]
    if not ids:
        return table
    shared: dict[str, flow_arrays.Categories] = {}
    categories = {
        s.id: shared.setdefault(s.mapping, flow_arrays.Categories(_mapping(s.mapping))) for s in sources
    }
    items = (
        DeliveryItem.objects.filter(source_id__in=ids, created_at__lte=end)
        .order_by("pk")
        .values_list("pk", "source_id", "external_id", "created_at", "item_type")
    )
    transitions = (
        StateTransition.objects.filter(item__source_id__in=ids, at__lte=end)
        .order_by("item_id", "at", "pk")
        .values_list("item_id", "at", "to_state")
    )
    item_rows: Iterator[tuple[Any, ...]]
    if connection.vendor in ("sqlite", "postgresql"):  # times as microseconds computed by the database
        item_rows = _rows(
            items.annotate(us=EpochMicros("created_at")).values_list(
                "pk", "source_id", "external_id", "us", "item_type"
            )
        )
        steps_rows = _rows(
            transitions.annotate(us=EpochMicros("at")).values_list("item_id", "us", "to_state")
        )
    else:
        micros = flow_arrays.micros
        item_rows = (
            (pk, src, ext, micros(at), kind) for pk, src, ext, at, kind in items.iterator(chunk_size=CHUNK)
        )
        steps_rows = ((pk, micros(at), state) for pk, at, state in transitions.iterator(chunk_size=CHUNK))
    add = table.add
    item = next(item_rows, None)
    current = item[0] if item is not None else None
    steps: list[tuple[int, str]] = []
    for item_id, at, state in steps_rows:
        if item_id != current:
            while item is not None and item[0] < item_id:  # the items before this one are complete
                pk, source_id, external_id, created, item_type = item
                add(pk, source_id, external_id, created, steps, categories[source_id], item_type or "")
                steps = []
                item = next(item_rows, None)
            current = item[0] if item is not None else None
            if item_id != current:  # an item created after `end`
                continue
        steps.append((at, state))
    while item is not None:
        pk, source_id, external_id, created, item_type = item
        add(pk, source_id, external_id, created, steps, categories[source_id], item_type or "")
        steps = []
        item = next(item_rows, None)
    return table


def _merge(parts: list[flow.FlowMetrics]) -> flow.FlowMetrics:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    completed = sorted((row for p in parts for row in p.completed), key=lambda r: (r[1], r[0]))
    leads = sorted((row for p in parts for row in p.lead_times), key=lambda r: (r[1], r[0]))
    active = sum(p.active_days for p in parts)
    waiting = sum(p.waiting_days for p in parts)
    return flow.FlowMetrics(
        cycle_time_days=flow.percentiles([c for _, _, c in completed]),
        lead_time_days=flow.percentiles([c for _, _, c in leads]),
        completed=completed,
        throughput_per_week=[
            (week, sum(p.throughput_per_week[i][1] for p in parts))
            for i, (week, _) in enumerate(first.throughput_per_week)
        ],
        daily_throughput=[sum(day) for day in zip(*(p.daily_throughput for p in parts), strict=True)],
        wip=sum(p.wip for p in parts),
        ages=sorted((row for p in parts for row in p.ages), key=lambda r: (-r[2], r[0])),
        flow_efficiency=active / (active + waiting) if active + waiting > 0 else None,
        cfd=[
            (day, {c: sum(p.cfd[i][1][c] for p in parts) for c in flow.CATEGORIES})
            for i, (day, _) in enumerate(first.cfd)
        ],
        never_started=sum(p.never_started for p in parts),
        lead_times=leads,
        active_days=active,
        waiting_days=waiting,
    )


def flow_for(
    membership: Membership,
    *,
    product_id: int | None = None,
    source_id: int | None = None,
    team_id: int | None = None,
    start: dt.datetime,
    end: dt.datetime,
) -> flow.FlowMetrics:
    """Flow metrics of the scope's items over [start, end] (flow.flow_metrics per state mapping)."""
    sources = sources_in(membership, Scope(product_id, source_id, team_id))
    return flow_of(sources, item_table(sources, end), start=start, end=end)


def flow_of(
    sources: list[SourceRow],
    items: dict[int, list[flow.ItemHistory]] | flow_arrays.ItemTable,
    *,
    start: dt.datetime,
    end: dt.datetime,
) -> flow.FlowMetrics:
    """flow.flow_metrics over these sources' items, one run per distinct state mapping, merged (from an
    `item_table`, the same figures computed over its arrays)."""
    if isinstance(items, flow_arrays.ItemTable):
        ids: dict[str, list[int]] = defaultdict(list)
        for source in sources:
            ids[source.mapping].append(source.id)
        groups = [flow_arrays.Group(_mapping(raw), group) for raw, group in sorted(ids.items())]
        return flow_arrays.flow_metrics(items, groups, start=start, end=end)
    by_mapping: dict[str, list[flow.ItemHistory]] = defaultdict(list)
    for source in sources:
        by_mapping[source.mapping].extend(items.get(source.id, ()))
    runs = [(raw, group) for raw, group in sorted(by_mapping.items()) if group]
    if not runs:
        return flow.flow_metrics([], flow.StateMapping.from_config({}), start=start, end=end)
    return _merge([flow.flow_metrics(group, _mapping(raw), start=start, end=end) for raw, group in runs])
