"""Renderings of one `Brief` (services/briefs.py): JSON-able data, Markdown, HTML and PDF.

Every rendering reads the same Brief, so the web page, the share page, the Markdown, the API's JSON and
the PDF say the same thing. The PDF is WeasyPrint on the brief's HTML with the print stylesheet (A4), and
its charts are vector SVG rendered offline from the very chart definitions the web page draws
(measures.charts.chart_spec → chart_svg): no screenshot, no image.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from truenorth.core.templatetags.present import format_number
from truenorth.engagement.services.briefs import RISK_LABELS, Brief
from truenorth.measures.charts import chart_svg

STYLESHEET = Path(__file__).resolve().parent.parent / "static" / "engagement" / "brief.css"
PDF_CHART_WIDTH = 460


def brief_data(brief: Brief) -> dict[str, Any]:
    """The brief as plain data (the API's and the CLI's JSON)."""
    data = dataclasses.asdict(brief)
    data["goals_omitted"] = brief.goals_omitted
    data["forecasts_omitted"] = brief.forecasts_omitted
    return data


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)} %"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|!])")


def md(text: object) -> str:
    """Text made safe for a Markdown table cell or line: specials escaped, line breaks as spaces."""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{format_number(value)} {unit}".strip()


def _change(value: float | None, improving: bool | None) -> str:
    if value is None:
        return "—"
    sign = "+" if value > 0 else ""
    word = {True: " (better)", False: " (worse)", None: ""}[improving]
    return f"{sign}{format_number(value)}{word}"


def _date(value: dt.date | dt.datetime | None) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d}"


def brief_markdown(brief: Brief) -> str:
    """The brief as Markdown (the download, `?format=md`, the API and the CLI)."""
    out: list[str] = [f"# {md(brief.product)} — product brief", ""]
    out.append(
        f"{md(brief.organisation)} · generated {timezone.localtime(brief.generated_at):%Y-%m-%d %H:%M %Z}"
        + (f" · owner {md(brief.owner)}" if brief.owner else "")
        + (" · archived product" if brief.archived else "")
    )
    out += ["", "## Vision and product goal", ""]
    out.append(f"**Vision:** {md(brief.vision) or 'not written yet.'}")
    out.append("")
    out.append(f"**Product goal:** {md(brief.product_goal) or 'not written yet.'}")
    out.append("")
    out.append(f"**Progress:** {_pct(brief.progress)}")

    out += ["", "## Top risks", ""]
    if brief.risks:
        for r in brief.risks:
            out.append(f"- **{RISK_LABELS[r.kind]}** — {md(r.title)}: {md(r.detail)}")
        if brief.risks_total > len(brief.risks):
            out.append(f"- … and {brief.risks_total - len(brief.risks)} more.")
    else:
        out.append("None found.")

    out += ["", "## Goals", ""]
    if brief.goals:
        out += [
            "| Goal | Level | Status | Owner | Progress | Confidence | Last check-in |",
            "|---|---|---|---|---|---|---|",
        ]
        for g in brief.goals:
            indent = "— " * g.depth
            checkin = (
                f"{g.checkin_status_label} ({_date(g.checked_in_at)})" if g.checkin_status_label else "—"
            )
            confidence = f"{g.confidence}/10" if g.confidence is not None else "—"
            out.append(
                f"| {indent}{md(g.title)} | {md(g.level_label)} | {md(g.status_label)} | {md(g.owner) or '—'} "
                f"| {_pct(g.progress)} | {confidence} | {md(checkin)} |"
            )
        if brief.goals_omitted:
            out.append("")
            out.append(f"{brief.goals_omitted} deeper or further goals are not listed.")
    else:
        out.append("No goal yet.")

    out += ["", "## Forecasts", ""]
    out += _forecast_markdown(brief)

    out += ["", f"## Key Value Measures (last {brief.period_days} days)", ""]
    if brief.measures:
        out += ["| Measure | Area | Latest | Change | Target | Evidence |", "|---|---|---|---|---|---|"]
        for m in brief.measures:
            evidence = "stale" if m.stale else f"fresh ({_date(m.latest_at)})"
            out.append(
                f"| {md(m.name)} | {md(m.kva_label)} | {md(_num(m.latest_value, m.unit))} "
                f"| {md(_change(m.change, m.improving))} | {md(_num(m.target, m.unit))} | {evidence} |"
            )
    else:
        out.append("No measure yet.")
    if brief.missing_kvas:
        out.append("")
        out.append("No measure in: " + ", ".join(md(k) for k in brief.missing_kvas) + ".")

    out += ["", "## Hypotheses in flight", ""]
    if brief.hypotheses:
        for h in brief.hypotheses:
            extra = [
                x for x in (h.goal and f"goal: {md(h.goal)}", h.metric and f"measure: {md(h.metric)}") if x
            ]
            if h.running_experiments:
                n = h.running_experiments
                extra.append(f"{n} experiment{'s' if n != 1 else ''} running")
            out.append(f"- **{md(h.title)}** ({h.state_label})" + (f" — {'; '.join(extra)}" if extra else ""))
    else:
        out.append("None.")

    out += ["", f"## Decisions and learnings (last {brief.period_days} days)", ""]
    if brief.decisions:
        for d in brief.decisions:
            line = f"- {_date(d.decided_at)} **{md(d.hypothesis)}**: {d.outcome_label}, {d.decision_label.lower()}. "
            line += f"We learned: {md(d.learning)}"
            if d.next_step:
                line += f" Next: {md(d.next_step)}"
            out.append(line)
    else:
        out.append("None.")

    out += ["", "## Alignment", ""]
    a = brief.alignment
    if a is None:
        out.append("No alignment pulse yet.")
    elif a.hidden or a.index is None:
        out.append(f"Too few answers to show ({a.responses} of {a.invited}).")
    else:
        previous = f" (previously {format_number(a.previous_index)})" if a.previous_index is not None else ""
        out.append(f"**Alignment index:** {format_number(a.index)} / 100{previous}")
        out.append("")
        out.append(
            f"Clarity {_pct(a.clarity)} · commitment {_pct(a.commitment)} · "
            f"{a.responses} of {a.invited} answered ({_pct(a.response_rate)})"
        )
    out.append("")
    return "\n".join(out)


def _forecast_markdown(brief: Brief) -> list[str]:
    """The goals with a target date and their delivery forecasts."""
    if not brief.forecasts:
        return ["No goal with a target date."]
    out = [
        "| Goal | Target date | Remaining | Chance by target | 85% date | Forecast |",
        "|---|---|---|---|---|---|",
    ]
    for f in brief.forecasts:
        remaining = "—" if f.remaining is None else f"{f.remaining} of {f.total_items}"
        said = f.verdict_label
        chance = "—" if f.percent is None else f"{f.percent} %"
        if f.probability is None:
            said += f": {f.reason}"
        elif f.backtest:
            said += f" ({f.backtest})"
        out.append(
            f"| {md(f.title)} | {_date(f.target_date)} | {remaining} | {chance} "
            f"| {_date(f.date_85) if f.probability is not None else '—'} | {md(said)} |"
        )
    if brief.forecasts_omitted:
        out += ["", f"{brief.forecasts_omitted} later goals with a target date are not listed."]
    return out


def brief_html(brief: Brief, *, for_pdf: bool = False, chart_width: int = PDF_CHART_WIDTH) -> str:
    """The standalone HTML document handed to WeasyPrint: the brief's body with its charts as inline
    SVG (rendered from each chart's spec) and the print stylesheet."""
    items = [(m, chart_svg(m.chart, width=chart_width)) for m in brief.charts if m.chart is not None]
    return render_to_string(
        "engagement/briefs/pdf.html",
        {"brief": brief, "svg_items": items, "stylesheet": STYLESHEET.read_text(), "for_pdf": for_pdf},
    )


def brief_pdf(brief: Brief) -> bytes:
    """The brief as an A4 PDF (WeasyPrint)."""
    # WeasyPrint reports every step (and CSS it skips) through logging, some on import: keep the CLI and
    # the worker quiet.
    for name in ("weasyprint", "weasyprint.progress", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import weasyprint  # type: ignore[import-untyped]  # only the PDF needs it (and Pango)

    html = brief_html(brief, for_pdf=True)
    return bytes(weasyprint.HTML(string=html, base_url=str(STYLESHEET.parent)).write_pdf())


def pdf_filename(brief: Brief, ext: str = "pdf") -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", brief.product).strip("-").lower() or "product"
    return f"{slug}-brief-{brief.generated_at:%Y-%m-%d}.{ext}"
