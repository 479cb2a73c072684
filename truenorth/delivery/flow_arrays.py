"""Flow metrics from compact per-item arrays: the same figures as ``flow.flow_metrics`` (the reference,
whose docstring defines every metric), for histories too large to hold as Python objects.

Pure (no Django; numpy; mypy --strict). Times are integer microseconds since the Unix epoch (UTC), so
every span is computed exactly as ``timedelta.total_seconds()`` computes it.

``ItemTable`` is built one item at a time (``add``): the item's transitions, in time order (ties in the
order given), are replayed at once with its source's state mapping into a few numbers (created, first
start, done at, final state and category, active and waiting seconds) and its category changes (for the
cumulative flow). Only those stay in memory: about 75 bytes an item (plus its id) and 13 a category
change, in ``array.array`` buffers, whatever the number of transitions.

``flow_metrics(table, groups, start=, end=)`` then computes the window's metrics with numpy over the
items of the chosen sources. ``groups`` lists, in order, the state mappings' runs as the reference's
caller makes them (one run per distinct mapping, each run's sources in order): percentiles, counts and
lists are the same over any grouping, and the flow efficiency is summed run by run, item by item in the
same order, so that even its floating-point rounding matches.
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final, overload

import numpy as np
import numpy.typing as npt

from truenorth.delivery import flow

EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
DAY_US: Final = 86_400_000_000
NONE: Final = -(2**63)  # "no time" in the int64 columns
CATEGORY_CODES: Final = {name: code for code, name in enumerate(flow.CATEGORIES)}
_NS, _IP, _DONE = (CATEGORY_CODES[c] for c in flow.CATEGORIES)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def micros(at: dt.datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact)."""
    d = at - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def at_micros(us: int) -> dt.datetime:
    """The aware UTC datetime of `us` microseconds since the epoch."""
    return EPOCH + dt.timedelta(microseconds=us)


class Categories(dict[str, tuple[int, bool]]):
    """(category code, waiting?) of each state name as written, under one mapping, computed once a name."""

    def __init__(self, mapping: flow.StateMapping) -> None:
        super().__init__()
        self.mapping = mapping

    def __missing__(self, state: str) -> tuple[int, bool]:
        found = self[state] = (
            CATEGORY_CODES[self.mapping.category(state)],
            self.mapping.is_waiting(state),
        )
        return found


