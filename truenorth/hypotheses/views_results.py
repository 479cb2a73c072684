"""The results page of an experiment: its snapshots, the latest (or a chosen) one in full, and the
"Compute results now" button (members and above; stakeholders read only)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from truenorth.core.access import current_user, org_view
from truenorth.core.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from truenorth.core.forms import MISSING_VERSION, posted_version
from truenorth.hypotheses import jobs, results, services
from truenorth.hypotheses.models import ResultSnapshot
from truenorth.measures import sources
from truenorth.measures.services import require_query_author
from truenorth.orgs.models import Membership

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
            "chart": results.effect_chart(computed) if computed else None,
            "imported_results": json.dumps(chosen.results, indent=2, sort_keys=True)
            if chosen is not None and chosen.is_imported
            else "",
            "can_write": membership.can_write,
            # Evidence settings choose what SQL runs on a data source: admins only.
            "can_configure": membership.can_admin,
            "configured": bool(experiment.data_source_id and experiment.evidence_key),
            "methods": results.METHODS,
            "error": error,
            "error_field": error_field,
            "sources": [(d.pk, d.name) for d in sources.data_sources_of(membership)]
            if membership.can_admin
            else [],
            "definitions_text": definitions_text
            if definitions_text is not None
            else json.dumps(experiment.metric_definitions, indent=2),
        },
        status=status,
    )


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
    p = row.get("p_value_adjusted")
    row["p_text"] = "—" if p is None else ("< 0.0001" if p < 0.0001 else f"{p:.3g}")
    row["chance_text"] = _pct(row.get("chance_to_win"))


@org_view
@require_http_methods(["GET", "POST"])
def results_page(request: HttpRequest, membership: Membership, experiment_id: int) -> HttpResponse:
    if request.method == "POST":
        services.require_writer(membership)
        method = request.POST.get("method", "frequentist")
        try:
            job = jobs.submit_compute(membership, current_user(request), experiment_id, method=method)
        except (ValidationFailed, TooManyRequests) as exc:
            return _page(request, membership, experiment_id, None, error=exc.message, status=exc.status)
        return redirect(reverse("jobs:job", args=(membership.organisation.slug, job.pk)))
    return _page(request, membership, experiment_id, None)


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
    """Save where the raw events live: data source, experiment key and metric definitions (JSON)."""
    services.require_writer(membership)
    text = request.POST.get("metric_definitions", "")[:100_000]
    raw_source = request.POST.get("data_source", "").strip()
    services.get_experiment(membership, experiment_id)  # 404 and 403 before the version is looked at
    require_query_author(membership)
    version = posted_version(request.POST)
    try:
        if version is None:
            raise ValidationFailed(MISSING_VERSION, field="version")
        try:
            definitions = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}).", field="metric_definitions"
            ) from None
        results.configure_evidence(
            membership,
            current_user(request),
            experiment_id,
            data_source_id=int(raw_source) if raw_source.isdigit() and len(raw_source) < 18 else None,
            evidence_key=request.POST.get("evidence_key", ""),
            metric_definitions=definitions,
            version=version,
        )
    except (ValidationFailed, Conflict) as exc:
        return _page(
            request,
            membership,
            experiment_id,
            None,
            error=exc.message,
            error_field=exc.field or "",
            definitions_text=text,
            status=422,
        )
    messages.success(request, "Evidence settings saved.")
    return redirect(reverse("hypotheses:results", args=(membership.organisation.slug, experiment_id)))
