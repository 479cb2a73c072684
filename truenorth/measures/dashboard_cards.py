"""The value dashboard's measure cards as HTML, built in Python.

Two hundred cards through the template language cost about as much server time as all the
dashboard's queries (each card resolves some twenty variables and filters), so the cards are written
here, escaped like a template would, and the template places each column's cards
(measures/_dashboard_body.html). The markup is the one the template had (a test compares them).

Per card it does no URL resolving (the measure link is one reversed URL with the id swapped in), no
time-zone lookup (the zone is read once) and escapes with the standard library's html.escape, what
django.utils.html.escape calls under its lazy-string wrapper.
"""

from __future__ import annotations

import datetime as dt
from html import escape

from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from truenorth.core.templatetags.present import format_number
from truenorth.measures.dashboard import KvaColumn, MeasureSummary

# A measure id no real measure has, reversed once per page and replaced by each card's id.
_ID_MARK = 987654321987


def _link_of(org_slug: str) -> tuple[str, str]:
    """The measure page's URL (escaped) cut around its id: prefix, suffix."""
    url = escape(reverse("measures:measure", args=[org_slug, _ID_MARK]))
    prefix, _, suffix = url.partition(str(_ID_MARK))
    return prefix, suffix


def card(
    s: MeasureSummary, org_slug: str, *, link: tuple[str, str] | None = None, tz: dt.tzinfo | None = None
) -> str:
    """One card (already escaped): name, latest value, staleness, sparkline, date, change, target."""
    m = s.measure
    name = escape(m.name)
    prefix, suffix = link or _link_of(org_slug)
    out = [
        '<li class="measure-card" data-testid="measure-card">\n        <a class="name" href="',
        f"{prefix}{m.pk}{suffix}",
        f'">{name}</a>\n        ',
    ]
    if s.latest_value is not None:
        out.append(f'<span class="latest">{escape(format_number(s.latest_value))}</span>')
        if m.unit:
            out.append(f" <small>{escape(m.unit)}</small>")
    else:
        out.append('<span class="muted">no observation yet</span>')
    out.append("\n        ")
    if s.stale:
        out.append(
            f' <span class="badge badge-stale" title="No observation within its {m.cadence_days}-day cadence">'
            "stale</span>"
        )
    out.append("\n        ")
    if s.sparkline:
        out.append(
            '<svg class="sparkline" viewBox="0 0 120 28" preserveAspectRatio="none" role="img" '
            f'aria-label="Trend of {name} over the period"><polyline points="{escape(s.sparkline)}"/></svg>'
        )
    out.append('\n        <span class="meta">\n          ')
    if s.latest_at:
        out.append(f"<span>{s.latest_at.astimezone(tz or timezone.get_current_timezone()):%Y-%m-%d}</span>")
    out.append("\n          ")
    if s.change is not None:
        css, hidden = (
            {True: ("change-better", " (better)"), False: ("change-worse", " (worse)")}.get(
                s.improving, ("", "")
            )
            if s.improving is not None
            else ("", "")
        )
        arrow = "▲ +" if s.change > 0 else "▼ " if s.change < 0 else "= "
        out.append(
            f'<span class="{css}">{arrow}{escape(format_number(s.change))} in period'
            f'<span class="visually-hidden">{hidden}</span></span>'
        )
    out.append("\n          ")
    if s.distance is not None:
        if s.distance == 0:
            out.append("<span>target reached</span>")
        else:
            out.append(
                f"<span>{escape(format_number(s.distance))} to target {escape(format_number(m.target))}</span>"
            )
    elif m.target is None:
        out.append("<span>no target</span>")
    out.append("\n        </span>\n      </li>")
    return "".join(out)


def column_cards(columns: list[KvaColumn], org_slug: str) -> list[tuple[KvaColumn, SafeString]]:
    """Each column with its cards' HTML, for the template."""
    link, tz = _link_of(org_slug), timezone.get_current_timezone()
    return [
        (c, mark_safe("\n    ".join(card(s, org_slug, link=link, tz=tz) for s in c.measures)))  # noqa: S308
        for c in columns
    ]
