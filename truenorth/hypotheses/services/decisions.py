"""Decisions: concluding a tested hypothesis (outcome, decision, learning note) and the learning log."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.core.validate import choice as _choice
from truenorth.core.validate import text as _text
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.hypotheses.models import Decision, Experiment, Hypothesis, ResultSnapshot
from truenorth.hypotheses.services.experiments import EXPERIMENT_FIELDS
from truenorth.hypotheses.services.hypotheses import HYPOTHESIS_FIELDS, S, _locked, _product, _save
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer


def conclude(
    membership: Membership,
    actor: User,
    hypothesis_id: int,
    *,
    outcome: str,
    decision: str,
    learning: str,
    observed: str = "",
    next_step: str = "",
    version: int | None = None,
) -> Decision:
    """Conclude a tested hypothesis: outcome, decision and learning note, linked to the latest results."""
    require_writer(membership)
    outcome = _choice(outcome, Decision.Outcome.values, "outcome")
    decision = _choice(decision, Decision.Choice.values, "decision")
    learning = _text(learning, "learning", required=True)
    observed = _text(observed, "observed")
    next_step = _text(next_step, "next_step")
    with transaction.atomic():
        hypothesis = _locked(membership, hypothesis_id, version)
        if hypothesis.state != S.TESTING:
            raise ValidationFailed(
                f"Only a hypothesis being tested can be concluded (this one is {hypothesis.state}).",
                field="state",
            )
        # Only results TrueNorth computed are linked; imports from outside tools never are.
        latest = (
            ResultSnapshot.objects.filter(
                experiment__hypothesis=hypothesis, kind=ResultSnapshot.Kind.COMPUTED
            )
            .order_by("-computed_at", "-id")
            .first()
        )
        has_ab = hypothesis.experiments.filter(kind=Experiment.Kind.AB).exists()
        if has_ab and latest is None and outcome != Decision.Outcome.INCONCLUSIVE:
            raise ValidationFailed(
                "An A/B test is concluded on its results: compute them first (or call it inconclusive).",
                field="outcome",
            )
        before = snapshot(hypothesis, HYPOTHESIS_FIELDS)
        made = Decision.objects.create(
            hypothesis=hypothesis,
            outcome=outcome,
            decision=decision,
            learning=learning,
            observed=observed,
            next_step=next_step,
            snapshot=latest,
            decided_by=actor,
        )
        record(
            membership.organisation,
            made,
            actor,
            HistoryEntry.Action.CREATED,
            diff({}, snapshot(made, ("outcome", "decision", "learning", "snapshot"))),
        )
        hypothesis.state = S.CONCLUDED
        hypothesis.position = Hypothesis.objects.filter(
            product_id=hypothesis.product_id, state=S.CONCLUDED
        ).count()
        _save(membership, actor, hypothesis, before)
        _stop_running_experiments(membership, actor, hypothesis)
    return made


def _stop_running_experiments(membership: Membership, actor: User, hypothesis: Hypothesis) -> None:
    """A concluded hypothesis tests nothing any more: its running experiments stop today (in history)."""
    today = timezone.localdate()
    for experiment in hypothesis.experiments.select_for_update().filter(state=Experiment.State.RUNNING):
        before = snapshot(experiment, EXPERIMENT_FIELDS)
        experiment.state = Experiment.State.STOPPED
        if experiment.stop_date is None or experiment.stop_date > today:
            experiment.stop_date = max(today, experiment.start_date or today)
        experiment.version += 1
        experiment.save(update_fields=["state", "stop_date", "version"])
        record(
            membership.organisation,
            experiment,
            actor,
            HistoryEntry.Action.UPDATED,
            diff(before, snapshot(experiment, EXPERIMENT_FIELDS)),
        )


def decision_of(hypothesis: Hypothesis) -> Decision | None:
    return hypothesis.decisions.select_related("snapshot", "decided_by").first()


def get_decision(membership: Membership, decision_id: int) -> Decision:
    found = (
        Decision.objects.filter(pk=decision_id, hypothesis__organisation_id=membership.organisation_id)
        .select_related("hypothesis", "snapshot", "decided_by")
        .first()
    )
    if found is None:
        raise NotFound("No such decision.")
    return found


def learnings(membership: Membership, product_id: int | None = None, q: str = "") -> QuerySet[Decision]:
    """The learning log: decisions, newest first, searched over titles, outcomes and learning notes."""
    qs = Decision.objects.filter(hypothesis__organisation_id=membership.organisation_id).select_related(
        "hypothesis", "hypothesis__product", "hypothesis__goal", "decided_by", "snapshot"
    )
    if product_id is not None:
        _product(membership, product_id)
        qs = qs.filter(hypothesis__product_id=product_id)
    for word in (q or "").split()[:10]:
        qs = qs.filter(
            Q(hypothesis__title__icontains=word)
            | Q(hypothesis__outcome__icontains=word)
            | Q(hypothesis__capability__icontains=word)
            | Q(learning__icontains=word)
            | Q(observed__icontains=word)
            | Q(next_step__icontains=word)
        )
    return qs.order_by("-decided_at", "-id")
