"""Flow metrics from work item histories, pure (no Django; numpy; mypy --strict).

Every state an item can be in falls in one of three categories (``StateMapping.category``):
``not_started``, ``in_progress`` (the *started* states and the *waiting* states) and ``done``. State names
are compared stripped and case-insensitively. When the mapping names no *started* states, every state
that is neither done nor one of the not-started names (DEFAULT_NOT_STARTED: "to do", "todo", "backlog",
"open", "new", ...) counts as started; when it names no *done* states, DEFAULT_DONE ("done", "closed",
"resolved", ...) are done. With explicit started states, an unknown state is not started.

An item's history is replayed in time order (transitions may arrive in any order; ties keep their given
order), only up to ``end`` (later transitions are ignored: the metrics are "as of end"); an item created
after ``end`` is ignored entirely.

- **done at**: the last time the item *entered* the done category (done -> closed does not move it), if
  it is still done at ``end``. An item reopened and not done again is work in progress (or not started),
  not completed. **Completed in the window**: done at within [start, end] (both inclusive).
- **cycle time**: from the FIRST time the item entered in_progress to its done at, in days (seconds /
  86,400). An item done without ever being started (e.g. "to do" -> "done") has no cycle time: it is left
  out of the cycle-time percentiles and the scatterplot (``completed``), but counted in throughput and
  lead time (``never_started`` counts them).
- **lead time**: created_at -> done at, in days (clamped at 0 if the data says done before created).
- **percentiles** (50/85/95): numpy's default ``linear`` method (``np.percentile(..., method="linear")``:
  the value at rank p/100 * (n - 1) of the sorted sample, interpolated between neighbours); None when no
  item qualifies.
- **throughput per week**: completed items per ISO week (keyed by its Monday), every week from the week of
  ``start`` to the week of ``end``, zeros included. **daily throughput**: completed items per calendar day
  from ``start.date()`` to ``end.date()`` (the input for forecasts). Days are the datetimes' own dates:
  pass datetimes in one timezone (UTC).
- **WIP**: items in the in_progress category at ``end``. **Ages**: for each of them, (id, current state as
  written in the history, days from its first start to ``end``), oldest first.
- **flow efficiency**: over the items with a cycle time completed in the window, time in started (active)
  states / (time in active + time in waiting states) between first start and done at; time spent in
  not-started or done states inside that span (a reopened item's first done stretch) counts as neither.
  None when the mapping has no waiting states or nothing was timed.
- **cumulative flow**: for each day of the window, the number of items in each category at the end of
  that day (transitions on or before the day; items count from the day they were created).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

NOT_STARTED: Final = "not_started"
IN_PROGRESS: Final = "in_progress"
DONE: Final = "done"
CATEGORIES: Final = (NOT_STARTED, IN_PROGRESS, DONE)
PERCENTILES: Final = (50, 85, 95)
DAY_SECONDS: Final = 86_400.0

DEFAULT_NOT_STARTED: Final = frozenset(
    {"to do", "todo", "backlog", "open", "new", "created", "proposed", "selected for development"}
)
DEFAULT_DONE: Final = frozenset(
    {"done", "closed", "resolved", "complete", "completed", "released", "shipped"}
)


def norm(state: str) -> str:
    """A state name as compared: stripped, case-folded."""
    return state.strip().casefold()


@dataclass(frozen=True)
class StateMapping:
    """Which workflow states mean started, done and waiting (waiting states are in progress too)."""

    started: frozenset[str]
    done: frozenset[str]
    waiting: frozenset[str] = frozenset()
    not_started: frozenset[str] = DEFAULT_NOT_STARTED

    def __post_init__(self) -> None:
        for name in ("started", "done", "waiting", "not_started"):
            object.__setattr__(self, name, frozenset(norm(s) for s in getattr(self, name) if norm(s)))

    @classmethod
    def from_config(cls, cfg: Mapping[str, Sequence[str]]) -> StateMapping:
        """From ``{"started": [...], "done": [...], "waiting": [...], "not_started": [...]}`` (any key may be
        missing or empty: done falls back to DEFAULT_DONE, not_started to DEFAULT_NOT_STARTED, and empty
        started means "every other state")."""
        unknown = set(cfg) - {"started", "done", "waiting", "not_started"}
        if unknown:
            raise ValueError(f"unknown state categories: {', '.join(sorted(unknown))}")

        def names(key: str) -> frozenset[str]:
            value = cfg.get(key) or ()
            if isinstance(value, str):
                value = [value]
            return frozenset(norm(s) for s in value if norm(s))

        done = names("done") or DEFAULT_DONE
        not_started = names("not_started") or DEFAULT_NOT_STARTED
        return cls(started=names("started"), done=done, waiting=names("waiting"), not_started=not_started)

    def category(self, state: str) -> str:
        """not_started, in_progress or done (done wins over the others, then waiting/started)."""
        s = norm(state)
        if s in self.done:
            return DONE
        if s in self.waiting or s in self.started:
            return IN_PROGRESS
        if self.started or s in self.not_started:
            return NOT_STARTED
        return IN_PROGRESS

    def is_waiting(self, state: str) -> bool:
        return norm(state) in self.waiting and norm(state) not in self.done


@dataclass(frozen=True)
class ItemHistory:
    """One work item: when it was created and the states it moved to, as (at, to_state), any order."""

    id: str
    created_at: dt.datetime
    transitions: Sequence[tuple[dt.datetime, str]]
    item_type: str = ""


@dataclass
class FlowMetrics:
    cycle_time_days: dict[int, float | None]
    lead_time_days: dict[int, float | None]
    completed: Sequence[tuple[str, dt.datetime, float]]  # a list, or flow_arrays.Rows over arrays
    throughput_per_week: list[tuple[dt.date, int]]
    daily_throughput: list[int]
    wip: int
    ages: list[tuple[str, str, float]]
    flow_efficiency: float | None
    cfd: list[tuple[dt.date, dict[str, int]]]
    never_started: int = 0
    lead_times: Sequence[tuple[str, dt.datetime, float]] = field(default_factory=list)
    # flow efficiency's parts (days over the completed items), so that runs over several mappings merge
    # exactly: efficiency = active / (active + waiting)
    active_days: float = 0.0
    waiting_days: float = 0.0


def percentiles(values: Sequence[float], keys: Sequence[int] = PERCENTILES) -> dict[int, float | None]:
    """Percentiles by numpy's ``linear`` method; None for each key when there are no values."""
    if not values:
        return {k: None for k in keys}
    found = np.percentile(np.asarray(values, dtype=float), list(keys), method="linear")
    return {k: float(v) for k, v in zip(keys, found, strict=True)}


