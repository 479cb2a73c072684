"""The GitHub importer: REST API JSON saved to files (`gh api --paginate repos/O/R/pulls?state=all > pulls.json`
and the same for releases, deployments and issues). A file holds a list of objects (or an object with
one list, e.g. `{"pull_requests": [...]}`; several pages concatenated as `[...][...]` are read too); each
object's kind is told by its fields, so one file may mix them:

- a **pull request** (`number` with `merge_commit_sha` or `head`/`base`): number, title, `created_at`,
  `merged_at`, `merge_commit_sha` (only when merged); `first_commit_at` and `commit_shas` from a
  `commits` list when present (the `/pulls/{n}/commits` answer embedded, each with
  `commit.author.date`), so squash and rebase merges keep their lead time;
- a **release** (`tag_name`): named by its tag, at `published_at` (else `created_at`), its commit when
  `target_commitish` is a sha; a draft (`"draft": true`) is not released yet and is skipped;
- a **deployment** (`environment` and `sha`): id, environment, `created_at`, the deployed sha; run id and
  service from `payload.run_id` and `payload.service` when given (else the deployment id and ""). Success from an embedded `statuses` list (the
  `/deployments/{id}/statuses` answer; the latest `success`, `failure`, `error` or `inactive` decides,
  and a success dates the deployment) or a `state` field; without either it counts as succeeded;
- an **issue** (`number` and `state`, without `pull_request`): item `#<number>` with its title, labels,
  `created_at`, type `issue` (or `bug` when labelled so); the transitions `open` at creation and `closed`
  at `closed_at`.

Anything else is a bad record at `[index]` (or `[page][index]`).

`object_records(obj, where, kind)` is the conversion of one object, shared with the API fetch
(services/github_fetch.py), which knows each object's kind from the endpoint it came from.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from truenorth.delivery.importers._common import UnreadableInput, parse_time, text_stream
from truenorth.delivery.importers.base import (
    BadRecord,
    DeploymentRecord,
    ItemRecord,
    PullRecord,
    Record,
    ReleaseRecord,
    TransitionRecord,
    register,
)

SHA = re.compile(r"^[0-9a-f]{7,64}$")
FAILED = {"failure", "error"}


def _time(value: Any, name: str) -> dt.datetime:
    try:
        return parse_time(str(value or ""))
    except ValueError:
        raise ValueError(f"{name}: “{value}” is not a time") from None


def _maybe_time(value: Any, name: str) -> dt.datetime | None:
    return None if value in (None, "") else _time(value, name)


def _pages(data: bytes | Path) -> Iterator[tuple[str, Any]]:
    """(location prefix, list) for each JSON document in the input (gh --paginate concatenates pages)."""
    with text_stream(data) as stream:
        text = stream.read()
    decoder = json.JSONDecoder()
    position, page = 0, 0
    documents: list[Any] = []
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            break
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise UnreadableInput(f"Not valid JSON: {error.msg} at line {error.lineno}.") from None
        documents.append(document)
    if not documents:
        raise UnreadableInput("The file is empty.")
    for document in documents:
        if isinstance(document, dict):
            lists = [v for v in document.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise UnreadableInput("A GitHub file is a list of objects (as the REST API answers).")
            document = lists[0]
        if not isinstance(document, list):
            raise UnreadableInput("A GitHub file is a list of objects (as the REST API answers).")
        yield (f"[{page}]" if len(documents) > 1 else ""), document
        page += 1


def _pull(obj: dict[str, Any]) -> PullRecord:
    merged = _maybe_time(obj.get("merged_at"), "merged_at")
    commits: list[Any] = obj["commits"] if isinstance(obj.get("commits"), list) else []
    shas: list[str] = []
    first: dt.datetime | None = None
    for commit in commits:
        if not isinstance(commit, dict):
            continue
        if commit.get("sha"):
            shas.append(str(commit["sha"]))
        inner = commit.get("commit") or {}
        when = (inner.get("author") or {}).get("date") or (inner.get("committer") or {}).get("date")
        if when:
            at = _time(when, "commits.commit.author.date")
            first = at if first is None or at < first else first
    return PullRecord(
        number=int(obj["number"]),
        title=str(obj.get("title") or ""),
        created_at=_time(obj.get("created_at"), "created_at"),
        first_commit_at=first,
        merged_at=merged,
        merge_sha=str(obj.get("merge_commit_sha") or "") if merged else "",
        commit_shas=tuple(shas),
    )


def _release(obj: dict[str, Any]) -> ReleaseRecord:
    target = str(obj.get("target_commitish") or "")
    return ReleaseRecord(
        name=str(obj["tag_name"]),
        at=_time(obj.get("published_at") or obj.get("created_at"), "published_at"),
        sha=target if SHA.match(target) else "",
    )


def _deployment(obj: dict[str, Any]) -> DeploymentRecord:
    at = _time(obj.get("created_at"), "created_at")
    succeeded = True
    statuses: list[Any] = obj["statuses"] if isinstance(obj.get("statuses"), list) else []
    decisive = [
        s
        for s in statuses
        if isinstance(s, dict) and s.get("state") in ("success", "failure", "error", "inactive")
    ]
    if decisive:
        latest = max(decisive, key=lambda s: str(s.get("created_at") or ""))
        succeeded = latest.get("state") not in FAILED
        successes = [s for s in decisive if s.get("state") == "success" and s.get("created_at")]
        if succeeded and successes:
            at = _time(min(str(s["created_at"]) for s in successes), "statuses.created_at")
    elif obj.get("state") or obj.get("status"):
        succeeded = str(obj.get("state") or obj.get("status")).lower() not in FAILED
    payload: dict[str, Any] = obj["payload"] if isinstance(obj.get("payload"), dict) else {}
    ident = str(obj.get("id") or "")
    if not ident:
        raise ValueError("id: required")
    return DeploymentRecord(
        external_id=ident,
        run_id=str(payload.get("run_id") or ident),
        service=str(payload.get("service") or ""),
        environment=str(obj.get("environment") or ""),
        deployed_at=at,
        succeeded=succeeded,
        commit_shas=(str(obj["sha"]),) if obj.get("sha") else (),
    )


def _issue(obj: dict[str, Any]) -> Iterator[Record]:
    key = f"#{int(obj['number'])}"
    created = _time(obj.get("created_at"), "created_at")
    closed = _maybe_time(obj.get("closed_at"), "closed_at")
    labels = tuple(
        str(label.get("name") if isinstance(label, dict) else label) for label in obj.get("labels") or []
    )
    kind = "bug" if any(label.lower() == "bug" for label in labels) else "issue"
    yield ItemRecord(key, str(obj.get("title") or ""), kind, created, labels)
    yield TransitionRecord(key, created, "", "open")
    if closed is not None:
        yield TransitionRecord(key, closed, "open", "closed")


KINDS = ("pull", "release", "deployment", "issue")


def kind_of(obj: dict[str, Any]) -> str | None:
    """The kind of a REST object told by its fields (None: none of ours)."""
    if "tag_name" in obj:
        return "release"
    if "number" in obj and ("merge_commit_sha" in obj or ("head" in obj and "base" in obj)):
        return "pull"
    if "environment" in obj and "sha" in obj:
        return "deployment"
    if "number" in obj and "state" in obj:
        return "issue"
    return None


def object_records(obj: Any, where: str, kind: str | None = None) -> Iterator[Record | BadRecord]:
    """The records of one REST object, or one BadRecord at `where` saying why it cannot be read. `kind`
    ("pull", "release", "deployment", "issue") when the caller knows it; else told by the fields. An
    issue that is a pull request (the issues list has them) and a draft release give nothing."""
    if not isinstance(obj, dict):
        yield BadRecord(where, "Not an object.")
        return
    kind = kind or kind_of(obj)
    try:
        if kind == "release":
            if obj.get("draft") is True:
                return
            yield _release(obj)
        elif kind == "pull":
            yield _pull(obj)
        elif kind == "deployment":
            yield _deployment(obj)
        elif kind == "issue":
            if "pull_request" in obj:
                return  # the issues list includes pull requests: they come from the pulls
            yield from list(_issue(obj))
        else:
            yield BadRecord(where, "Not a pull request, release, deployment or issue.")
    except (ValueError, TypeError, KeyError) as error:
        message = f"{error}." if not isinstance(error, KeyError) else f"{error.args[0]}: required."
        yield BadRecord(where, message)


class GitHubImporter:
    name = "github"

    def read(self, data: bytes | Path) -> Iterator[Record | BadRecord]:
        for prefix, objects in _pages(data):
            for index, obj in enumerate(objects):
                yield from object_records(obj, f"{prefix}[{index}]")


register(GitHubImporter())
