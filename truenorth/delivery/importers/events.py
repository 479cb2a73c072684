"""The generic event format (docs/delivery.md, "The generic event format"): one row per event, in CSV or
JSON, so any tool can feed TrueNorth.

Every event has `kind` (item | transition | deployment | incident | commit | release | branch), `id`
and `at`; the other columns depend on the kind (empty or absent when they do not apply):

| kind       | id               | at             | other columns                                                      |
|------------|------------------|----------------|--------------------------------------------------------------------|
| item       | work item id     | created        | title, type, labels                                                |
| transition | work item id     | when           | from_state, to_state (required)                                    |
| deployment | deployment id    | deployed       | service, environment, succeeded, commits, run_id                   |
| incident   | incident id      | opened         | service, resolved_at, deployment (id of the one that caused it)    |
| commit     | sha              | committed      | authored_at, is_merge, branch                                      |
| release    | release name     | released       | commits (the released sha, optional)                               |
| branch     | branch name      | last commit    | commits (the head sha, optional), deleted_at                       |

Times are ISO 8601 (naive ones are UTC). `succeeded` / `is_merge` read true/false, yes/no, 1/0,
success/failure (`succeeded` defaults to true). `labels` and `commits` are lists in JSON, and in CSV
text separated by spaces, commas, semicolons or `|`. `run_id` groups the deployments of one pipeline
run (several rows, one deployment); it defaults to the deployment's id. An incident's `deployment` is the
`id` of a deployment event of the same source, in this file or another (linked when it arrives). A
branch event reports a branch (its head commit's time, `deleted_at` when it was deleted): branches feed
the "active branches" measure; an events file never marks the branches it does not list as deleted.

CSV: a header row names the columns (any order; `,`, `;`, tab or `|`). JSON: a list of events, an
object `{"events": [...]}`, or JSON Lines (one event object per line; streamed). Locations: `line N`
(CSV, JSON Lines) or `events[N]` (JSON).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from truenorth.delivery.importers._common import (
    UnreadableInput,
    csv_rows,
    load_json,
    parse_bool,
    parse_list,
    parse_time,
    text_stream,
)
from truenorth.delivery.importers.base import (
    BadRecord,
    BranchRecord,
    CommitRecord,
    DeploymentRecord,
    IncidentRecord,
    ItemRecord,
    Record,
    ReleaseRecord,
    TransitionRecord,
    register,
)

KINDS = ("item", "transition", "deployment", "incident", "commit", "release", "branch")
COLUMNS = (
    "kind", "id", "at", "title", "type", "labels", "from_state", "to_state", "service", "environment",
    "succeeded", "commits", "run_id", "resolved_at", "authored_at", "is_merge", "branch", "deployment",
    "deleted_at",
)  # fmt: skip


class BadEvent(ValueError):
    pass


def _text(event: Mapping[str, Any], name: str) -> str:
    value = event.get(name)
    return "" if value is None else str(value).strip()


def _time(event: Mapping[str, Any], name: str, *, required: bool = True) -> Any:
    text = _text(event, name)
    if not text:
        if required:
            raise BadEvent(f"{name}: a time is required")
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise BadEvent(f"{name}: “{text}” is not an ISO 8601 time (e.g. 2026-03-12T09:15:00Z)") from None


def _flag(event: Mapping[str, Any], name: str, default: bool) -> bool:
    try:
        return parse_bool(event.get(name), default)
    except ValueError as error:
        raise BadEvent(f"{name}: {error}") from None


def to_record(event: Mapping[str, Any]) -> Record:
    """One event as a record; BadEvent with the column and the reason otherwise."""
    kind = _text(event, "kind").lower()
    if kind not in KINDS:
        raise BadEvent(f"kind: “{_text(event, 'kind')}” is not one of {', '.join(KINDS)}")
    ident = _text(event, "id")
    if not ident:
        raise BadEvent("id: required")
    at = _time(event, "at")
    if kind == "item":
        return ItemRecord(
            ident, _text(event, "title"), _text(event, "type"), at, parse_list(event.get("labels"))
        )
    if kind == "transition":
        to_state = _text(event, "to_state")
        if not to_state:
            raise BadEvent("to_state: required for a transition")
        return TransitionRecord(ident, at, _text(event, "from_state"), to_state)
    if kind == "deployment":
        return DeploymentRecord(
            external_id=ident,
            run_id=_text(event, "run_id") or ident,
            service=_text(event, "service"),
            environment=_text(event, "environment"),
            deployed_at=at,
            succeeded=_flag(event, "succeeded", True),
            commit_shas=parse_list(event.get("commits")),
        )
    if kind == "incident":
        resolved = _time(event, "resolved_at", required=False)
        if resolved is not None and resolved < at:
            raise BadEvent("resolved_at: before the incident was opened")
        return IncidentRecord(ident, _text(event, "service"), at, resolved, _text(event, "deployment"))
    if kind == "commit":
        authored = _time(event, "authored_at", required=False) or at
        return CommitRecord(ident, authored, at, _flag(event, "is_merge", False), _text(event, "branch"))
    shas = parse_list(event.get("commits"))
    if kind == "branch":
        deleted = _time(event, "deleted_at", required=False)
        if deleted is not None and deleted < at:
            raise BadEvent("deleted_at: before the branch's last commit")
        return BranchRecord(ident, shas[0] if shas else "", at, deleted)
    return ReleaseRecord(ident, at, shas[0] if shas else "")


def _convert(where: str, event: Any) -> Record | BadRecord:
    if not isinstance(event, dict):
        return BadRecord(where, "An event is an object with kind, id and at.")
    try:
        return to_record(event)
    except BadEvent as error:
        return BadRecord(where, f"{error}.")


class EventsCsvImporter:
    name = "events-csv"

    def read(self, data: bytes | Path) -> Iterator[Record | BadRecord]:
        checked = False
        for line, header, row in csv_rows(data):
            if not checked:
                names = [h.lower() for h in header]
                missing = [c for c in ("kind", "id", "at") if c not in names]
                if missing:
                    raise UnreadableInput(
                        f"The events CSV needs the columns kind, id and at (missing: {', '.join(missing)})."
                    )
                checked = True
            yield _convert(f"line {line}", dict(zip(names, row, strict=False)))


class EventsJsonImporter:
    name = "events-json"

    def read(self, data: bytes | Path) -> Iterator[Record | BadRecord]:
        if _looks_like_json_lines(data):
            yield from self._lines(data)
            return
        document = load_json(data)
        events = document.get("events") if isinstance(document, dict) else document
        if not isinstance(events, list):
            raise UnreadableInput(
                'The events JSON is a list of events, {"events": [...]}, or one event per line.'
            )
        for number, event in enumerate(events):
            yield _convert(f"events[{number}]", event)

    def _lines(self, data: bytes | Path) -> Iterator[Record | BadRecord]:
        with text_stream(data) as stream:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError as error:
                    yield BadRecord(f"line {number}", f"Not valid JSON: {error.msg}.")
                    continue
                yield _convert(f"line {number}", event)


def _first_bytes(data: bytes | Path) -> bytes:
    if isinstance(data, bytes):
        return data[:65536]
    try:
        with data.open("rb") as stream:
            return stream.read(65536)
    except OSError as error:
        raise UnreadableInput(f"{data}: {error.strerror}.") from None


def _looks_like_json_lines(data: bytes | Path) -> bool:
    """One object per line: the first line is a whole JSON object by itself."""
    head = _first_bytes(data).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"{"):
        return False
    first = head.split(b"\n", 1)[0]
    try:
        value = json.loads(first)
    except ValueError:
        return False
    return isinstance(value, dict) and "kind" in value


class EventsImporter:
    """CSV or JSON, by the file's first character (`[` or `{` → JSON)."""

    name = "events"

    def read(self, data: bytes | Path) -> Iterator[Record | BadRecord]:
        first = _first_bytes(data).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        chosen: Callable[[bytes | Path], Iterator[Record | BadRecord]] = (
            EventsJsonImporter().read if first in (b"{", b"[") else EventsCsvImporter().read
        )
        yield from chosen(data)


for _importer in (EventsCsvImporter(), EventsJsonImporter(), EventsImporter()):
    register(_importer)