def _days(delta: dt.timedelta) -> float:
    return delta.total_seconds() / DAY_SECONDS


@dataclass
class _Replay:
    first_start: dt.datetime | None = None
    done_at: dt.datetime | None = None  # last entry into done, if done at the end
    state: str = ""
    category: str = NOT_STARTED
    active_s: float = 0.0
    waiting_s: float = 0.0
    # (at, category) each time the category changes, for the cumulative flow diagram
    changes: list[tuple[dt.datetime, str]] = field(default_factory=list)


class _Categories(dict[str, tuple[str, bool]]):
    """(category, waiting?) per state name as written, computed once per name."""

    def __init__(self, mapping: StateMapping) -> None:
        super().__init__()
        self.mapping = mapping

    def __missing__(self, state: str) -> tuple[str, bool]:
        found = self[state] = (self.mapping.category(state), self.mapping.is_waiting(state))
        return found


def _replay(item: ItemHistory, categories: _Categories, end: dt.datetime) -> _Replay:
    steps = sorted((t for t in item.transitions if t[0] <= end), key=lambda t: t[0])
    r = _Replay()
    # segments for flow efficiency: (from, state) until the next transition
    segments: list[tuple[dt.datetime, dt.datetime, str]] = []
    prev: tuple[dt.datetime, str] | None = None
    for at, state in steps:
        cat = categories[state][0]
        if prev is not None:
            segments.append((prev[0], at, prev[1]))
        prev = (at, state)
        if cat == IN_PROGRESS and r.first_start is None:
            r.first_start = at
        if cat == DONE and r.category != DONE:
            r.done_at = at
        if cat != DONE:
            r.done_at = None
        if cat != r.category:
            r.changes.append((at, cat))
        r.state, r.category = state, cat
    if r.done_at is not None and r.first_start is not None and categories.mapping.waiting:
        for a, b, state in segments:
            lo, hi = max(a, r.first_start), min(b, r.done_at)
            cat, waiting = categories[state]
            if hi <= lo or cat != IN_PROGRESS:
                continue
            if waiting:
                r.waiting_s += (hi - lo).total_seconds()
            else:
                r.active_s += (hi - lo).total_seconds()
    return r


