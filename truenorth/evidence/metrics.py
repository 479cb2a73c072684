"""Metric definitions: which events count for a unit, how they aggregate per unit, and a covariate.

Definitions are plain frozen dataclasses, validated when built, so a bad or hostile definition is refused
before any SQL exists. The only free text a user writes is an optional ``where`` predicate: it is parsed
with SQLGlot and must be a single expression over the events table's ``name`` and ``value`` columns built
from comparisons, arithmetic, ``AND``/``OR``/``NOT``, ``IN``, ``BETWEEN``, ``IS NULL`` and literals —
no functions, subqueries, statements or other tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from truenorth.core.errors import ValidationFailed

Aggregation = Literal["count", "sum", "mean", "proportion", "ratio"]
DenominatorAggregation = Literal["count", "sum"]
AGGREGATIONS: tuple[str, ...] = ("count", "sum", "mean", "proportion", "ratio")

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:\-/ ]{1,100}$")
MAX_DAYS = 3650
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


@dataclass(frozen=True)
class Selection:
    """The events that count for a unit: one of ``events`` (names), optionally filtered by ``where``,
    at or after the unit's first exposure and, with ``window_days``, before exposure + that many days."""

    events: tuple[str, ...]
    where: str | None = None
    window_days: int | None = None

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
    - ``covariate_days``: the same per-unit quantity over that many days *before* exposure, for CUPED
      (count, sum and proportion only).
    """

    name: str
    aggregation: Aggregation
    select: Selection
    denominator: Denominator | None = None
    covariate_days: int | None = None
    description: str = field(default="", compare=False)

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


def _selection(data: Mapping[str, Any], where: str) -> Selection:
    events = data.get("events", data.get("event"))
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list):
        raise MetricError("events must be a name or a list of names", field=f"{where}.events")
    predicate = data.get("where")
    if predicate is not None and not isinstance(predicate, str):
        raise MetricError("where must be a string", field=f"{where}.where")
    return Selection(events=tuple(events), where=predicate, window_days=data.get("window_days"))


_METRIC_KEYS = {
    "name",
    "aggregation",
    "events",
    "event",
    "where",
    "window_days",
    "denominator",
    "covariate_days",
    "description",
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