@dataclass
class ItemTable:
    """Replayed items (one row each) and their category changes (one row each, grouped by item)."""

    ids: list[str] = field(default_factory=list)
    pk: array[int] = field(default_factory=lambda: array("q"))
    source: array[int] = field(default_factory=lambda: array("q"))
    created: array[int] = field(default_factory=lambda: array("q"))
    born: array[int] = field(default_factory=lambda: array("q"))  # min(created, first category change)
    first_start: array[int] = field(default_factory=lambda: array("q"))
    done_at: array[int] = field(default_factory=lambda: array("q"))  # last entry into done, if still done
    category: array[int] = field(default_factory=lambda: array("b"))
    state: array[int] = field(default_factory=lambda: array("i"))  # index into `states`
    active_s: array[float] = field(default_factory=lambda: array("d"))
    waiting_s: array[float] = field(default_factory=lambda: array("d"))
    change_item: array[int] = field(default_factory=lambda: array("i"))
    change_at: array[int] = field(default_factory=lambda: array("q"))
    change_category: array[int] = field(default_factory=lambda: array("b"))
    states: list[str] = field(default_factory=list)
    _state_index: dict[str, int] = field(default_factory=dict)
    item_type: array[int] = field(default_factory=lambda: array("i"))  # index into `types`
    types: list[str] = field(default_factory=list)
    _type_index: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def ids_of_type(self, wanted: Callable[[str], bool], sources: Collection[int] | None = None) -> set[str]:
        """The ids of the items (of these sources, or all) whose type as written `wanted` accepts."""
        kinds = {k for k, name in enumerate(self.types) if wanted(name)}
        return {
            self.ids[i]
            for i, kind in enumerate(self.item_type)
            if kind in kinds and (sources is None or self.source[i] in sources)
        }

    def add(
        self,
        pk: int,
        source: int,
        external_id: str,
        created: int,
        steps: Sequence[tuple[int, str]],
        categories: Categories,
        item_type: str = "",
    ) -> None:
        """One item: `steps` are its (at, state) up to the metrics' end, in time order."""
        index = len(self.ids)
        first = done = NONE
        state, cat, born = "", _NS, created
        for at, name in steps:
            code = categories[name][0]
            if code == _IP and first == NONE:
                first = at
            if code == _DONE and cat != _DONE:
                done = at
            if code != _DONE:
                done = NONE
            if code != cat:
                born = min(born, at)
                self.change_item.append(index)
                self.change_at.append(at)
                self.change_category.append(code)
            state, cat = name, code
        active = waiting = 0.0
        if done != NONE and first != NONE and categories.mapping.waiting:
            for (a, name), (b, _) in pairwise(steps):
                lo, hi = max(a, first), min(b, done)
                code, is_waiting = categories[name]
                if hi <= lo or code != _IP:
                    continue
                if is_waiting:
                    waiting += (hi - lo) / 1_000_000
                else:
                    active += (hi - lo) / 1_000_000
        slot = self._state_index.get(state)
        if slot is None:
            slot = self._state_index[state] = len(self.states)
            self.states.append(state)
        self.ids.append(external_id)
        self.pk.append(pk)
        self.source.append(source)
        self.created.append(created)
        self.born.append(born)
        self.first_start.append(first)
        self.done_at.append(done)
        self.category.append(cat)
        self.state.append(slot)
        kind = self._type_index.get(item_type)
        if kind is None:
            kind = self._type_index[item_type] = len(self.types)
            self.types.append(item_type)
        self.item_type.append(kind)
        self.active_s.append(active)
        self.waiting_s.append(waiting)


