"""Web pages: an organisation's recent jobs, and one job (status, progress, result; polls while it runs)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from truenorth.htmx import is_htmx
from truenorth.jobs import services
from truenorth.orgs.access import org_view
from truenorth.orgs.models import Membership

LIST_ROWS = 50
KIND_NAMES = {
    "measure.refresh": "Measure refresh",
    "experiment.results": "Experiment results",
}


def kind_name(kind: str) -> str:
    return KIND_NAMES.get(kind, kind.replace(".", " ").replace("_", " ").capitalize())


@org_view
@require_GET
def job(request: HttpRequest, membership: Membership, job_id: int) -> HttpResponse:
    found = services.get_job(membership, job_id)
    context = {
        "membership": membership,
        "org": membership.organisation,
        "job": found,
        "kind_name": kind_name(found.kind),
        "percent": round(100 * found.progress_done / found.progress_total) if found.progress_total else None,
    }
    template = "jobs/_job.html" if is_htmx(request) else "jobs/job.html"
    return render(request, template, context)


@org_view
@require_GET
def job_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    jobs = list(services.jobs_of(membership)[:LIST_ROWS])
    rows = [(j, kind_name(j.kind)) for j in jobs]
    return render(
        request, "jobs/jobs.html", {"membership": membership, "org": membership.organisation, "rows": rows}
    )
