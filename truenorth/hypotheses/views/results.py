"""The results page of an experiment: its snapshots, the latest (or a chosen) one in full, and the
"Compute results now" button (members and above; stakeholders read only)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from truenorth.core.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from truenorth.core.forms import MISSING_VERSION, posted_version
from truenorth.evidence import mapping as evidence_mapping
from truenorth.hypotheses import jobs, results, services
from truenorth.hypotheses.models import ResultSnapshot
from truenorth.jobs.models import JobStatus
from truenorth.jobs.services import get_job
from truenorth.measures import sources
from truenorth.measures.services import require_query_author
from truenorth.orgs.access import current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.stats.engine import CORRECTION_NAMES, format_p_value

LIST_ROWS = 50


def _page(
    request: HttpRequest,
    membership: Membership,
    experiment_id: int,
    chosen: ResultSnapshot | None,
    *,
    error: str = "",
    error_field: str = "",
    definitions_text: str | None = None,
    mapping_values: dict[str, str] | None = None,
    chosen_source: str | None = None,
    evidence_key: str | None = None,
    preview: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> HttpResponse:
    experiment = services.get_experiment(membership, experiment_id)
    snapshots = list(
        services.snapshots_of(membership, experiment_id).defer("inputs", "query", "results")[:LIST_ROWS]
    )
    if chosen is None:
        chosen = services.headline_snapshot(membership, experiment_id)
    # An import from an outside tool is shown as it came (labelled), never as TrueNorth's result table.
    computed = chosen if chosen is not None and not chosen.is_imported else None
    rows = list(computed.results.get("rows", [])) if computed else []
    for row in rows:
        _format(row)
    return render(
        request,
        "hypotheses/results.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "experiment": experiment,
            "h": experiment.hypothesis,
            "snapshots": snapshots,
            "snapshot": chosen,
            "rows": rows,
            "srm": computed.results.get("srm", {}) if computed else {},
            "freshness": computed.results.get("freshness") if computed else None,
            "freshness_at": _instant(computed.results.get("freshness")) if computed else None,
            "chart": results.effect_chart(computed) if computed else None,
            "imported_results": json.dumps(chosen.results, indent=2, sort_keys=True)
            if chosen is not None and chosen.is_imported
            else "",
            "can_write": membership.can_write,
            # Evidence settings choose what SQL runs on a data source: admins only.
            "can_configure": membership.can_admin,
            "configured": bool(experiment.data_source_id and experiment.evidence_key),
            "methods": results.METHODS,
            "correction_choices": [
                {"value": f"{c}:{f}", "label": label} for (c, f), label in results.CORRECTION_CHOICES.items()
            ],
            "correction_chosen": _chosen_correction(computed),
            "correction_applied": _applied(computed),
            "error": error,
            "error_field": error_field,
            "sources": [(d.pk, d.name) for d in sources.data_sources_of(membership)]
            if membership.can_admin
            else [],
            "definitions_text": definitions_text
            if definitions_text is not None
            else json.dumps(experiment.metric_definitions, indent=2),
            "mapping_fields": _mapping_fields(experiment, mapping_values) if membership.can_admin else [],
            "chosen_source": chosen_source
            if chosen_source is not None
            else str(experiment.data_source_id or ""),
            # What was typed (a failed save, a preview) rather than what is saved.
            "evidence_key": evidence_key if evidence_key is not None else experiment.evidence_key,
            "preview": preview,
        },
        status=status,
    )


def _mapping_fields(experiment: Any, posted: dict[str, str] | None) -> list[dict[str, Any]]:
    """The mapping inputs of the evidence settings form: name, label, value, default (placeholder)."""
    try:
        saved = evidence_mapping.flat(results.mapping_tables(experiment))
    except ValidationFailed:
        saved = evidence_mapping.flat(evidence_mapping.DEFAULTS)
    defaults = evidence_mapping.flat(evidence_mapping.DEFAULTS)
    fields = []
    for attr in evidence_mapping.FIELDS.values():
        name = evidence_mapping.form_name(attr)
        fields.append(
            {
                "name": name,
                "label": evidence_mapping.LABELS[attr].capitalize(),
                "value": (posted or saved).get(name, ""),
                "default": defaults[name],
                "section": evidence_mapping.ATTRIBUTE[attr][0],
            }
        )
    return fields


def _form_field(field: str | None) -> str:
    """A service's field as the form's input name: ``mapping.events.value`` → ``events_value``."""
    text = field or ""
    return text.removeprefix("mapping.").replace(".", "_") if text.startswith("mapping.") else text


def _posted_mapping(request: HttpRequest) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The mapping fields as posted (flat, for the form) and in the evidence.mapping shape."""
    flat: dict[str, str] = {}
    nested: dict[str, dict[str, str]] = {"assignments": {}, "events": {}}
    for (section, key), attr in evidence_mapping.FIELDS.items():
        name = evidence_mapping.form_name(attr)
        value = request.POST.get(name, "").strip()[:500]
        flat[name] = value
        if value:
            nested[section][key] = value
    return flat, nested


