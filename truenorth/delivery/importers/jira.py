"""Jira importers: the CSV export of an issue search, and the issues' changelog JSON.

- "jira-csv": the columns `Issue key`, `Summary`, `Issue Type`, `Created`, `Status`, `Resolved` and any
  number of `Labels` columns (Jira repeats the header once per label); names are matched without
  regard to case, other columns are ignored. Each row gives the item; a row with `Resolved` also gives
  the transition into its current `Status` at that time (the CSV has no other history: import the
  changelog for cycle times).
- "jira-changelog": the REST search result with `expand=changelog`,
  `{"issues": [{"key", "fields": {"summary", "issuetype": {"name"}, "created", "labels", "status"},
  "changelog": {"histories": [{"created", "items": [{"field": "status", "fromString", "toString"}]}]}}]}`
  (a bare list of issues works too). Each issue gives the item, the state it was created in (the first
  change's `fromString`, or its current status when it never changed) at its creation time, and one
  transition per status change.
- "jira": either of them, by the file's first character (`{` or `[` → changelog).

Dates: Jira writes them in the exporting person's format and time zone. Read are ISO 8601
(`2026-03-12T09:15:00.000+0100`, the changelog's), `12/Mar/26 9:15 AM` (Jira's default),
`12/Mar/2026 09:15`, `2026-03-12 09:15`, `12.03.2026 09:15` and `12/03/2026 09:15` (day first).
Times without a zone are taken as UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from truenorth.delivery.importers._common import UnreadableInput, csv_rows, load_json, parse_time
from truenorth.delivery.importers.base import BadRecord, ItemRecord, Record, TransitionRecord, register

JIRA_FORMATS = (
    "%d/%b/%y %I:%M %p",
    "%d/%b/%Y %I:%M %p",
    "%d/%b/%y %H:%M",
    "%d/%b/%Y %H:%M",
    "%d/%b/%y",
    "%Y-%m-%d %H:%M",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
)


def parse_jira_time(text: str) -> dt.datetime:
    """A Jira timestamp in any of the formats above; ValueError naming the text otherwise."""
    text = " ".join(str(text).split())
    try:
        return parse_time(text)
    except ValueError:
        pass
    for pattern in JIRA_FORMATS:
        try:
            return dt.datetime.strptime(text, pattern).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    raise ValueError(f"“{text}” is not a date Jira writes (e.g. 12/Mar/26 9:15 AM or 2026-03-12 09:15)")


class JiraCsvImporter:
    name = "jira-csv"

    def read(self, data: bytes | Path) -> Iterator[Record | BadRecord]:
        columns: dict[str, int] | None = None
        label_columns: list[int] = []
        for line, header, row in csv_rows(data):
            if columns is None:
                lower = [h.lower() for h in header]
                columns = {name: lower.index(name) for name in set(lower)}
                label_columns = [i for i, name in enumerate(lower) if name == "labels"]
                missing = [c for c in ("issue key", "created") if c not in columns]
                if missing:
                    raise UnreadableInput(
                        "The Jira CSV needs the columns Issue key and Created (missing: "
                        + ", ".join(m.capitalize() for m in missing)
                        + ")."
                    )

            def cell(name: str, row: list[str] = row, columns: dict[str, int] = columns) -> str:
                index = columns.get(name)
                return row[index].strip() if index is not None and index < len(row) else ""

            key = cell("issue key")
            if not key:
                yield BadRecord(f"line {line}", "Issue key: empty.")
                continue
            try:
                created = parse_jira_time(cell("created"))
            except ValueError as error:
                yield BadRecord(f"line {line}", f"Created: {error}.")
                continue
            labels = tuple(row[i].strip() for i in label_columns if i < len(row) and row[i].strip())
            yield ItemRecord(key, cell("summary"), cell("issue type"), created, labels)
            resolved, status = cell("resolved"), cell("status")
            if resolved and status:
                try:
                    yield TransitionRecord(key, parse_jira_time(resolved), "", status)
                except ValueError as error:
                    yield BadRecord(f"line {line}", f"Resolved: {error}.")


def _name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or "")
    return str(value or "")


class JiraChangelogImporter:
    name = "jira-changelog"

    def read(self, data: bytes | Path) -> Iterator[Record | BadRecord]:
        document = load_json(data)
        issues = document.get("issues") if isinstance(document, dict) else document
        if not isinstance(issues, list):
            raise UnreadableInput(
                'The changelog JSON needs an "issues" list (a Jira search with expand=changelog).'
            )
        for number, issue in enumerate(issues):
            where = f"issues[{number}]"
            if (
                not isinstance(issue, dict)
                or not isinstance(issue.get("key"), str)
                or not issue["key"].strip()
            ):
                yield BadRecord(where, "An issue needs a key.")
                continue
            key = issue["key"].strip()
            fields: dict[str, Any] = issue["fields"] if isinstance(issue.get("fields"), dict) else {}
            try:
                created = parse_jira_time(str(fields.get("created") or ""))
            except ValueError as error:
                yield BadRecord(f"{where}.fields.created", f"{key}: {error}.")
                continue
            labels: list[Any] = fields["labels"] if isinstance(fields.get("labels"), list) else []
            yield ItemRecord(
                key,
                str(fields.get("summary") or ""),
                _name(fields.get("issuetype")),
                created,
                tuple(str(label) for label in labels),
            )
            changelog: dict[str, Any] = issue["changelog"] if isinstance(issue.get("changelog"), dict) else {}
            histories = changelog.get("histories") or []
            if not isinstance(histories, list):
                yield BadRecord(f"{where}.changelog.histories", f"{key}: not a list.")
                continue
            changes: list[TransitionRecord] = []
            for h_number, history in enumerate(histories):
                h_where = f"{where}.changelog.histories[{h_number}]"
                if not isinstance(history, dict):
                    yield BadRecord(h_where, f"{key}: not an object.")
                    continue
                items = [
                    i
                    for i in history.get("items") or []
                    if isinstance(i, dict) and i.get("field") == "status"
                ]
                if not items:
                    continue
                try:
                    at = parse_jira_time(str(history.get("created") or ""))
                except ValueError as error:
                    yield BadRecord(f"{h_where}.created", f"{key}: {error}.")
                    continue
                for item in items:
                    to_state = str(item.get("toString") or "").strip()
                    if not to_state:
                        yield BadRecord(h_where, f"{key}: a status change without toString.")
                        continue
                    changes.append(
                        TransitionRecord(key, at, str(item.get("fromString") or "").strip(), to_state)
                    )
            changes.sort(key=lambda t: t.at)
            first_state = changes[0].from_state if changes else _name(fields.get("status"))
            if first_state:
                yield TransitionRecord(key, created, "", first_state)
            yield from changes


class JiraImporter:
    """Either Jira format, by the file's first character."""

    name = "jira"

    def read(self, data: bytes | Path) -> Iterator[Record | BadRecord]:
        head = data[:4096] if isinstance(data, bytes) else _head(data)
        first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        chosen = JiraChangelogImporter() if first in (b"{", b"[") else JiraCsvImporter()
        yield from chosen.read(data)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as stream:
            return stream.read(4096)
    except OSError as error:
        raise UnreadableInput(f"{path}: {error.strerror}.") from None


for _importer in (JiraCsvImporter(), JiraChangelogImporter(), JiraImporter()):
    register(_importer)
