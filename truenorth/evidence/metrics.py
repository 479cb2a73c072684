"""Metric definitions: which events count for a unit, how they aggregate per unit, and a covariate.

Definitions are plain frozen dataclasses, validated when built, so a bad or hostile definition is refused
before any SQL exists. The only free text a user writes is an optional ``where`` predicate: it is parsed
with SQLGlot and must be a single expression over the events table's ``name`` and ``value`` columns built
from comparisons, arithmetic, ``AND``/``OR``/``NOT``, ``IN``, ``BETWEEN``, ``IS NULL`` and literals —
no functions, subqueries, statements or other tables.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from truenorth.core.errors import ValidationFailed

Aggregation = Literal["count", "sum", "mean", "proportion", "ratio", "quantile"]
DenominatorAggregation = Literal["count", "sum"]
AGGREGATIONS: tuple[str, ...] = ("count", "sum", "mean", "proportion", "ratio", "quantile")

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:\-/ ]{1,100}$")
MAX_DAYS = 3650
MAX_DELAY_HOURS = MAX_DAYS * 24
#: The events-table columns a ``where`` predicate may use (logical names; `Tables` maps them).
PREDICATE_COLUMNS = frozenset({"name", "value"})
_ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Tuple,
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.In,
    exp.Between,
    exp.Is,
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
)


class MetricError(ValidationFailed):
    """A metric definition that cannot be compiled; ``field`` names the metric and attribute."""


def parse_predicate(text: str, where: str = "where") -> exp.Expression:
    """Parse and validate a ``where`` predicate; the result only references ``name`` and ``value``."""
    if len(text) > 1000:
        raise MetricError("the predicate is longer than 1000 characters", field=where)
    try:
        statements = sqlglot.parse(text, read="duckdb")
    except ParseError as exc:
        raise MetricError(
            f"the predicate is not valid SQL: {exc.errors[0]['description']}", field=where
        ) from None
    if len(statements) != 1 or statements[0] is None:
        raise MetricError("the predicate must be a single expression (no ';')", field=where)
    tree = statements[0]
    for node in tree.walk():
        if not isinstance(node, _ALLOWED_NODES):
            raise MetricError(
                f"the predicate may only compare the events' name and value with literals; "
                f"{node.key.upper()} is not allowed",
                field=where,
            )
        if isinstance(node, exp.Column):
            if node.table or node.name not in PREDICATE_COLUMNS:
                raise MetricError(
                    f"the predicate may only use the columns {sorted(PREDICATE_COLUMNS)}, not {node.sql()!r}",
                    field=where,
                )
    if not isinstance(tree, exp.Expression) or isinstance(tree, exp.Column | exp.Literal | exp.Null):
        raise MetricError("the predicate must be a condition such as `value > 10`", field=where)
    return tree


def _check_days(value: int | None, where: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise MetricError(f"must be a whole number of days from 1 to {MAX_DAYS}", field=where)


def _check_delay(value: int | None, window_days: int | None, where: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DELAY_HOURS:
        raise MetricError(f"must be a whole number of hours from 0 to {MAX_DELAY_HOURS}", field=where)
    if window_days is not None and value >= window_days * 24:
        raise MetricError(
            f"the delay ({value} h) must end before the conversion window ({window_days} days = "
            f"{window_days * 24} h after exposure)",
            field=where,
        )


def timestamp_text(value: object, where: str) -> str:
    """An exposure-window bound as ``YYYY-MM-DD HH:MM:SS`` (UTC, no zone): an ISO date or date-time
    (string, or a date/datetime as YAML gives); a time zone offset is converted to UTC."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and 8 <= len(value.strip()) <= 40:
        text = value.strip()
        try:
            moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise MetricError(
                f"{text[:40]!r} is not an ISO date or date-time (e.g. 2026-11-01 or 2026-11-01T12:00:00Z)",
                field=where,
            ) from None
    else:
        raise MetricError(
            "give an ISO date or date-time (e.g. 2026-11-01 or 2026-11-01T12:00:00Z)", field=where
        )
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    if not 1900 <= moment.year <= 9999:
        raise MetricError("the year must be from 1900 to 9999", field=where)
    return moment.replace(microsecond=0).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Selection:
    """The events that count for a unit: one of ``events`` (names), optionally filtered by ``where``,
    in the conversion window: at or after the unit's first exposure (+ ``delay_hours``) and, with
    ``window_days``, before exposure + that many days. Without either, every event from exposure on
    counts (the historic meaning)."""

    events: tuple[str, ...]
    where: str | None = None
    window_days: int | None = None
    delay_hours: int | None = None

    def validate(self, where: str) -> None:
        if isinstance(self.events, str) or not self.events:
            raise MetricError("name at least one event", field=f"{where}.events")
        for name in self.events:
            if not isinstance(name, str) or not EVENT_NAME.match(name):
                raise MetricError(
                    f"event name {name!r} may only contain letters, digits, space and _ . : - / (1-100)",
                    field=f"{where}.events",
                )
        _check_days(self.window_days, f"{where}.window_days")
        _check_delay(self.delay_hours, self.window_days, f"{where}.delay_hours")
        if self.where is not None:
            parse_predicate(self.where, f"{where}.where")


@dataclass(frozen=True)
class Denominator:
    """A ratio metric's denominator per unit: the count of events or the sum of their values."""

    aggregation: DenominatorAggregation
    select: Selection


