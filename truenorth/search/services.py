"""Search one organisation's goals, measures, hypotheses, experiments, work items and learnings.

One query whatever the number of matches: the database's full-text index ranks (bm25 on SQLite FTS5,
ts_rank on PostgreSQL) and cuts the snippets; links are built without touching the objects.
Whatever a person types becomes plain search terms (words, each also matched as a prefix): FTS5 and
tsquery operators, quotes and brackets are never passed through, so no query can fail."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from truenorth.orgs.models import Membership, Organisation
from truenorth.search import documents, index_sql
from truenorth.search.documents import MARK_END, MARK_START
from truenorth.search.models import SearchEntry, SearchKind

MAX_TERMS = 8
MAX_TERM_LENGTH = 60
DEFAULT_LIMIT = 30
MAX_LIMIT = 100
TERM_RE = re.compile(r"\w+")


@dataclass(frozen=True)
class Part:
    text: str
    hit: bool


@dataclass(frozen=True)
class Result:
    kind: str
    object_id: int
    title: str
    title_parts: list[Part]
    snippet_parts: list[Part]
    url: str
    score: float

    @property
    def kind_label(self) -> str:
        return SearchKind(self.kind).label

    @property
    def snippet(self) -> str:
        return "".join(p.text for p in self.snippet_parts)

    @property
    def title_html(self) -> SafeString:
        return _html(self.title_parts)

    @property
    def snippet_html(self) -> SafeString:
        return _html(self.snippet_parts)


def _html(parts: list[Part]) -> SafeString:
    """Escaped text with the matched terms in <mark> (nothing of the stored text is trusted)."""
    return mark_safe(  # noqa: S308 - every piece of text is escaped here
        "".join(f"<mark>{escape(p.text)}</mark>" if p.hit else str(escape(p.text)) for p in parts)
    )


def parts(marked: str) -> list[Part]:
    """Split text the index marked with MARK_START/MARK_END into plain and highlighted parts."""
    out: list[Part] = []
    for i, chunk in enumerate(re.split(f"[{MARK_START}{MARK_END}]", marked or "")):
        if chunk:
            out.append(Part(chunk, hit=i % 2 == 1))
    return out


def terms(q: str) -> list[str]:
    """The words of what was typed (letters and digits only), lower-cased, at most MAX_TERMS."""
    found = [t.lower()[:MAX_TERM_LENGTH] for t in TERM_RE.findall(q or "") if t.strip("_")]
    return list(dict.fromkeys(found))[:MAX_TERMS]


def fts5_query(words: list[str]) -> str:
    # Each word quoted (a string, never an operator), as itself (stemmed) or as a prefix.
    return " AND ".join(f'("{w}" OR "{w}"*)' for w in words)


def tsquery(words: list[str]) -> str:
    # Each word quoted as a tsquery lexeme and matched as a prefix; words contain no quotes.
    return " & ".join(f"'{w}':*" for w in words)


SQLITE_SQL = """
SELECT e.kind, e.object_id, e.parent_id, e.title,
       highlight(search_entry_fts, 0, %s, %s),
       snippet(search_entry_fts, 1, %s, %s, '…', 16),
       -bm25(search_entry_fts, 10.0, 1.0) AS score
FROM search_entry_fts JOIN search_searchentry e ON e.id = search_entry_fts.rowid
WHERE search_entry_fts MATCH %s AND e.organisation_id = %s AND NOT e.archived
ORDER BY score DESC, e.id LIMIT %s
"""

POSTGRES_SQL = """
SELECT e.kind, e.object_id, e.parent_id, e.title,
       ts_headline('english', e.title, q, %s),
       CASE WHEN e.body = '' THEN '' ELSE ts_headline('english', e.body, q, %s) END,
       ts_rank(e.document, q) AS score
FROM search_searchentry e, to_tsquery('english', %s) q
WHERE e.organisation_id = %s AND NOT e.archived AND e.document @@ q
ORDER BY score DESC, e.id LIMIT %s
"""
PG_TITLE = f"StartSel={MARK_START}, StopSel={MARK_END}, HighlightAll=true"
PG_BODY = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=24, MinWords=12"


def _url(slug: str, kind: str, object_id: int, parent_id: int | None) -> str:
    if kind == SearchKind.GOAL:
        return reverse("strategy:goal", args=[slug, object_id])
    if kind == SearchKind.MEASURE:
        return reverse("measures:measure", args=[slug, object_id])
    if kind == SearchKind.HYPOTHESIS:
        return reverse("hypotheses:hypothesis", args=[slug, object_id])
    if kind == SearchKind.EXPERIMENT:
        return reverse("hypotheses:plan", args=[slug, object_id])
    if kind == SearchKind.WORK_ITEM:
        return reverse("strategy:product", args=[slug, parent_id]) + "#work"
    return reverse("hypotheses:hypothesis", args=[slug, parent_id]) + "#learning-heading"


def search(membership: Membership, q: str, limit: int = DEFAULT_LIMIT) -> list[Result]:
    """The organisation's objects matching every word of `q`, best first (archived ones left out)."""
    words = terms(q)
    if not words:
        return []
    limit = max(1, min(limit, MAX_LIMIT))
    org = membership.organisation
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(POSTGRES_SQL, [PG_TITLE, PG_BODY, tsquery(words), org.pk, limit])
        else:
            marks = [MARK_START, MARK_END]
            cursor.execute(SQLITE_SQL, [*marks, *marks, fts5_query(words), org.pk, limit])
        rows = cursor.fetchall()
    return [
        Result(
            kind=kind,
            object_id=object_id,
            title=title,
            title_parts=parts(title_marked) or [Part(title, False)],
            snippet_parts=parts(snippet),
            url=_url(org.slug, kind, object_id, parent_id),
            score=float(score),
        )
        for kind, object_id, parent_id, title, title_marked, snippet, score in rows
    ]


def describe(result: Result) -> dict[str, Any]:
    return {
        "kind": result.kind,
        "kind_label": result.kind_label,
        "id": result.object_id,
        "title": result.title,
        "title_html": str(result.title_html),
        "snippet": result.snippet,
        "snippet_html": str(result.snippet_html),
        "url": result.url,
        "score": result.score,
    }


def reindex(organisation: Organisation | None = None) -> int:
    """Rebuild the index (one organisation's entries, or everything) from the objects themselves."""
    from truenorth.search.signals import _models

    with transaction.atomic():
        index_sql.install(connection)
        count = documents.build_all(SearchEntry, _models(), organisation.pk if organisation else None)
        if organisation is None:
            index_sql.rebuild(connection)
    return count
