"""Where an experiment's raw data lives: the table/column mapping, in the one shape the web form, the
API, metric YAML (a top-level ``mapping:``) and the CLI flags share, and engine errors translated into
the mapping field to fix (no Django; mypy --strict).

Shape (every key optional; a missing one keeps today's default name)::

    mapping:
      assignments:            # one row per unit exposed to an experiment
        table: assignments    # a [schema.]table, or a .parquet/.csv file (DuckDB data sources)
        unit: unit_id
        variation: variation
        exposed_at: first_exposure_at
        experiment: experiment   # the column holding the experiment's key
      events:                 # one row per event
        table: events
        unit: unit_id
        name: name
        value: value
        at: at

Auto-discovery (`discovered_metrics`): without metric definitions, every distinct event name (at most
`MAX_DISCOVERED` of them, sorted) gets two metrics: ``<event>_count`` (events per unit) and
``<event>_converted`` (the share of units with at least one), both counted from exposure on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any

from truenorth.evidence.compile import Tables, quoted_column, table_sql
from truenorth.evidence.metrics import EVENT_NAME, Metric, MetricError, Selection

#: (section, key) of the mapping -> `Tables` attribute.
FIELDS: dict[tuple[str, str], str] = {
    ("assignments", "table"): "assignments",
    ("assignments", "unit"): "unit_id",
    ("assignments", "variation"): "variation",
    ("assignments", "exposed_at"): "first_exposure_at",
    ("assignments", "experiment"): "experiment",
    ("events", "table"): "events",
    ("events", "unit"): "event_unit_id",
    ("events", "name"): "name",
    ("events", "value"): "value",
    ("events", "at"): "at",
}
ATTRIBUTE = {attr: key for key, attr in FIELDS.items()}
#: What a person calls each field (error messages, form labels).
LABELS: dict[str, str] = {
    "assignments": "assignment table",
    "unit_id": "assignment unit column",
    "variation": "variation column",
    "first_exposure_at": "exposure time column",
    "experiment": "experiment key column",
    "events": "event table",
    "event_unit_id": "event unit column",
    "name": "event name column",
    "value": "event value column",
    "at": "event timestamp column",
}
#: The CLI flag of each field (`truenorth evidence run`).
FLAGS: dict[str, str] = {
    "assignments": "--assignments",
    "unit_id": "--unit-column",
    "variation": "--variation-column",
    "first_exposure_at": "--exposure-column",
    "experiment": "--experiment-column",
    "events": "--events",
    "event_unit_id": "--event-unit-column",
    "name": "--event-name-column",
    "value": "--value-column",
    "at": "--timestamp-column",
}
MAX_DISCOVERED = 20
DEFAULTS = Tables()


def form_name(attr: str) -> str:
    """The web form / flat key of a field: ``assignments_table``, ``events_value``…"""
    section, key = ATTRIBUTE[attr]
    return f"{section}_{key}"


def tables_from_mapping(data: Any, *, field: str = "mapping") -> Tables:
    """Validate a mapping (the nested shape above; empty or missing keys keep the defaults)."""
    if data is None:
        return Tables()
    if not isinstance(data, Mapping):
        raise MetricError("the mapping must be an object with `assignments` and `events`", field=field)
    unknown = sorted(set(data) - {"assignments", "events"})
    if unknown:
        raise MetricError(f"unknown mapping keys {unknown}; use assignments and events", field=field)
    values: dict[str, str] = {}
    for section in ("assignments", "events"):
        part = data.get(section) or {}
        if not isinstance(part, Mapping):
            raise MetricError(f"{section} must be an object", field=f"{field}.{section}")
        keys = {key for (s, key) in FIELDS if s == section}
        bad = sorted(set(part) - keys)
        if bad:
            raise MetricError(
                f"unknown keys {bad} in {section}; use {', '.join(sorted(keys))}", field=f"{field}.{section}"
            )
        for key, value in part.items():
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if not isinstance(value, str):
                raise MetricError(f"{section}.{key} must be a name", field=f"{field}.{section}.{key}")
            values[FIELDS[(section, key)]] = value.strip()
    try:
        return Tables(**values)
    except MetricError as exc:
        attr = (exc.field or "").removeprefix("tables.")
        where = ".".join(ATTRIBUTE[attr]) if attr in ATTRIBUTE else ""
        raise MetricError(
            f"{LABELS.get(attr, attr)}: {exc.message}", field=f"{field}.{where}" if where else field
        ) from None


def mapping_of(tables: Tables, *, only_changed: bool = False) -> dict[str, dict[str, str]]:
    """The nested mapping of ``tables`` (with ``only_changed``, only what differs from the defaults)."""
    defaults = asdict(DEFAULTS)
    out: dict[str, dict[str, str]] = {"assignments": {}, "events": {}}
    for attr, value in asdict(tables).items():
        if only_changed and defaults[attr] == value:
            continue
        section, key = ATTRIBUTE[attr]
        out[section][key] = value
    return out


def flat(tables: Tables) -> dict[str, str]:
    """Form field name -> value (``assignments_table``…), for the web form."""
    return {form_name(attr): value for attr, value in asdict(tables).items()}


def with_overrides(tables: Tables, overrides: Mapping[str, str | None]) -> Tables:
    """``tables`` with the given `Tables` attributes replaced (None leaves one as it is)."""
    values = asdict(tables)
    values.update({k: v for k, v in overrides.items() if v is not None and v != ""})
    try:
        return Tables(**values)
    except MetricError as exc:
        attr = (exc.field or "").removeprefix("tables.")
        raise MetricError(f"{LABELS.get(attr, attr)}: {exc.message}", field=attr) from None


# --- auto-discovery -------------------------------------------------------------------------------


def distinct_names_sql(tables: Tables, dialect: str) -> str:
    """The query listing the event table's distinct event names (one more than `MAX_DISCOVERED`)."""
    column = quoted_column(tables.name, dialect)
    source = table_sql(tables.events, dialect, field="tables.events")
    text = "TEXT" if dialect == "postgres" else "VARCHAR"
    return (
        f"SELECT DISTINCT CAST({column} AS {text}) FROM {source} AS e "  # noqa: S608 (validated, quoted)
        f"WHERE {column} IS NOT NULL ORDER BY 1 LIMIT {MAX_DISCOVERED + 1}"
    )