def _chosen_correction(snapshot_: ResultSnapshot | None) -> str:
    """The form's preselected correction: this experiment's latest computed choice, else the default."""
    if snapshot_ is not None and "family" in snapshot_.results:
        return f"{snapshot_.results.get('correction') or 'none'}:{snapshot_.results['family']}"
    return f"{results.DEFAULT_CORRECTION}:{results.DEFAULT_FAMILY}"


def _pct(x: Any) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def _format(row: dict[str, Any]) -> None:
    """Display strings: the effect and its interval (relative when there is a control mean), the
    p-value or, for Bayesian results, the chance to win (never called a p-value)."""
    row["is_bayesian"] = bayes = str(row.get("method", "")).startswith("bayesian")
    relative = row.get("scale") == "relative"
    if relative:
        low, high = (
            (row.get("ci_low_relative"), row.get("ci_high_relative"))
            if bayes
            else (row.get("ci_low_adjusted"), row.get("ci_high_adjusted"))
        )
        row["effect_text"] = _pct(row.get("effect_relative"))
        row["ci_text"] = f"{_pct(low)} to {_pct(high)}"
    else:
        fmt = lambda x: "—" if x is None else f"{x:.4g}"  # noqa: E731
        row["effect_text"] = fmt(row.get("effect"))
        row["ci_text"] = f"{fmt(row.get('ci_low_adjusted'))} to {fmt(row.get('ci_high_adjusted'))}"
    row["p_text"] = _p_text(row.get("p_value_adjusted"))
    row["chance_text"] = _pct(row.get("chance_to_win"))
    row["scales"] = _scales(row, bayes)


def _instant(value: Any) -> dt.datetime | None:
    """The data's freshness (stored as ISO text) as a time the page can format; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def _p_text(p: Any) -> str:
    """"p = 0.0368" or "p < 0.0001": the wording of the sentences and the CLI (one formatter)."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p: —"
    return format_p_value(float(p))


def _scales(row: dict[str, Any], bayes: bool) -> list[dict[str, Any]]:
    """Both scales of a row, each with its own effect, interval and p-value (corrected, with the
    interval of the same correction) or, Bayesian, its chance to win and risk: a p-value is never
    shown beside another scale's interval. Snapshots from before both scales were stored show the
    reported scale only."""
    num = lambda x: "—" if x is None else f"{x:+.4g}"  # noqa: E731
    pct = lambda x: "—" if x is None else f"{x * 100:+.1f}%"  # noqa: E731
    out = []
    for scale, fmt in (("relative", pct), ("absolute", num)):
        if f"p_value_{scale}" not in row and row.get("scale") != scale:
            continue  # an older snapshot: only its reported scale
        effect = row.get("effect_relative" if scale == "relative" else "effect")
        if effect is None:
            continue  # no relative effect when the control mean is zero
        legacy = f"p_value_{scale}" not in row
        if bayes:
            low, high = (
                (row.get("ci_low_relative"), row.get("ci_high_relative"))
                if scale == "relative"
                else (row.get("ci_low"), row.get("ci_high"))
            )
            ctw = row.get("chance_to_win") if legacy else row.get(f"chance_to_win_{scale}")
            risk = row.get("risk_treatment") if legacy else row.get(f"risk_treatment_{scale}")
            out.append(
                {
                    "name": scale,
                    "effect_text": fmt(effect),
                    "ci_text": f"{fmt(low)} to {fmt(high)}",
                    "chance_text": _pct(ctw),
                    "risk_text": fmt(risk) if risk is not None else "—",
                    "reported": row.get("scale") == scale,
                }
            )
            continue
        if legacy:
            p, low, high = row.get("p_value_adjusted"), row.get("ci_low_adjusted"), row.get("ci_high_adjusted")
            p_raw = row.get("p_value")
        else:
            p = row.get(f"p_value_{scale}_adjusted")
            low, high = row.get(f"ci_low_{scale}_adjusted"), row.get(f"ci_high_{scale}_adjusted")
            p_raw = row.get(f"p_value_{scale}")
        out.append(
            {
                "name": scale,
                "effect_text": fmt(effect),
                "ci_text": f"{fmt(low)} to {fmt(high)}",
                "p_text": _p_text(p),
                "p_raw_text": _p_text(p_raw),
                "corrected": bool(row.get("correction")) and p != p_raw,
                "reported": row.get("scale") == scale,
            }
        )
    return out


def _applied(snapshot_: ResultSnapshot | None) -> str:
    """What correction the snapshot applied, in words (older snapshots corrected across every metric)."""
    if snapshot_ is None:
        return ""
    res = snapshot_.results
    if res.get("correction_applied"):
        return str(res["correction_applied"])
    correction = res.get("correction")
    if not correction:
        return "No correction."
    return f"{CORRECTION_NAMES.get(correction, correction)} across every comparison (computed before per-role corrections)."