@dataclass(frozen=True)
class Metric:
    """One metric of an experiment.

    - ``count``: events per unit; ``sum``: sum of their values per unit (units without events count 0).
    - ``proportion``: 1 if the unit had at least one such event (in the window), else 0.
    - ``mean``: the mean value per unit, over units that had such an event.
    - ``ratio``: sum of values (numerator) over ``denominator`` per unit, analysed by the delta method.
    - ``quantile``: the ``quantile`` level (0.5 for the median, 0.9 for p90) of the matching events'
      values, all events of a variation's units pooled (event level; NULL values left out), exact
      where the engine has an exact quantile (see `truenorth.evidence.compile.quantile_sql`).
    - ``covariate_days``: the same per-unit quantity over that many days *before* exposure, for CUPED
      (count, sum and proportion only).
    - ``exposure_start``/``exposure_end``: only units first exposed in [start, end) count for this
      metric (``YYYY-MM-DD HH:MM:SS``, UTC; either may be open); the others are left out of its n.
    """

    name: str
    aggregation: Aggregation
    select: Selection
    denominator: Denominator | None = None
    covariate_days: int | None = None
    description: str = field(default="", compare=False)
    quantile: float | None = None
    exposure_start: str | None = None
    exposure_end: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME.match(self.name):
            raise MetricError(
                f"metric name {str(self.name)[:60]!r} must be lower-case letters, digits and _ "
                "(starting with a letter, at most 40)",
                field="name",
            )
        where = self.name
        if self.aggregation not in AGGREGATIONS:
            raise MetricError(
                f"unknown aggregation {str(self.aggregation)!r}; choose one of {', '.join(AGGREGATIONS)}",
                field=f"{where}.aggregation",
            )
        self.select.validate(where)
        if self.aggregation == "ratio":
            if self.denominator is None:
                raise MetricError("a ratio metric needs a denominator", field=f"{where}.denominator")
            if self.denominator.aggregation not in ("count", "sum"):
                raise MetricError(
                    "a denominator is a count or a sum", field=f"{where}.denominator.aggregation"
                )
            self.denominator.select.validate(f"{where}.denominator")
        elif self.denominator is not None:
            raise MetricError("only a ratio metric has a denominator", field=f"{where}.denominator")
        _check_days(self.covariate_days, f"{where}.covariate_days")
        if self.covariate_days is not None and self.aggregation not in ("count", "sum", "proportion"):
            raise MetricError(
                "a pre-period covariate (CUPED) is supported for count, sum and proportion metrics",
                field=f"{where}.covariate_days",
            )
        if self.aggregation == "quantile":
            q = self.quantile
            if (
                isinstance(q, bool)
                or not isinstance(q, int | float)
                or not math.isfinite(q)
                or not 0.001 <= q <= 0.999
            ):
                raise MetricError(
                    "a quantile metric needs its level from 0.001 to 0.999 (0.5 median, 0.9 p90, 0.99 p99)",
                    field=f"{where}.quantile",
                )
            object.__setattr__(self, "quantile", float(q))
        elif self.quantile is not None:
            raise MetricError("only a quantile metric has a quantile level", field=f"{where}.quantile")
        for attr in ("exposure_start", "exposure_end"):
            value = getattr(self, attr)
            if value is not None:
                object.__setattr__(self, attr, timestamp_text(value, f"{where}.{attr}"))
        if (
            self.exposure_start is not None
            and self.exposure_end is not None
            and self.exposure_start >= self.exposure_end
        ):
            raise MetricError(
                f"the exposure window ends ({self.exposure_end}) before it starts ({self.exposure_start})",
                field=f"{where}.exposure_end",
            )


def _selection(data: Mapping[str, Any], where: str) -> Selection:
    events = data.get("events", data.get("event"))
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list):
        raise MetricError("events must be a name or a list of names", field=f"{where}.events")
    predicate = data.get("where")
    if predicate is not None and not isinstance(predicate, str):
        raise MetricError("where must be a string", field=f"{where}.where")
    return Selection(
        events=tuple(events),
        where=predicate,
        window_days=data.get("window_days"),
        delay_hours=data.get("delay_hours"),
    )


_METRIC_KEYS = {
    "name",
    "aggregation",
    "events",
    "event",
    "where",
    "window_days",
    "delay_hours",
    "denominator",
    "covariate_days",
    "description",
    "quantile",
    "exposure_start",
    "exposure_end",
}


def metric_from_dict(data: Mapping[str, Any]) -> Metric:
    """Build a metric from a mapping (one entry of a metrics YAML file); unknown keys are refused."""
    if not isinstance(data, Mapping):
        raise MetricError("each metric must be a mapping", field="metrics")
    name = str(data.get("name", ""))
    unknown = sorted(set(data) - _METRIC_KEYS)
    if unknown:
        raise MetricError(f"unknown keys {unknown}", field=name[:40] or "metrics")
    denominator = None
    if data.get("denominator") is not None:
        d = data["denominator"]
        if not isinstance(d, Mapping):
            raise MetricError("denominator must be a mapping", field=f"{name[:40]}.denominator")
        denominator = Denominator(
            aggregation=d.get("aggregation", "count"), select=_selection(d, f"{name[:40]}.denominator")
        )
    return Metric(
        name=name,
        aggregation=data.get("aggregation", "count"),
        select=_selection(data, name[:40]),
        denominator=denominator,
        covariate_days=data.get("covariate_days"),
        description=str(data.get("description", "")),
        quantile=data.get("quantile"),
        exposure_start=data.get("exposure_start"),
        exposure_end=data.get("exposure_end"),
    )


def metrics_from_dicts(items: Iterable[Mapping[str, Any]]) -> list[Metric]:
    """Build several metrics; names must be unique."""
    metrics = [metric_from_dict(item) for item in items]
    seen: set[str] = set()
    for m in metrics:
        if m.name in seen:
            raise MetricError(f"metric {m.name!r} is defined twice", field=m.name)
        seen.add(m.name)
    if not metrics:
        raise MetricError("define at least one metric", field="metrics")
    return metrics
