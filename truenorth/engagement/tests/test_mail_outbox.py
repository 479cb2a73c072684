"""The outbox: queue_email records once per dedupe key, the worker sends through Django's e-mail backend,
failures are retried with backoff and end `failed` (visible) after the last attempt."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from django.core import mail as django_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from truenorth.core.errors import ValidationFailed
from truenorth.engagement.models import OutgoingEmail
from truenorth.engagement.services import mail

pytestmark = pytest.mark.django_db

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture(autouse=True)
def _locmem(settings) -> None:
    settings.EMAIL_BACKEND = LOCMEM
    settings.TRUENORTH_EMAIL_MAX_ATTEMPTS = 3


def _queue(org, key: str = "k1", **extra) -> OutgoingEmail:
    fields: dict[str, Any] = {"to": "someone@example.com", "subject": "Hello", "text": "Body", "kind": "other", "dedupe_key": key}
    fields.update(extra)
    return mail.queue_email(org, **fields)


def test_queue_email_sends_on_the_worker_with_html(org_a) -> None:
    email = _queue(org_a, html="<p>Body</p>")
    email.refresh_from_db()
    assert email.status == "sent" and email.attempts == 1 and email.sent_at is not None
    assert len(django_mail.outbox) == 1
    sent = django_mail.outbox[0]
    assert sent.to == ["someone@example.com"] and sent.subject == "Hello" and sent.body == "Body"
    assert getattr(sent, "alternatives")[0][0] == "<p>Body</p>"  # noqa: B009


def test_same_dedupe_key_returns_the_first_message_and_sends_once(org_a, org_b) -> None:
    first = _queue(org_a, "same")
    again = _queue(org_a, "same", subject="Different")
    assert again.pk == first.pk and again.subject == "Hello"
    assert len(django_mail.outbox) == 1
    other_org = _queue(org_b, "same")  # keys are per organisation
    assert other_org.pk != first.pk and len(django_mail.outbox) == 2


def test_dedupe_key_is_a_database_constraint(org_a) -> None:
    _queue(org_a, "dup")
    with pytest.raises(IntegrityError), transaction.atomic():
        OutgoingEmail.objects.create(organisation=org_a, to="x@example.com", subject="s", text="t", dedupe_key="dup")


def test_not_sent_before_the_transaction_commits(org_a, django_capture_on_commit_callbacks) -> None:
    from huey.contrib.djhuey import HUEY

    HUEY.immediate = False
    with mock.patch("truenorth.engagement.jobs.mail.send_email_task") as task:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            email = _queue(org_a)
        task.assert_not_called()
        assert len(callbacks) == 1
        callbacks[0]()
        task.assert_called_once_with(email.pk)


def test_bad_input_is_refused(org_a) -> None:
    with pytest.raises(ValidationFailed) as exc:
        _queue(org_a, to="not-an-address")
    assert exc.value.field == "to"
    with pytest.raises(ValidationFailed) as exc:
        _queue(org_a, kind="spam")
    assert exc.value.field == "kind"
    with pytest.raises(ValidationFailed) as exc:
        _queue(org_a, key="")
    assert exc.value.field == "dedupe_key"
    assert not OutgoingEmail.objects.exists()


def _failing_send(self, fail_silently=False):
    raise ConnectionRefusedError("SMTP server refused")


def test_failure_is_recorded_and_retried_with_backoff_then_sent(org_a) -> None:
    start = timezone.now()
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", _failing_send):
        email = _queue(org_a)
    email.refresh_from_db()
    assert email.status == "queued" and email.attempts == 1
    assert "SMTP server refused" in email.last_error
    assert email.next_attempt_at is not None
    assert dt.timedelta(seconds=50) < email.next_attempt_at - start < dt.timedelta(minutes=2)

    # Not yet due: the periodic task leaves it alone.
    assert mail.send_due(now=email.next_attempt_at - dt.timedelta(seconds=1)) == {"sent": 0, "retrying": 0, "failed": 0}
    # Second failure: the wait grows to 5 minutes.
    due = email.next_attempt_at
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", _failing_send):
        assert mail.send_due(now=due)["retrying"] == 1
    email.refresh_from_db()
    assert email.attempts == 2 and email.next_attempt_at == due + dt.timedelta(minutes=5)
    # Third attempt works.
    assert mail.send_due(now=email.next_attempt_at)["sent"] == 1
    email.refresh_from_db()
    assert email.status == "sent" and email.attempts == 3 and email.last_error == ""
    assert len(django_mail.outbox) == 1


def test_failed_after_max_attempts_stays_visible_and_can_be_retried(org_a, admin) -> None:
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", _failing_send):
        email = _queue(org_a)
        for _ in range(5):
            email.refresh_from_db()
            if email.status != "queued":
                break
            mail.send_due(now=email.next_attempt_at)
    email.refresh_from_db()
    assert email.status == "failed" and email.attempts == 3 and email.next_attempt_at is None
    assert mail.outbox(admin.membership, status="failed").get() == email
    # Nothing picks a failed message up on its own …
    assert mail.send_due(now=timezone.now() + dt.timedelta(days=30))["sent"] == 0
    # … an admin's "retry now" sends it.
    mail.retry_now(admin.membership, admin.user, email.pk)
    email.refresh_from_db()
    assert email.status == "sent" and len(django_mail.outbox) == 1


def test_claim_is_atomic_no_double_send(org_a) -> None:
    from huey.contrib.djhuey import HUEY

    HUEY.immediate = False
    with transaction.atomic():
        email = _queue(org_a)
    first = mail.claim(email.pk)
    second = mail.claim(email.pk)
    assert first is not None and second is None
    assert mail.deliver(email.pk) is None  # another worker holds it
    assert django_mail.outbox == []
    # A sender that died: after the lease, another worker takes it over.
    later = timezone.now() + mail.SENDING_LEASE + dt.timedelta(seconds=1)
    assert mail.deliver(email.pk, now=later) == "sent"
    assert len(django_mail.outbox) == 1
    assert mail.deliver(email.pk, now=later) is None


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_send_once(org_a, settings) -> None:
    """Two threads (two workers) deliver the same message at the same moment: one send."""
    import threading

    from django.db import connection, connections
    from huey.contrib.djhuey import HUEY

    if connection.vendor != "postgresql":
        pytest.skip("threads share one SQLite in-memory database; the race needs a real server")
    HUEY.immediate = False
    with mock.patch.object(mail, "_enqueue"):  # no real queue: the two threads are the workers
        email = _queue(org_a)
    barrier = threading.Barrier(2)
    results: list[str | None] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(mail.deliver(email.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=str) == sorted(["sent", None], key=str)
    assert len(django_mail.outbox) == 1
    email.refresh_from_db()
    assert email.status == "sent" and email.attempts == 1
