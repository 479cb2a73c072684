"""Engagement background work: pulses.

- `open_and_close_pulse_rounds`: every OPEN_EVERY_MINUTES minutes, close the rounds whose time ran out
  and open a round of every due, active pulse (sending its invitations); a lock keeps runs apart.
- `submit_open_round(membership, actor, pulse_id)`: "open a round now" as a job the person follows
  (the page's button, the API); `run_open_round` is its runner. Checks (403/404/409/422) run first.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from truenorth.accounts.models import User
from truenorth.engagement.services import pulses
from truenorth.jobs.models import Job
from truenorth.jobs.services import Progress, acting_membership, register, submit
from truenorth.orgs.models import Membership

OPEN_EVERY_MINUTES = 15
OPEN_KIND = "engagement.pulses.open_round"


@db_periodic_task(crontab(minute=f"*/{OPEN_EVERY_MINUTES}"))
@lock_task("truenorth-pulse-rounds")
def open_and_close_pulse_rounds() -> dict[str, int]:
    closed = pulses.close_expired_rounds()
    opened = pulses.open_due_rounds()
    return {"closed": closed, "opened": len(opened)}


def submit_open_round(membership: Membership, actor: User, pulse_id: int) -> Job:
    pulses.check_can_open(membership, pulse_id)
    return submit(membership, actor, OPEN_KIND, {"pulse_id": int(pulse_id)})


@register(OPEN_KIND)
def run_open_round(job: Job, progress: Progress) -> dict[str, Any]:
    membership, actor = acting_membership(job)
    progress(0, 1)
    rnd, invited = pulses.open_round_now(membership, actor, int(job.params["pulse_id"]))
    progress(1, 1)
    return {
        "pulse": rnd.pulse_id,
        "round": rnd.pk,
        "number": rnd.number,
        "invited": invited,
        "summary": f"Round {rnd.number} of “{rnd.pulse.title}” is open; {invited} invitation(s) sent.",
        "link": reverse("engagement:pulse", args=(job.organisation.slug, rnd.pulse_id)),
        "link_text": f"Back to “{rnd.pulse.title}”",
    }