def discovered_metrics(names: Iterable[Any]) -> list[Metric]:
    """Two metrics per event name: ``<slug>_count`` and ``<slug>_converted`` (see the module)."""
    usable = sorted({str(n) for n in names if n is not None and EVENT_NAME.match(str(n))})[:MAX_DISCOVERED]
    metrics: list[Metric] = []
    for name in usable:
        slug = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")[:28] or "event"
        slug = slug if slug[0].isalpha() else f"e_{slug}"
        if any(m.name == f"{slug}_count" for m in metrics):
            continue
        metrics.append(Metric(f"{slug}_count", "count", Selection((name,))))
        metrics.append(Metric(f"{slug}_converted", "proportion", Selection((name,))))
    if not metrics:
        raise MetricError(
            "the event table has no event names to discover metrics from; define the metrics",
            field="metrics",
        )
    return metrics


# --- engine errors --------------------------------------------------------------------------------

_NO_TABLE = (
    re.compile(r"Table with name ([^\s!]+) does not exist", re.I),
    re.compile(r'relation "([^"]+)" does not exist', re.I),
)
_NO_FILE = (
    re.compile(r'No files found that match the pattern "([^"]+)"', re.I),
    re.compile(r'Cannot open file "([^"]+)"', re.I),
    re.compile(r'Cannot access file "([^"]+?)(?:/\*\*/\*\.parquet)?"', re.I),
)
_NO_COLUMN = (
    re.compile(r'Table "(\w+)" does not have a column named "([^"]+)"', re.I),
    re.compile(r'Referenced column "([^"]+)" not found', re.I),
    re.compile(r'column (\w+)\.(?:"([^"]+)"|(\w+)) does not exist', re.I),
    re.compile(r'column "([^"]+)" does not exist', re.I),
)
_TYPES = re.compile(
    r"(Cannot compare values of type|Could not convert|operator does not exist|Conversion Error)", re.I
)
_NOISE = re.compile(r"(Did you mean|Candidate bindings|LINE \d+:)", re.I)