class Rows(Sequence[tuple[str, dt.datetime, float]]):
    """(id, done at, days) rows over arrays, sorted by (done at, id) as the reference sorts its lists: a
    list's behaviour (length, index, slice, iteration, equality with a list) at 24 bytes a row, each tuple
    made only when read."""

    def __init__(self, ids: list[str], index: I64, at_us: I64, days: F64) -> None:
        self._ids, self._index, self._at, self._days = ids, index, at_us, days

    @classmethod
    def sorted(cls, ids: list[str], index: I64, at_us: I64, days: F64) -> Rows:
        names = [ids[i] for i in index.tolist()]
        rank = np.empty(len(names), dtype=np.int64)
        rank[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
        order = np.lexsort((rank, at_us))  # stable: equal keys keep the given order
        return cls(ids, index[order], at_us[order], days[order])

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def __getitem__(self, i: int) -> tuple[str, dt.datetime, float]: ...

    @overload
    def __getitem__(self, i: slice) -> list[tuple[str, dt.datetime, float]]: ...

    def __getitem__(
        self, i: int | slice
    ) -> tuple[str, dt.datetime, float] | list[tuple[str, dt.datetime, float]]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return (self._ids[int(self._index[i])], at_micros(int(self._at[i])), float(self._days[i]))

    def __iter__(self) -> Iterator[tuple[str, dt.datetime, float]]:
        ids = self._ids
        for i, us, days in zip(self._index.tolist(), self._at.tolist(), self._days.tolist(), strict=True):
            yield ids[i], at_micros(us), days

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Rows({list(self[:3])}{'...' if len(self) > 3 else ''}, {len(self)} rows)"


@dataclass(frozen=True)
class Group:
    """One run of the reference: the sources sharing a state mapping, in order."""

    mapping: flow.StateMapping
    sources: Sequence[int]


def _i64(values: array[int]) -> I64:
    return np.frombuffer(values, dtype=np.int64) if len(values) else np.zeros(0, dtype=np.int64)


def _small(values: array[int], dtype: str) -> I64:
    """An int8/int32 buffer as int64 values."""
    return np.frombuffer(values, dtype=dtype).astype(np.int64) if len(values) else np.zeros(0, np.int64)


def _days(us: int) -> float:
    return us / 1_000_000 / flow.DAY_SECONDS


def flow_metrics(
    table: ItemTable, groups: Sequence[Group], *, start: dt.datetime, end: dt.datetime
) -> flow.FlowMetrics:
    """flow.flow_metrics over the groups' items (merged as the services merge runs), from the table."""
    if end < start:
        raise ValueError("end is before start")
    # the items of the groups, in the reference's order: group by group, source by source, by primary key
    rank = {source: (g, s) for g, group in enumerate(groups) for s, source in enumerate(group.sources)}
    unique, inverse = np.unique(_i64(table.source), return_inverse=True)
    known = [rank.get(int(s), (-1, 0)) for s in unique.tolist()]
    item_group = np.array([g for g, _ in known], dtype=np.int64)[inverse]
    item_rank = np.array([s for _, s in known], dtype=np.int64)[inverse]
    rows = np.flatnonzero(item_group >= 0)
    rows = rows[np.lexsort((_i64(table.pk)[rows], item_rank[rows], item_group[rows]))]
    row_group = item_group[rows]
    runs = sorted(int(g) for g in np.unique(row_group).tolist())
    if not runs:
        return flow.flow_metrics([], flow.StateMapping.from_config({}), start=start, end=end)
    return _compute(table, groups, runs, rows, row_group, start, end)


def _compute(
    table: ItemTable,
    groups: Sequence[Group],
    runs: list[int],
    rows: I64,
    row_group: I64,
    start: dt.datetime,
    end: dt.datetime,
) -> flow.FlowMetrics:
    start_us, end_us = micros(start), micros(end)
    first_day, last_day = start.date(), end.date()
    n_days = (last_day - first_day).days + 1
    epoch_day = (first_day - EPOCH.date()).days

    created = _i64(table.created)[rows]
    first = _i64(table.first_start)[rows]
    done = _i64(table.done_at)[rows]
    category = _small(table.category, "int8")[rows]
    ids = table.ids

    # cumulative flow: each item's category segments over day indexes
    def day_index(us: I64) -> I64:
        days: I64 = np.floor_divide(us, DAY_US)
        days -= epoch_day
        np.clip(days, 0, n_days, out=days)
        return days

    # Each item is not started from its birth to its first change, then in each changed-to category until
    # its next change (or the end); the changes are stored item by item in time order, so the next change
    # of the same item is the next row. Each segment adds 1 at its first day and -1 at its end's.
    width = n_days + 1
    position = np.full(len(table.ids), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    c_pos = (
        position[np.frombuffer(table.change_item, dtype=np.int32)] if len(table.change_item) else position[:0]
    )
    kept = c_pos >= 0
    c_pos = c_pos[kept]
    c_day = day_index(_i64(table.change_at)[kept])
    c_key = _small(table.change_category, "int8")[kept] * width
    del kept
    block_start = np.ones(len(c_pos), dtype=bool)
    block_start[1:] = c_pos[1:] != c_pos[:-1]
    c_end = np.full(len(c_pos), n_days, dtype=np.int64)
    c_end[:-1] = np.where(block_start[1:], n_days, c_day[1:])
    born_end = np.full(len(rows), n_days, dtype=np.int64)
    born_end[c_pos[block_start]] = c_day[block_start]
    del c_pos, block_start
    cells = len(flow.CATEGORIES) * width
    diff = np.bincount(c_key + c_day, minlength=cells) - np.bincount(c_key + c_end, minlength=cells)
    del c_key, c_day, c_end
    born_day = day_index(_i64(table.born)[rows])
    diff += np.bincount(_NS * width + born_day, minlength=cells) - np.bincount(
        _NS * width + born_end, minlength=cells
    )
    diff = diff.reshape(len(flow.CATEGORIES), width)
    running = np.cumsum(diff, axis=1)[:, :n_days]
    cfd = [
        (first_day + dt.timedelta(days=i), {c: int(running[k][i]) for k, c in enumerate(flow.CATEGORIES)})
        for i in range(n_days)
    ]

    # WIP and ages
    in_progress = np.flatnonzero(category == _IP)
    ages = []
    for i in in_progress.tolist():
        row, since = int(rows[i]), int(first[i])
        ages.append(
            (ids[row], table.states[table.state[row]], _days(end_us - (since if since != NONE else end_us)))
        )
    ages.sort(key=lambda row: (-row[2], row[0]))

    # completed in the window
    finished = np.flatnonzero((done != NONE) & (done >= start_us) & (done <= end_us))
    daily = np.bincount(np.floor_divide(done[finished], DAY_US) - epoch_day, minlength=n_days)[:n_days]
    fin_rows, fin_done = rows[finished], done[finished]
    leads = np.maximum((fin_done - created[finished]) / 1_000_000 / flow.DAY_SECONDS, 0.0)
    started = first[finished] != NONE
    never_started = int(np.count_nonzero(~started))
    cycles = (fin_done[started] - first[finished][started]) / 1_000_000 / flow.DAY_SECONDS
    # flow efficiency's seconds, added item by item in order as the reference does (cumsum is sequential)
    timed_rows, timed_groups = fin_rows[started], row_group[finished][started]
    active_all = np.frombuffer(table.active_s, dtype=np.float64) if len(table.active_s) else np.zeros(0)
    waiting_all = np.frombuffer(table.waiting_s, dtype=np.float64) if len(table.waiting_s) else np.zeros(0)
    active, waiting = {}, {}
    for g in runs:
        mine = timed_rows[timed_groups == g]
        active[g] = float(np.cumsum(active_all[mine])[-1]) if len(mine) else 0.0
        waiting[g] = float(np.cumsum(waiting_all[mine])[-1]) if len(mine) else 0.0
    lead_rows = Rows.sorted(ids, fin_rows, fin_done, leads)
    completed = Rows.sorted(ids, fin_rows[started], fin_done[started], cycles)

    weeks: dict[dt.date, int] = {}
    monday = first_day - dt.timedelta(days=first_day.weekday())
    while monday <= last_day:
        weeks[monday] = 0
        monday += dt.timedelta(days=7)
    for i, count in enumerate(daily.tolist()):
        day = first_day + dt.timedelta(days=i)
        weeks[day - dt.timedelta(days=day.weekday())] += count

    if len(runs) == 1:
        g = runs[0]
        a, w = active[g], waiting[g]
        efficiency = a / (a + w) if groups[g].mapping.waiting and a + w > 0 else None
        active_days, waiting_days = a / flow.DAY_SECONDS, w / flow.DAY_SECONDS
    else:
        active_days = sum(active[g] / flow.DAY_SECONDS for g in runs)
        waiting_days = sum(waiting[g] / flow.DAY_SECONDS for g in runs)
        total = active_days + waiting_days
        efficiency = active_days / total if total > 0 else None
    return flow.FlowMetrics(
        cycle_time_days=flow.percentiles(cycles.tolist()),
        lead_time_days=flow.percentiles(leads.tolist()),
        completed=completed,
        throughput_per_week=sorted(weeks.items()),
        daily_throughput=[int(n) for n in daily.tolist()],
        wip=len(in_progress),
        ages=ages,
        flow_efficiency=efficiency,
        cfd=cfd,
        never_started=never_started,
        lead_times=lead_rows,
        active_days=active_days,
        waiting_days=waiting_days,
    )
