"""Alignment pulses: opening rounds, single-use anonymous answers, thresholds and the summaries."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from truenorth.engagement.models import PulseInvitation, PulseResponse, Stakeholder
from truenorth.engagement.services import pulse_answers as answers
from truenorth.engagement.services import pulses as svc
from truenorth.engagement.services import throttle
from truenorth.history.models import HistoryEntry
from truenorth.orgs.models import Membership, Role
from truenorth.strategy import services as strategy

GOAL = "Cut the time a new customer needs to get value from the product to under one day."
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def good(**over: object) -> dict[str, object]:
    values: dict[str, object] = {
        "own_words": "Help new clients get value within a day",
        "clarity": 4,
        "commitment": 5,
        "contribution": "I fix onboarding bugs",
    }
    values.update(over)
    return values


@pytest.fixture
def product(owner):
    return strategy.create_product(owner.membership, owner.user, name="Checkout", product_goal=GOAL)


@pytest.fixture
def crowd(org_a) -> list[User]:
    users = []
    for i in range(8):
        user = User.objects.create_user(email=f"person{i}@a.example", password="x" * 12, name=f"P{i}")
        Membership.objects.create(organisation=org_a, user=user, role=Role.MEMBER)
        users.append(user)
    return users


@pytest.fixture
def pulse(owner, product):
    return svc.create_pulse(
        owner.membership, owner.user, product_id=product.pk, title="Checkout pulse", now=T0
    )


def open_with_tokens(pulse, now=T0):
    rnd, invitations = svc.open_round(pulse, now=now, send=False)
    return rnd, [raw for _, raw in invitations]


def test_create_validates_and_records_history(owner, member, stakeholder, product) -> None:
    with pytest.raises(ValidationFailed) as exc:
        svc.create_pulse(owner.membership, owner.user, product_id=product.pk, title="")
    assert exc.value.field == "title"
    with pytest.raises(ValidationFailed) as exc:
        svc.create_pulse(owner.membership, owner.user, product_id=product.pk, title="P", min_group_size=2)
    assert exc.value.field == "min_group_size"
    with pytest.raises(ValidationFailed) as exc:
        svc.create_pulse(
            owner.membership, owner.user, product_id=product.pk, title="P", cadence_days=7, open_days=9
        )
    assert exc.value.field == "open_days"
    from truenorth.core.errors import Forbidden

    with pytest.raises(Forbidden):
        svc.create_pulse(stakeholder.membership, stakeholder.user, product_id=product.pk, title="P")
    pulse = svc.create_pulse(
        member.membership, member.user, product_id=product.pk, title="P", cadence_days=30
    )
    assert pulse.min_group_size == 5 and pulse.next_run_at is not None
    assert HistoryEntry.objects.filter(object_type="engagement.pulse", object_id=str(pulse.pk)).count() == 1


def test_unchanged_update_writes_nothing_and_stale_version_conflicts(owner, pulse) -> None:
    same = svc.update_pulse(owner.membership, owner.user, pulse.pk, version=1, title=pulse.title)
    assert same.version == 1
    changed = svc.update_pulse(owner.membership, owner.user, pulse.pk, version=1, title="Renamed")
    assert changed.version == 2
    with pytest.raises(Conflict):
        svc.update_pulse(owner.membership, owner.user, pulse.pk, version=1, title="Again")
    assert HistoryEntry.objects.filter(object_type="engagement.pulse", object_id=str(pulse.pk)).count() == 2


def test_other_organisation_cannot_see_pulse(outsider, pulse) -> None:
    with pytest.raises(NotFound):
        svc.get_pulse(outsider.membership, pulse.pk)
    assert not svc.pulses_of(outsider.membership).exists()


def test_open_round_snapshots_statement_and_invites_audience_once(
    owner, org_a, product, pulse, crowd
) -> None:
    both = Stakeholder.objects.create(organisation=org_a, name="Same", email=crowd[0].email.upper())
    both.products.add(product)
    legal = Stakeholder.objects.create(
        organisation=org_a, name="Lee", email="lee@law.example", department="legal"
    )
    legal.products.add(product)
    Stakeholder.objects.create(organisation=org_a, name="No mail", email="")
    rnd, tokens = open_with_tokens(pulse)
    assert rnd.number == 1 and rnd.goal_statement == GOAL
    assert rnd.closes_at == T0 + dt.timedelta(days=7)
    invites = list(PulseInvitation.objects.filter(round=rnd))
    emails = sorted(i.email.lower() for i in invites)
    assert len(emails) == len(set(emails))  # a stakeholder who is a member is asked once
    assert "lee@law.example" in emails
    assert len(invites) == Membership.objects.filter(organisation=org_a).count() + 1
    assert all(len(i.token_hash) == 64 and i.token_hash not in tokens for i in invites)
    # The statement is a snapshot: a later edit of the product goal does not change the round.
    strategy.update_product(owner.membership, owner.user, product.pk, product_goal="Something else")
    rnd.refresh_from_db()
    assert rnd.goal_statement == GOAL
    with pytest.raises(Conflict):
        svc.open_round(pulse, now=T0 + dt.timedelta(days=1), send=False)


def test_answer_once_anonymously_then_used(pulse) -> None:
    rnd, tokens = open_with_tokens(pulse)
    now = T0 + dt.timedelta(hours=5)
    response = answers.submit_answer(tokens[0], good(), now=now)
    assert response.round_id == rnd.pk and 0 < response.similarity <= 1
    assert response.submitted_at == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)  # the day only
    field_names = {f.name for f in PulseResponse._meta.get_fields()}
    assert not {"invitation", "user", "email", "stakeholder"} & field_names
    with pytest.raises(answers.LinkGone, match="already been used"):
        answers.submit_answer(tokens[0], good(), now=now)
    assert PulseResponse.objects.count() == 1


def test_bad_answers_name_their_fields_and_spend_nothing(pulse) -> None:
    _, tokens = open_with_tokens(pulse)
    with pytest.raises(ValidationFailed) as exc:
        answers.submit_answer(tokens[0], good(clarity=6, own_words="", group="Nope"), now=T0)
    assert set(exc.value.errors) == {"clarity", "own_words", "group"}
    answers.submit_answer(tokens[0], good(), now=T0)  # the failed attempt did not spend the link


def test_expired_unknown_and_closed_links(owner, pulse) -> None:
    rnd, tokens = open_with_tokens(pulse)
    with pytest.raises(answers.LinkGone, match="closed"):
        answers.submit_answer(tokens[0], good(), now=T0 + dt.timedelta(days=8))
    with pytest.raises(NotFound):
        answers.submit_answer("not-a-real-token", good(), now=T0)
    svc.close_round(owner.membership, owner.user, rnd.pk, now=T0 + dt.timedelta(hours=1))
    with pytest.raises(answers.LinkGone):
        answers.submit_answer(tokens[1], good(), now=T0 + dt.timedelta(hours=2))
    assert PulseResponse.objects.count() == 0


def test_a_link_answers_only_its_own_round(owner, pulse) -> None:
    first, tokens1 = open_with_tokens(pulse)
    svc.close_round(owner.membership, owner.user, first.pk, now=T0 + dt.timedelta(days=1))
    second, tokens2 = open_with_tokens(pulse, now=T0 + dt.timedelta(days=2))
    later = T0 + dt.timedelta(days=3)
    with pytest.raises(answers.LinkGone):
        answers.submit_answer(tokens1[0], good(), now=later)  # round 1's link cannot reach round 2
    answers.submit_answer(tokens2[0], good(), now=later)
    assert list(PulseResponse.objects.values_list("round_id", flat=True)) == [second.pk]


def test_in_app_answer_at_most_once_per_round(member, pulse) -> None:
    rnd, _ = open_with_tokens(pulse)
    now = T0 + dt.timedelta(hours=1)
    answers.submit_in_app(member.membership, rnd.pk, good(), now=now)
    with pytest.raises(answers.LinkGone):
        answers.submit_in_app(member.membership, rnd.pk, good(), now=now)
    assert PulseResponse.objects.filter(round=rnd).count() == 1
    assert answers.open_rounds_for(member.membership, now) == [(rnd, True)]


def test_in_app_answer_other_organisation_is_not_found(outsider, pulse) -> None:
    rnd, _ = open_with_tokens(pulse)
    with pytest.raises(NotFound):
        answers.submit_in_app(outsider.membership, rnd.pk, good(), now=T0)


def test_rate_limit_per_address() -> None:
    throttle.reset("pulse-link", "10.0.0.9")
    for _ in range(answers.LINK_RATE_LIMIT):
        answers.throttle_link("10.0.0.9")
    with pytest.raises(TooManyRequests):
        answers.throttle_link("10.0.0.9")
    answers.throttle_link("10.0.0.10")
    throttle.reset("pulse-link", "10.0.0.9")


def test_group_choices_are_teams_and_stakeholder_departments(owner, org_a, pulse) -> None:
    strategy.create_team(owner.membership, owner.user, "Payments")
    Stakeholder.objects.create(organisation=org_a, name="S", email="s@x.example", department="sales")
    assert answers.group_choices(org_a.pk) == ["Payments", "Sales"]


def test_product_alignment_hidden_below_threshold_then_shown(owner, product, pulse, crowd) -> None:
    assert svc.product_alignment(owner.membership, product) is not None
    empty = svc.product_alignment(owner.membership, product)
    assert empty is not None and empty.responses == 0 and empty.index is None
    _, tokens = open_with_tokens(pulse)
    for raw in tokens[:4]:
        answers.submit_answer(raw, good(), now=T0)
    hidden = svc.product_alignment(owner.membership, product)
    assert hidden is not None and hidden.hidden and hidden.index is None and hidden.responses == 4
    answers.submit_answer(tokens[4], good(), now=T0)
    shown = svc.product_alignment(owner.membership, product)
    assert shown is not None and not shown.hidden and shown.responses == 5
    assert shown.invited == len(tokens) and shown.response_rate == pytest.approx(5 / len(tokens))
    # clarity 4 -> 0.75, commitment 5 -> 1; similarity scaled by 0.5 and clipped
    s = min(1.0, PulseResponse.objects.values_list("similarity", flat=True)[0] / 0.5)
    assert shown.index == pytest.approx(round(100 * (0.35 * 0.75 + 0.35 * 1 + 0.30 * s), 1))
    assert shown.round_closed_at == T0 + dt.timedelta(days=7)  # closed by time (the real clock is later)


def test_previous_index_and_organisation_alignment(owner, org_a, product, pulse, crowd) -> None:
    rnd1, tokens1 = open_with_tokens(pulse)
    for raw in tokens1[:5]:
        answers.submit_answer(raw, good(clarity=2, commitment=2, own_words="No idea really"), now=T0)
    svc.close_round(owner.membership, owner.user, rnd1.pk, now=T0 + dt.timedelta(days=1))
    _, tokens2 = open_with_tokens(pulse, now=T0 + dt.timedelta(days=2))
    for raw in tokens2[:6]:
        answers.submit_answer(raw, good(), now=T0 + dt.timedelta(days=2))
    summary = svc.product_alignment(owner.membership, product)
    assert summary is not None and summary.previous_index is not None
    assert summary.index is not None and summary.index > summary.previous_index
    other = strategy.create_product(owner.membership, owner.user, name="Other", vision="Be the best shop")
    assert svc.product_alignment(owner.membership, other) is None
    org = svc.organisation_alignment(owner.membership)
    assert org is not None and org.index == summary.index and org.responses == 6


def test_organisation_alignment_none_without_pulses(owner) -> None:
    assert svc.organisation_alignment(owner.membership) is None


def test_open_needs_a_statement(owner) -> None:
    bare = strategy.create_product(owner.membership, owner.user, name="Bare")
    pulse = svc.create_pulse(owner.membership, owner.user, product_id=bare.pk, title="P")
    with pytest.raises(ValidationFailed) as exc:
        svc.open_round(pulse, send=False)
    assert exc.value.field == "product"


def test_due_rounds_open_and_expired_close(owner, product) -> None:
    pulse = svc.create_pulse(
        owner.membership,
        owner.user,
        product_id=product.pk,
        title="Weekly",
        cadence_days=14,
        open_days=7,
        now=T0,
    )
    opened = svc.open_due_rounds(T0, pulse_id=pulse.pk)
    assert [r.number for r in opened] == [1]
    pulse.refresh_from_db()
    assert pulse.next_run_at == T0 + dt.timedelta(days=14)
    assert svc.open_due_rounds(T0 + dt.timedelta(days=1), pulse_id=pulse.pk) == []
    assert svc.close_expired_rounds(T0 + dt.timedelta(days=8)) == 1
    assert [r.number for r in svc.open_due_rounds(T0 + dt.timedelta(days=14), pulse_id=pulse.pk)] == [2]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submissions_of_one_token_store_one_answer(org_a, owner, product) -> None:
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith("file:memorydb"):
        pytest.skip("in-memory SQLite is one connection per thread")
    pulse = svc.create_pulse(owner.membership, owner.user, product_id=product.pk, title="P")
    _, tokens = svc.open_round(pulse, send=False)
    raw = tokens[0][1]
    now = timezone.now()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit() -> None:
        try:
            barrier.wait()
            answers.submit_answer(raw, good(), now=now)
            outcomes.append("stored")
        except answers.LinkGone:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "stored"]
    assert PulseResponse.objects.count() == 1


def test_organisation_alignment_reads_a_fixed_number_of_queries(
    owner, product, pulse, crowd, django_assert_num_queries
) -> None:
    def answered_round(p, n: int, when: dt.datetime) -> None:
        _, tokens = open_with_tokens(p, now=when)
        for raw in tokens[:n]:
            answers.submit_answer(raw, good(), now=when)

    answered_round(pulse, 5, T0)
    with django_assert_num_queries(4):  # pulses' products, answered rounds, answers, invitations
        one = svc.organisation_alignment(owner.membership)
    for i in range(3):
        other = strategy.create_product(owner.membership, owner.user, name=f"P{i}", product_goal=GOAL)
        p = svc.create_pulse(owner.membership, owner.user, product_id=other.pk, title=f"P{i}", now=T0)
        answered_round(p, 6, T0)
        svc.close_round(owner.membership, owner.user, p.rounds.get().pk, now=T0 + dt.timedelta(days=1))
        answered_round(p, 5, T0 + dt.timedelta(days=2))
    with django_assert_num_queries(4):
        many = svc.organisation_alignment(owner.membership)
    assert one is not None and many is not None
    assert one.responses == 5 and many.responses == 5 + 3 * 5
    assert many.previous_index is not None  # the three products' earlier rounds


def test_closing_a_round_announces_it_to_webhooks_without_any_answer(owner, admin, pulse, crowd) -> None:
    from truenorth.engagement.models import WebhookDelivery
    from truenorth.engagement.services import webhooks

    webhooks.create_webhook(
        admin.membership, admin.user, name="Slack", url="https://hooks.example.com/x", events=["pulse.closed"]
    )
    rnd, tokens = open_with_tokens(pulse)
    for raw in tokens[:5]:
        answers.submit_answer(raw, good(own_words="A secret answer"), now=T0)
    svc.close_round(owner.membership, owner.user, rnd.pk, now=T0 + dt.timedelta(days=1))
    delivery = WebhookDelivery.objects.get(kind="pulse.closed")
    data = delivery.payload["data"]
    assert data["round"] == 1 and data["responses"] == 5 and data["invited"] == len(tokens)
    assert data["alignment_index"] is not None and not data["hidden"]
    assert "A secret answer" not in str(delivery.payload)
    # A round that runs out of time is announced once, by the periodic task.
    open_with_tokens(pulse, now=T0 + dt.timedelta(days=2))
    assert svc.close_expired_rounds(now=T0 + dt.timedelta(days=30)) == 1
    assert svc.close_expired_rounds(now=T0 + dt.timedelta(days=31)) == 0
    second = WebhookDelivery.objects.filter(kind="pulse.closed").exclude(pk=delivery.pk).get()
    assert second.payload["data"]["round"] == 2 and second.payload["data"]["hidden"]