def flow_metrics(
    items: Iterable[ItemHistory], mapping: StateMapping, *, start: dt.datetime, end: dt.datetime
) -> FlowMetrics:
    """Flow metrics for the window [start, end] (see the module docstring for every definition)."""
    if end < start:
        raise ValueError("end is before start")
    first_day, last_day = start.date(), end.date()
    n_days = (last_day - first_day).days + 1
    daily = [0] * n_days
    cfd_diff = {c: np.zeros(n_days + 1, dtype=np.int64) for c in CATEGORIES}
    cycles: list[float] = []
    leads: list[float] = []
    completed: list[tuple[str, dt.datetime, float]] = []
    lead_rows: list[tuple[str, dt.datetime, float]] = []
    ages: list[tuple[str, str, float]] = []
    never_started = wip = 0
    active_s = waiting_s = 0.0
    categories = _Categories(mapping)

    def day_index(at: dt.datetime) -> int:
        return min(max((at.date() - first_day).days, 0), n_days)

    for item in items:
        if item.created_at > end:
            continue
        r = _replay(item, categories, end)
        born = min([item.created_at, *(at for at, _ in r.changes)])
        # cumulative flow: category segments over day indexes (state at the end of each day)
        seg_from, seg_cat = day_index(born), NOT_STARTED
        for at, cat in r.changes:
            i = day_index(at)
            cfd_diff[seg_cat][seg_from] += 1
            cfd_diff[seg_cat][max(i, seg_from)] -= 1
            seg_from, seg_cat = max(i, seg_from), cat
        cfd_diff[seg_cat][seg_from] += 1
        cfd_diff[seg_cat][n_days] -= 1

        if r.category == IN_PROGRESS:
            wip += 1
            since = r.first_start if r.first_start is not None else end
            ages.append((item.id, r.state, _days(end - since)))
        if r.done_at is None or not start <= r.done_at <= end:
            continue
        daily[(r.done_at.date() - first_day).days] += 1
        lead = max(_days(r.done_at - item.created_at), 0.0)
        leads.append(lead)
        lead_rows.append((item.id, r.done_at, lead))
        if r.first_start is None:
            never_started += 1
            continue
        cycle = _days(r.done_at - r.first_start)
        cycles.append(cycle)
        completed.append((item.id, r.done_at, cycle))
        active_s += r.active_s
        waiting_s += r.waiting_s

    weeks: dict[dt.date, int] = {}
    monday = first_day - dt.timedelta(days=first_day.weekday())
    while monday <= last_day:
        weeks[monday] = 0
        monday += dt.timedelta(days=7)
    for i, count in enumerate(daily):
        day = first_day + dt.timedelta(days=i)
        weeks[day - dt.timedelta(days=day.weekday())] += count

    running = {c: np.cumsum(cfd_diff[c])[:n_days] for c in CATEGORIES}
    cfd = [
        (first_day + dt.timedelta(days=i), {c: int(running[c][i]) for c in CATEGORIES}) for i in range(n_days)
    ]
    efficiency = None
    if mapping.waiting and active_s + waiting_s > 0:
        efficiency = active_s / (active_s + waiting_s)
    completed.sort(key=lambda row: (row[1], row[0]))
    lead_rows.sort(key=lambda row: (row[1], row[0]))
    ages.sort(key=lambda row: (-row[2], row[0]))
    return FlowMetrics(
        cycle_time_days=percentiles(cycles),
        lead_time_days=percentiles(leads),
        completed=completed,
        throughput_per_week=sorted(weeks.items()),
        daily_throughput=daily,
        wip=wip,
        ages=ages,
        flow_efficiency=efficiency,
        cfd=cfd,
        never_started=never_started,
        lead_times=lead_rows,
        active_days=active_s / DAY_SECONDS,
        waiting_days=waiting_s / DAY_SECONDS,
    )
