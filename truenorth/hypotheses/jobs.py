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
