"""The pulses part of the demo: two completed rounds on Trail App, the second better aligned, with
divergent answers; no e-mail sent; loaded twice without duplicates."""

from __future__ import annotations

import pytest

from truenorth.demo import DEMO_USERS, load_demo
from truenorth.engagement.models import OutgoingEmail, Pulse, PulseInvitation, PulseResponse, PulseRound
from truenorth.engagement.services import pulse_results as results
from truenorth.engagement.services import pulses as svc
from truenorth.orgs.models import Membership, Organisation


@pytest.fixture
def acme(db):
    load_demo()
    return Organisation.objects.get(slug="acme")


def test_two_completed_rounds_showing_improvement(acme) -> None:
    m = Membership.objects.get(organisation=acme, user__email=DEMO_USERS[0].email)
    pulse = Pulse.objects.get(organisation=acme)
    rounds = list(pulse.rounds.order_by("number"))
    assert [r.number for r in rounds] == [1, 2]
    assert all(not svc.is_open(r) and r.closed_at is not None for r in rounds)
    assert all(r.responses.count() >= 8 for r in rounds)
    trend = results.trend(m, pulse.pk)
    assert trend[0].index is not None and trend[1].index is not None
    assert trend[1].index > trend[0].index
    latest = results.round_results(m, rounds[1].pk)
    groups = {g.name: g for g in latest.groups}
    assert not groups["Trail Team"].hidden
    assert any(g.hidden for g in latest.groups)  # a small department stays hidden
    assert latest.divergent and latest.divergent[0].similarity < 0.2
    summary = svc.product_alignment(m, pulse.product)
    assert (
        summary is not None and summary.index == trend[1].index and summary.previous_index == trend[0].index
    )
    assert not OutgoingEmail.objects.filter(kind="pulse").exists()
    pulse.refresh_from_db()
    assert pulse.next_run_at is not None and pulse.next_run_at > rounds[1].closes_at


def test_loading_twice_adds_nothing(acme) -> None:
    before = (PulseRound.objects.count(), PulseInvitation.objects.count(), PulseResponse.objects.count())
    load_demo()
    assert (
        PulseRound.objects.count(),
        PulseInvitation.objects.count(),
        PulseResponse.objects.count(),
    ) == before