@org_view
@require_http_methods(["GET", "POST"])
def results_page(request: HttpRequest, membership: Membership, experiment_id: int) -> HttpResponse:
    if request.method == "POST":
        services.require_writer(membership)
        method = request.POST.get("method", "frequentist")
        correction, _, family = request.POST.get(
            "correction", f"{results.DEFAULT_CORRECTION}:{results.DEFAULT_FAMILY}"
        ).partition(":")
        try:
            job = jobs.submit_compute(
                membership,
                current_user(request),
                experiment_id,
                method=method,
                correction=correction,
                family=family or results.DEFAULT_FAMILY,
            )
        except (ValidationFailed, TooManyRequests) as exc:
            return _page(request, membership, experiment_id, None, error=exc.message, status=exc.status)
        return redirect(reverse("jobs:job", args=(membership.organisation.slug, job.pk)))
    preview = request.GET.get("preview", "")
    if preview.isdigit() and len(preview) < 18 and membership.can_admin:
        return _preview_page(request, membership, experiment_id, int(preview))
    return _page(request, membership, experiment_id, None)


def _preview_page(request: HttpRequest, membership: Membership, experiment_id: int, job_id: int) -> HttpResponse:
    """The results page with a finished mapping preview job's rows and the settings it previewed."""
    job = get_job(membership, job_id)  # 404 for another organisation's job
    params = job.params or {}
    if job.kind != jobs.PREVIEW_KIND or params.get("experiment_id") != experiment_id:
        raise NotFound("No such preview.")
    if job.status != JobStatus.SUCCEEDED:
        return _page(request, membership, experiment_id, None, error=job.error or "The preview has not finished yet.")
    shown = sources.unseal((job.result or {}).get("table"))
    tables = evidence_mapping.tables_from_mapping(params.get("mapping") or None)
    return _page(
        request,
        membership,
        experiment_id,
        None,
        definitions_text=str(params.get("definitions_text", "")) or None,
        mapping_values=evidence_mapping.flat(tables),
        chosen_source=str(params.get("data_source_id") or ""),
        evidence_key=str(params["evidence_key"]) if "evidence_key" in params else None,
        preview=shown if isinstance(shown, list) else None,
    )


@org_view
@require_GET
def result_snapshot(
    request: HttpRequest, membership: Membership, experiment_id: int, snapshot_id: int
) -> HttpResponse:
    chosen = services.get_snapshot(membership, snapshot_id)
    if chosen.experiment_id != experiment_id:
        raise NotFound("No such result snapshot.")
    return _page(request, membership, experiment_id, chosen)


@org_view
@require_POST
def evidence_settings(request: HttpRequest, membership: Membership, experiment_id: int) -> HttpResponse:
    """Save where the raw events live: data source, experiment key, table/column mapping and metric
    definitions (JSON). The "Preview" button shows a few rows of each mapped table instead of saving."""
    services.require_writer(membership)
    text = request.POST.get("metric_definitions", "")[:100_000]
    raw_source = request.POST.get("data_source", "").strip()
    services.get_experiment(membership, experiment_id)  # 404 and 403 before the version is looked at
    require_query_author(membership)
    source_id = int(raw_source) if raw_source.isdigit() and len(raw_source) < 18 else None
    mapping_values, mapping = _posted_mapping(request)
    evidence_key = request.POST.get("evidence_key", "")[:1_000]

    def typed_again(exc: ValidationFailed | Conflict | TooManyRequests) -> HttpResponse:
        """The page again with the error and everything the admin typed (nothing saved)."""
        return _page(
            request,
            membership,
            experiment_id,
            None,
            error=exc.message,
            error_field=_form_field(exc.field),
            definitions_text=text,
            mapping_values=mapping_values,
            chosen_source=raw_source,
            evidence_key=evidence_key,
            status=exc.status,
        )

    if request.POST.get("action") == "preview":
        try:
            job = jobs.submit_preview(
                membership,
                current_user(request),
                experiment_id,
                data_source_id=source_id,
                mapping=mapping,
                definitions_text=text,
                evidence_key=evidence_key,
            )
        except (ValidationFailed, TooManyRequests) as exc:
            return typed_again(exc)
        return redirect(reverse("jobs:job", args=(membership.organisation.slug, job.pk)))
    version = posted_version(request.POST)
    try:
        if version is None:
            raise ValidationFailed(MISSING_VERSION, field="version")
        try:
            definitions = json.loads(text) if text.strip() else []
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}).", field="metric_definitions"
            ) from None
        results.configure_evidence(
            membership,
            current_user(request),
            experiment_id,
            data_source_id=source_id,
            evidence_key=evidence_key,
            metric_definitions=definitions,
            mapping=mapping,
            version=version,
        )
    except (ValidationFailed, Conflict) as exc:
        return typed_again(exc)
    messages.success(request, "Evidence settings saved.")
    return redirect(reverse("hypotheses:results", args=(membership.organisation.slug, experiment_id)))
