"""The Azure DevOps importer: work item revisions as the REST API answers them.

Read are the answer of "Revisions - List" (`GET {org}/{project}/_apis/wit/workItems/{id}/revisions`,
`{"count": 3, "value": [revision, ...]}`), the reporting API's "Reporting Work Item Revisions"
(`GET {org}/{project}/_apis/wit/reporting/workitemrevisions`, `{"values": [...], "nextLink": ...,
"isLastBatch": ...}`), a plain list of revisions, and several such pages concatenated in one file (the
reporting API's batches, or the revisions of several work items saved one after the other).

A revision is `{"id": 12, "rev": 3, "fields": {"System.WorkItemType", "System.Title", "System.State",
"System.CreatedDate", "System.ChangedDate", "System.Tags": "a; b", ...}}`: the work item's fields as they
were after that change. Revisions may come in any order and mixed across work items (the reporting API
orders them by change time); they are grouped by work item and sorted by `rev`. Each work item gives:

- an item: its id, the title and type (lower-cased) and the tags of its latest revision, created at
  `System.CreatedDate`;
- a transition into its state at `System.CreatedDate` (from "") when its first revision (`rev` 1) is in
  the input; when the input starts later in its history (a later reporting batch) the first revision
  read only says which state it was in;
- a transition each time `System.State` differs from the previous revision's, at that revision's
  `System.ChangedDate`. Other field changes (title, board column, assignee) are not transitions.

A revision without `id`, `rev`, `System.State` or a readable `System.ChangedDate` is a bad record at
`value[12]` (`values[12]`, `[12]` for a plain list, `[page].value[12]` when pages are concatenated).
Dates are ISO 8601 as Azure writes them (`2026-02-03T09:15:22.1234567Z`: up to seven fractional digits,
read to the microsecond).

Memory: the file is parsed one page at a time; each revision kept is a small tuple of the fields used,
grouped by work item, until the whole input is read (an item's revisions may be on any page).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from truenorth.delivery.importers._common import UnreadableInput, parse_time, text_stream
from truenorth.delivery.importers.base import BadRecord, ItemRecord, Record, TransitionRecord, register

LIST_KEYS = ("value", "values")
# Azure writes up to 7 fractional digits (100 ns ticks); Python reads at most 6 on older versions.
FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True)
class Revision:
    """The fields of one revision the importer uses."""

    rev: int
    changed_at: dt.datetime
    created_at: dt.datetime
    state: str
    title: str
    item_type: str
    tags: tuple[str, ...]


def parse_azure_time(value: Any, name: str) -> dt.datetime:
    text = str(value or "").strip()
    try:
        return parse_time(FRACTION.sub(r"\1", text))
    except ValueError:
        raise ValueError(f"{name}: “{value}” is not a time") from None


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        parts = [str(v) for v in value]
    else:
        parts = str(value or "").split(";")
    return tuple(tag for tag in (part.strip() for part in parts) if tag)


def _documents(data: bytes | Path) -> Iterator[Any]:
    """Each JSON document of the input, in order (pages may be concatenated)."""
    with text_stream(data) as stream:
        text = stream.read()
    decoder = json.JSONDecoder()
    position = 0
    found = False
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            break
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise UnreadableInput(f"Not valid JSON: {error.msg} at line {error.lineno}.") from None
        found = True
        yield document
    if not found:
        raise UnreadableInput("The file is empty.")


def _revisions(document: Any) -> tuple[str, list[Any]]:
    """(location of the list, the revisions) of one page."""
    if isinstance(document, list):
        return "", document
    if isinstance(document, dict):
        for key in LIST_KEYS:
            if isinstance(document.get(key), list):
                return key, document[key]
    raise UnreadableInput(
        "An Azure DevOps file holds work item revisions: {“value”: [...]} (Revisions - List), "
        "{“values”: [...]} (Reporting Work Item Revisions) or a list of revisions."
    )


def _read_revision(obj: Any) -> tuple[int, Revision]:
    """(work item id, revision); ValueError naming the field when it cannot be used."""
    if not isinstance(obj, dict):
        raise ValueError("Not an object")
    raw_id, raw_rev = obj.get("id"), obj.get("rev")
    if raw_id in (None, "") or isinstance(raw_id, bool):
        raise ValueError("id: required")
    if raw_rev in (None, "") or isinstance(raw_rev, bool):
        raise ValueError("rev: required")
    try:
        ident = int(str(raw_id).strip())
    except ValueError:
        raise ValueError(f"id: “{raw_id}” is not a work item number") from None
    try:
        rev = int(str(raw_rev).strip())
    except ValueError:
        raise ValueError(f"rev: “{raw_rev}” is not a revision number") from None
    fields = obj.get("fields")
    if not isinstance(fields, dict):
        raise ValueError("fields: required")
    state = str(fields.get("System.State") or "").strip()
    if not state:
        raise ValueError("System.State: required")
    changed = parse_azure_time(fields.get("System.ChangedDate"), "System.ChangedDate")
    created_raw = fields.get("System.CreatedDate")
    created = changed if created_raw in (None, "") else parse_azure_time(created_raw, "System.CreatedDate")
    return ident, Revision(
        rev=rev,
        changed_at=changed,
        created_at=created,
        state=state,
        title=str(fields.get("System.Title") or ""),
        item_type=str(fields.get("System.WorkItemType") or "").strip().lower(),
        tags=_tags(fields.get("System.Tags")),
    )


def _item_records(ident: int, revisions: dict[int, Revision]) -> Iterator[Record]:
    key = str(ident)
    ordered = [revisions[rev] for rev in sorted(revisions)]
    latest = ordered[-1]
    yield ItemRecord(key, latest.title, latest.item_type, ordered[0].created_at, latest.tags)
    first = ordered[0]
    if first.rev == 1:
        yield TransitionRecord(key, first.created_at, "", first.state)
    previous = first.state
    for revision in ordered[1:]:
        if revision.state != previous:
            yield TransitionRecord(key, revision.changed_at, previous, revision.state)
            previous = revision.state


class AzureImporter:
    name = "azure"

    def read(self, data: bytes | Path) -> Iterator[Record | BadRecord]:
        items: dict[int, dict[int, Revision]] = {}
        pages = _documents(data)
        first = next(pages)
        second = next(pages, None)
        several = second is not None

        def numbered() -> Iterator[tuple[str, Any]]:
            yield ("[0]" if several else ""), first
            if second is not None:
                yield "[1]", second
                for page, document in enumerate(pages, start=2):
                    yield f"[{page}]", document

        for prefix, document in numbered():
            key, revisions = _revisions(document)
            base = f"{prefix}.{key}" if prefix and key else prefix or key
            for index, obj in enumerate(revisions):
                try:
                    ident, revision = _read_revision(obj)
                except (ValueError, TypeError) as error:
                    yield BadRecord(f"{base}[{index}]", f"{error}.")
                    continue
                items.setdefault(ident, {})[revision.rev] = revision  # a repeated revision counts once
        for ident in sorted(items):
            yield from _item_records(ident, items.pop(ident))


register(AzureImporter())
