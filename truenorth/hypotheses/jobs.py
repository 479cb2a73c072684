"""Background jobs of the Validation pillar (truenorth/jobs): an experiment's evidence run.

`submit_compute` refuses at once what cannot run (role, method, correction, missing evidence settings) and
queues a job; `run_compute` is its runner (results.compute_results as the person who asked, who must
still be a writer there). The CLI runs compute_results inline: it is the operator's own process.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from truenorth.accounts.models import User
from truenorth.hypotheses import results
from truenorth.jobs.models import Job
from truenorth.jobs.services import Progress, acting_membership, register, submit
from truenorth.orgs.models import Membership

COMPUTE_KIND = "experiment.results"


def submit_compute(
    membership: Membership,
    actor: User,
    experiment_id: int,
    *,
    method: str = "frequentist",
    correction: str | None = results.DEFAULT_CORRECTION,
    family: str = results.DEFAULT_FAMILY,
) -> Job:
    """Compute an experiment's results as a background job (422/403 at once, 429 past the limit)."""
    experiment, correction = results.check_computable(membership, experiment_id, method, correction, family)
    params = {
        "experiment_id": experiment.pk,
        "method": method,
        "correction": correction or "none",
        "family": family,
    }
    return submit(membership, actor, COMPUTE_KIND, params)


@register(COMPUTE_KIND)
def run_compute(job: Job, progress: Progress) -> dict[str, Any]:
    membership, actor = acting_membership(job)
    experiment_id = int(job.params["experiment_id"])
    progress(0, 1)
    made = results.compute_results(
        membership,
        actor,
        experiment_id,
        method=str(job.params.get("method", "frequentist")),
        correction=str(job.params.get("correction", results.DEFAULT_CORRECTION)),
        family=str(job.params.get("family", results.DEFAULT_FAMILY)),
    )
    progress(1, 1)
    return {
        "snapshot": made.pk,
        "experiment": experiment_id,
        "summary": f"Results computed ({made.method}) and stored as snapshot #{made.pk}.",
        "link": reverse("hypotheses:result_snapshot", args=(job.organisation.slug, experiment_id, made.pk)),
        "link_text": "See the results",
        "api": f"/api/v1/orgs/{job.organisation.slug}/snapshots/{made.pk}",
    }


PREVIEW_KIND = "experiment.mapping_preview"


def submit_preview(
    membership: Membership,
    actor: User,
    experiment_id: int,
    *,
    data_source_id: int | None,
    mapping: dict[str, Any],
    definitions_text: str = "",
    evidence_key: str = "",
) -> Job:
    """Preview the mapped tables of an experiment's evidence settings being edited, as a background job
    (admins only: it runs on the data source). Refuses at once (403, 404, 422) what may not or cannot
    run, and past the organisation's job limit (429)."""
    results.check_preview(membership, experiment_id, data_source_id, mapping)
    # What was typed comes back with the rows (the settings are not saved by a preview).
    params = {
        "experiment_id": experiment_id,
        "data_source_id": data_source_id,
        "mapping": mapping,
        "definitions_text": definitions_text[:100_000],
        "evidence_key": evidence_key[:1_000],
    }
    return submit(membership, actor, PREVIEW_KIND, params)


@register(PREVIEW_KIND)
def run_preview(job: Job, progress: Progress) -> dict[str, Any]:
    """The job: a few rows of each mapped table (as the admin who asked, who must still be one), kept
    sealed for the results page (a job's result is readable by every member through the jobs API)."""
    from truenorth.measures.sources import seal

    membership, _ = acting_membership(job)
    experiment_id = int(job.params["experiment_id"])
    progress(0, 1)
    shown = results.preview_mapping(
        membership, data_source_id=job.params.get("data_source_id"), mapping=job.params.get("mapping")
    )
    progress(1, 1)
    failed = [t["title"] for t in shown if t["error"]]
    url = reverse("hypotheses:results", args=(job.organisation.slug, experiment_id))
    return {
        "experiment": experiment_id,
        "table": seal(shown),
        "summary": f"Previewed the mapped tables; {', '.join(failed)} failed: see why."
        if failed
        else "Previewed the mapped tables: the first rows of each are ready.",
        "link": f"{url}?preview={job.pk}#evidence-settings",
        "link_text": "See the rows in Evidence settings",
    }
