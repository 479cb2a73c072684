"""The weekly digest: what changed in what a person follows; nothing changed → nothing sent; once a week."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail as django_mail
from django.utils import timezone

from truenorth.engagement.models import OutgoingEmail
from truenorth.engagement.services import mail, mail_digest
from truenorth.hypotheses.models import Decision
from truenorth.hypotheses.services import create_hypothesis
from truenorth.measures import services as measures
from truenorth.strategy import services as strategy
from truenorth.strategy.models import Goal

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _locmem(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def _texts(digest: mail_digest.Digest) -> dict[str, list[str]]:
    return {title: [i.text for i in items] for title, items in digest.sections if items}


def test_nothing_followed_or_changed_sends_nothing(member) -> None:
    outcome = mail_digest.send_digest(member.membership)
    assert outcome.status == "nothing"
    assert not OutgoingEmail.objects.exists() and django_mail.outbox == []


def test_digest_lists_what_changed_in_what_the_person_follows(member, admin) -> None:
    now = timezone.now()
    product = strategy.create_product(admin.membership, admin.user, name="Trail app")
    parent = strategy.create_goal(admin.membership, admin.user, title="Own goal", owner_id=member.user.pk,
                                  status=Goal.Status.ACTIVE)
    mail.follow(member.membership, product_id=product.pk)
    strategy.create_goal(admin.membership, admin.user, title="New in product", product_id=product.pk)
    strategy.create_goal(admin.membership, admin.user, title="Elsewhere")  # not followed

    proposal = strategy.propose_change(admin.membership, admin.user, parent.pk, {"title": "Own goal, renamed"})
    strategy.decide_proposal(member.membership, member.user, proposal.pk, accept=True)

    strategy.check_in(admin.membership, admin.user, parent.pk, status="at_risk", confidence=4)
    hypothesis = create_hypothesis(admin.membership, admin.user, product.pk, title="Maps sell")
    Decision.objects.create(hypothesis=hypothesis, outcome="validated", decision="persevere", learning="Yes")

    crossing = measures.create_measure(admin.membership, admin.user, name="Weekly riders", kva="current_value",
                                       product_id=product.pk, target=100, cadence_days=30)
    measures.add_observation(admin.membership, admin.user, crossing.pk, 80, observed_at=now - 3 * DAY)
    measures.add_observation(admin.membership, admin.user, crossing.pk, 120, observed_at=now - DAY)
    stale = measures.create_measure(admin.membership, admin.user, name="NPS", kva="current_value",
                                    product_id=product.pk, cadence_days=5)
    measures.add_observation(admin.membership, admin.user, stale.pk, 30, observed_at=now - 6 * DAY)

    digest = mail_digest.build_digest(member.membership, now=now + dt.timedelta(seconds=1), since=now - 2 * DAY)
    texts = _texts(digest)
    assert texts["New goals"] == ["New in product (Trail app)"]
    assert texts["Accepted change proposals"][0].startswith("Own goal, renamed: changed title")
    assert texts["Decisions recorded"] == ["Maps sell: Validated, persevere"]
    assert texts["Measures crossing their target"] == ["Weekly riders reached its target (120 against 100)"]
    assert texts["Evidence gone stale"][0].startswith("NPS: last observed")
    # From the history: the admin's check-in; the person's own acceptance is not news to them.
    assert texts["Other changes"] == [f"Own goal, renamed: updated check-in by {admin.user.email}"]
    assert not any("Elsewhere" in t for ts in texts.values() for t in ts)

    outcome = mail_digest.send_digest(member.membership, now=now + dt.timedelta(seconds=2))
    assert outcome.status == "sent"
    assert len(django_mail.outbox) == 1
    sent = django_mail.outbox[0]
    assert sent.to == [member.user.email] and "weekly digest" in sent.subject
    assert "New in product" in sent.body and "Weekly riders reached its target" in sent.body
    html = dict((m, c) for c, m in getattr(sent, "alternatives"))["text/html"]  # noqa: B009
    assert "New in product" in html
    assert sent.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # Once per week: a second run in the same week sends nothing more.
    assert mail_digest.send_digest(member.membership, now=now + dt.timedelta(seconds=3)).status == "already"
    assert len(django_mail.outbox) == 1
    # Next week: since the last digest, nothing changed → nothing sent.
    assert mail_digest.send_digest(member.membership, now=now + 7 * DAY).status == "nothing"
    assert len(django_mail.outbox) == 1


def test_digest_since_defaults_to_seven_days_and_the_last_digest(member, admin) -> None:
    now = timezone.now()
    digest = mail_digest.build_digest(member.membership, now=now)
    assert digest.since == now - 7 * DAY
    product = strategy.create_product(admin.membership, admin.user, name="P", owner_id=member.user.pk)
    strategy.create_goal(admin.membership, admin.user, title="G1", product_id=product.pk)
    assert mail_digest.send_digest(member.membership).status == "sent"  # owns the product
    last = OutgoingEmail.objects.get()
    assert mail_digest.build_digest(member.membership).since == last.created_at


def test_recipients_follow_settings_and_weekday(member, admin) -> None:
    monday = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)
    people = {m.user.email for m in mail_digest.recipients(now=monday)}
    assert member.user.email in people  # digest on, Monday, by default
    mail.update_settings(member.membership, digest_weekday=2)
    assert member.user.email not in {m.user.email for m in mail_digest.recipients(now=monday)}
    assert member.user.email in {m.user.email for m in mail_digest.recipients(now=monday + 2 * DAY)}
    mail.update_settings(member.membership, weekly_digest=False)
    assert member.user.email not in {m.user.email for m in mail_digest.recipients(now=monday, due_only=False)}


def test_digest_dry_run_records_nothing(member, admin) -> None:
    strategy.create_goal(admin.membership, admin.user, title="Mine", owner_id=member.user.pk)
    child_parent = Goal.objects.get(title="Mine")
    strategy.create_goal(admin.membership, admin.user, title="Child", parent_id=child_parent.pk)
    outcomes = mail_digest.send_digests(due_only=False, dry_run=True)
    mine = [o for o in outcomes if o.membership.user == member.user]
    assert mine[0].status == "would send"
    assert not OutgoingEmail.objects.exists()


def test_digest_is_per_organisation(member, admin, outsider, org_b) -> None:
    product_b = strategy.create_product(outsider.membership, outsider.user, name="B product")
    strategy.create_goal(outsider.membership, outsider.user, title="Bravo secret goal", product_id=product_b.pk)
    # A follow can only name the organisation's own objects.
    from truenorth.core.errors import NotFound

    with pytest.raises(NotFound):
        mail.follow(member.membership, product_id=product_b.pk)
    digest = mail_digest.build_digest(member.membership)
    assert digest.empty