Fix = Callable[[str], str]


def in_settings(attr: str) -> str:
    """How to fix a field on the web: "set the event table in Evidence settings"."""
    return f"set the {LABELS[attr]} in Evidence settings"


def with_flag(attr: str) -> str:
    """How to fix a field on the command line: "set the event table with --events"."""
    return f"set the {LABELS[attr]} with {FLAGS[attr]} (or `mapping:` in the metrics YAML)"


def _table_attr(name: str, tables: Tables) -> str | None:
    wanted = name.strip('"').lower()
    for attr in ("assignments", "events"):
        spec = str(getattr(tables, attr))
        if wanted in (spec.lower(), spec.lower().split(".")[-1], spec.lower().split("/")[-1]):
            return attr
        if spec.lower().endswith(wanted) or wanted.endswith(spec.lower().split("/")[-1]):
            return attr
    return None


def _column_attr(name: str, alias: str | None, tables: Tables) -> str | None:
    events = ("event_unit_id", "name", "value", "at")
    assignments = ("unit_id", "variation", "first_exposure_at", "experiment")
    order = events if alias == "e" else assignments if alias == "assignment_rows" else assignments + events
    for attr in order:
        if str(getattr(tables, attr)).lower() == name.lower():
            return attr
    return None


def explain(message: str, tables: Tables, where: str, *, fix: Fix = in_settings) -> tuple[str | None, str]:
    """An engine's error as what to fix: ``(Tables attribute or None, message)``. ``where`` names the
    source (a file name or the data source's name). Never repeats the engine's "Did you mean …"."""
    for pattern in _NO_FILE:
        found = pattern.search(message)
        if found:
            file_attr = _table_attr(found.group(1), tables) or "events"
            spec = getattr(tables, file_attr)
            return file_attr, f"no file `{spec}` in {where}: {fix(file_attr)}"
    for pattern in _NO_TABLE:
        found = pattern.search(message)
        if found:
            name = found.group(1).strip('"')
            attr = _table_attr(name, tables)
            if attr is not None:
                return attr, f"no table `{getattr(tables, attr)}` in {where}: {fix(attr)}"
            return None, f"no table `{name}` in {where}: check the assignment and event tables"
    for pattern in _NO_COLUMN:
        found = pattern.search(message)
        if not found:
            continue
        groups = [str(g) for g in found.groups() if g]
        column = groups[-1]
        alias = groups[0] if len(groups) > 1 else None
        attr = _column_attr(column, alias, tables)
        if attr is None:
            return None, f"no column `{column}` in {where}: check the column names of the mapping"
        table_attr = "events" if attr in ("event_unit_id", "name", "value", "at") else "assignments"
        return attr, (
            f"no column `{column}` in the {LABELS[table_attr]} `{getattr(tables, table_attr)}` "
            f"({where}): {fix(attr)}"
        )
    if _TYPES.search(message):
        return None, (
            f"{_clean(message)} — check that the exposure time and event timestamp columns are both "
            "timestamps, the unit columns have the same type, and the value column is a number"
        )
    return None, _clean(message)


def _clean(message: str) -> str:
    """The engine's message without its guesses ("Did you mean …", candidate bindings, SQL excerpt)."""
    cut = _NOISE.search(message)
    text = message[: cut.start()] if cut else message
    return " ".join(text.split()) or " ".join(message.split())
