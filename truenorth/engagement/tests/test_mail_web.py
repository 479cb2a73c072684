"""Mail pages, API and commands: one-click unsubscribe without signing in, the outbox (admins), notification
settings (version, 409), follows, the digest preview, isolation between organisations, CLI errors."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail as django_mail
from django.test import Client
from django.urls import reverse

from truenorth import cli
from truenorth.engagement.models import Follow, NotificationSettings, OutgoingEmail
from truenorth.engagement.services import mail, mail_reminders, throttle
from truenorth.history.models import HistoryEntry
from truenorth.strategy import services as strategy
from truenorth.strategy.models import Goal

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "http://testserver"


@pytest.fixture(autouse=True)
def _no_identity_from_environment(monkeypatch):
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)


def _reminded(persona) -> OutgoingEmail:
    goal = strategy.create_goal(persona.membership, persona.user, title="Ship maps", owner_id=persona.user.pk,
                                status=Goal.Status.ACTIVE)
    mail_reminders.send_reminders(now=goal.created_at + dt.timedelta(days=7))
    return OutgoingEmail.objects.get(kind="reminder")


def test_one_click_unsubscribe_without_signing_in(member) -> None:
    _reminded(member)
    url = django_mail.outbox[0].extra_headers["List-Unsubscribe"].strip("<>")
    path = url.removeprefix("http://testserver")
    anonymous = Client(enforce_csrf_checks=True)
    page = anonymous.get(path)
    assert page.status_code == 200 and b"Unsubscribe" in page.content and member.user.email.encode() in page.content
    assert mail.settings_for(member.user, member.membership.organisation).checkin_reminders  # GET changes nothing
    # RFC 8058: the mail provider POSTs List-Unsubscribe=One-Click, without any cookie or CSRF token.
    done = anonymous.post(path, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and b"Unsubscribed" in done.content
    settings = NotificationSettings.objects.get(user=member.user)
    assert settings.checkin_reminders is False and settings.weekly_digest is True and settings.version == 2
    assert HistoryEntry.objects.filter(object_type="engagement.notificationsettings").count() == 1
    assert anonymous.post(path).status_code == 200  # twice: nothing more changes
    assert NotificationSettings.objects.get(user=member.user).version == 2


def test_tampered_or_foreign_token_is_404(member) -> None:
    token = mail.unsubscribe_token(member.user, member.membership.organisation, "reminder")
    anonymous = Client()
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "nonsense", token + "x"):
        response = anonymous.post(reverse("engagement:unsubscribe", kwargs={"token": bad}))
        assert response.status_code == 404
    from django.core import signing

    other_salt = signing.dumps({"u": member.user.pk, "o": member.membership.organisation_id, "k": "reminder"})
    assert anonymous.get(reverse("engagement:unsubscribe", kwargs={"token": other_salt})).status_code == 404
    assert mail.settings_for(member.user, member.membership.organisation).checkin_reminders


def test_unsubscribe_link_is_stable_and_links_sent_before_v2_still_work(member) -> None:
    import time
    from unittest import mock

    from django.core import signing

    organisation = member.membership.organisation
    first = mail.unsubscribe_token(member.user, organisation, "reminder")
    with mock.patch("django.core.signing.time.time", return_value=time.time() + 5):
        assert mail.unsubscribe_token(member.user, organisation, "reminder") == first
    assert mail.unsubscribe_token(member.user, organisation, "digest") != first
    legacy = signing.dumps(
        {"u": member.user.pk, "o": organisation.pk, "k": "reminder"},
        salt="truenorth.engagement.unsubscribe", compress=True,
    )
    assert Client().post(reverse("engagement:unsubscribe", kwargs={"token": legacy})).status_code == 200
    assert mail.settings_for(member.user, organisation).checkin_reminders is False


def test_unsubscribe_is_rate_limited(member) -> None:
    throttle.reset("unsubscribe-bad", "127.0.0.1")
    url = reverse("engagement:unsubscribe", kwargs={"token": "nonsense"})
    anonymous = Client()
    codes = [anonymous.get(url).status_code for _ in range(31)]
    assert codes[:30] == [404] * 30 and codes[30] == 429
    throttle.reset("unsubscribe-bad", "127.0.0.1")
    # A valid link is limited per link (many people share a mail provider's address).
    organisation = member.membership.organisation
    link = f"{member.user.pk}:{organisation.pk}:digest"
    throttle.reset("unsubscribe", link)
    good = reverse("engagement:unsubscribe", kwargs={"token": mail.unsubscribe_token(member.user, organisation, "digest")})
    codes = [anonymous.get(good).status_code for _ in range(31)]
    assert codes[:30] == [200] * 30 and codes[30] == 429
    throttle.reset("unsubscribe", link)


def test_outbox_page_and_retry_for_admins_only(member, admin, outsider) -> None:
    email = _reminded(member)
    OutgoingEmail.objects.filter(pk=email.pk).update(status="failed", last_error="SMTP down", attempts=5)
    slug = member.membership.organisation.slug
    url = reverse("engagement:outbox", kwargs={"org_slug": slug})
    page = admin.client.get(url)
    assert page.status_code == 200 and b"SMTP down" in page.content and b"Retry now" in page.content
    assert member.client.get(url).status_code == 403
    assert outsider.client.get(url).status_code == 404
    retry = reverse("engagement:outbox_retry", kwargs={"org_slug": slug, "email_id": email.pk})
    assert outsider.client.post(retry).status_code == 404
    assert outsider.client.post(
        reverse("engagement:outbox_retry", kwargs={"org_slug": "bravo-secret", "email_id": email.pk})
    ).status_code == 404
    assert admin.client.post(retry).status_code == 302
    email.refresh_from_db()
    assert email.status == "sent" and len(django_mail.outbox) == 2


def test_settings_page_saves_and_refuses_a_stale_version(member) -> None:
    url = reverse("engagement:notification_settings", kwargs={"org_slug": "alpha"})
    page = member.client.get(url)
    assert page.status_code == 200
    data = {"checkin_reminders": "on", "digest_weekday": "3", "version": "1"}
    assert member.client.post(url, data).status_code == 302
    saved = NotificationSettings.objects.get(user=member.user)
    assert (saved.checkin_reminders, saved.weekly_digest, saved.digest_weekday, saved.version) == (True, False, 3, 2)
    stale = member.client.post(url, {**data, "weekly_digest": "on"})
    assert stale.status_code == 200 and "changed by someone else" in stale.content.decode()
    assert NotificationSettings.objects.get(user=member.user).weekly_digest is False
    # Unchanged: nothing written.
    before = HistoryEntry.objects.count()
    assert member.client.post(url, {**data, "version": "2"}).status_code == 302
    assert HistoryEntry.objects.count() == before and NotificationSettings.objects.get(user=member.user).version == 2


def test_follow_buttons_and_digest_preview(member, admin, outsider) -> None:
    goal = strategy.create_goal(admin.membership, admin.user, title="Followed goal")
    follow = reverse("engagement:follow_goal", kwargs={"org_slug": "alpha", "goal_id": goal.pk})
    assert member.client.get(follow).status_code == 405
    assert member.client.post(follow, {"next": f"/o/alpha/goals/{goal.pk}/"})["Location"] == f"/o/alpha/goals/{goal.pk}/"
    assert member.client.post(follow, {"next": "https://evil.example/"})["Location"].endswith(
        "/o/alpha/settings/notifications/"
    )
    assert Follow.objects.filter(user=member.user, goal=goal).count() == 1
    assert outsider.client.post(
        reverse("engagement:follow_goal", kwargs={"org_slug": "bravo-secret", "goal_id": goal.pk})
    ).status_code == 404
    strategy.create_goal(admin.membership, admin.user, title="Child of followed", parent_id=goal.pk)
    preview = member.client.get(reverse("engagement:digest_preview", kwargs={"org_slug": "alpha"}))
    assert preview.status_code == 200 and b"Child of followed" in preview.content
    assert member.client.post(
        reverse("engagement:unfollow_goal", kwargs={"org_slug": "alpha", "goal_id": goal.pk})
    ).status_code == 302
    assert not Follow.objects.filter(user=member.user).exists()


def test_api_settings_follows_and_outbox(member, admin, outsider, stakeholder) -> None:
    api = member.api()
    assert api.get("/api/v1/orgs/alpha/notification-settings").json()["version"] == 1
    changed = api.put("/api/v1/orgs/alpha/notification-settings", {"digest_weekday": 4, "version": 1},
                      content_type="application/json")
    assert changed.status_code == 200 and changed.json()["digest_weekday"] == 4 and changed.json()["version"] == 2
    stale = api.put("/api/v1/orgs/alpha/notification-settings", {"digest_weekday": 5, "version": 1},
                    content_type="application/json")
    assert stale.status_code == 409
    bad = api.put("/api/v1/orgs/alpha/notification-settings", {"digest_weekday": 9, "version": 2},
                  content_type="application/json")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "digest_weekday"
    missing = api.put("/api/v1/orgs/alpha/notification-settings", {"digest_weekday": 5},
                      content_type="application/json")
    assert missing.status_code == 422
    # Stakeholders (read-only role) have their own settings too.
    assert stakeholder.api().put("/api/v1/orgs/alpha/notification-settings", {"weekly_digest": False, "version": 1},
                                 content_type="application/json").status_code == 200

    product = strategy.create_product(admin.membership, admin.user, name="Trail app")
    assert api.put(f"/api/v1/orgs/alpha/follows/products/{product.pk}").status_code == 200
    assert api.put(f"/api/v1/orgs/alpha/follows/products/{product.pk}").status_code == 200  # again: same
    assert [f["name"] for f in api.get("/api/v1/orgs/alpha/follows").json()] == ["Trail app"]
    assert outsider.api().put(f"/api/v1/orgs/bravo-secret/follows/products/{product.pk}").status_code == 404
    assert outsider.api().get("/api/v1/orgs/alpha/follows").status_code == 404
    assert api.put("/api/v1/orgs/alpha/follows/goals/999999").status_code == 404
    assert api.delete(f"/api/v1/orgs/alpha/follows/products/{product.pk}").status_code == 204
    assert api.get("/api/v1/orgs/alpha/follows").json() == []
    assert member.api_read().put(f"/api/v1/orgs/alpha/follows/products/{product.pk}").status_code == 403

    preview = api.get("/api/v1/orgs/alpha/digest/preview").json()
    assert preview["empty"] is True and preview["product_ids"] == [] and preview["goal_ids"] == []

    email = mail.queue_email(admin.membership.organisation, to="x@example.com", subject="S", text="T",
                             kind="other", dedupe_key="api-test")
    assert api.get("/api/v1/orgs/alpha/outbox").status_code == 403
    listed = admin.api().get("/api/v1/orgs/alpha/outbox?status=sent").json()
    assert [e["id"] for e in listed] == [email.pk]
    assert admin.api().get("/api/v1/orgs/alpha/outbox?status=nope").status_code == 422
    assert outsider.api().get("/api/v1/orgs/alpha/outbox").status_code == 404
    assert outsider.api().post(f"/api/v1/orgs/bravo-secret/outbox/{email.pk}/retry").status_code == 404
    retry_sent = admin.api().post(f"/api/v1/orgs/alpha/outbox/{email.pk}/retry")
    assert retry_sent.status_code == 422  # already sent: nothing to retry


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_reminders_and_digest(capsys, member, admin) -> None:
    goal = strategy.create_goal(member.membership, member.user, title="Due goal", owner_id=member.user.pk,
                                status=Goal.Status.ACTIVE, checkin_cadence_days=1)
    Goal.objects.filter(pk=goal.pk).update(created_at=goal.created_at - dt.timedelta(days=2))
    code, out, _ = _run(capsys, "reminders", "send", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["reminders"][0]["goal_id"] == goal.pk
    assert not OutgoingEmail.objects.exists()
    code, out, _ = _run(capsys, "reminders", "send", "--org", "alpha")
    assert code == 0 and "1 reminder(s) queued" in out and len(django_mail.outbox) == 1
    code, out, _ = _run(capsys, "reminders", "send")
    assert code == 0 and "0 reminder(s) queued" in out

    strategy.create_goal(admin.membership, admin.user, title="Under the due goal", parent_id=goal.pk)
    code, out, _ = _run(capsys, "digest", "send", "--org", "alpha", "--dry-run", "--json")
    rows = {r["person"]: r for r in json.loads(out)["digests"]}
    assert rows[member.user.email]["status"] == "would send"
    assert rows[admin.user.email]["status"] == "nothing"
    code, out, _ = _run(capsys, "digest", "send", "--org", "alpha")
    assert code == 0 and "1 digest(s) queued" in out
    assert OutgoingEmail.objects.filter(kind="digest", user=member.user).count() == 1
    code, out, _ = _run(capsys, "digest", "preview", "--org", "alpha", "--as", member.user.email)
    assert code == 0 and "Nothing changed" in out

    code, _, err = _run(capsys, "digest", "send", "--org", "nowhere")
    assert code == 2 and err.strip() == "error: --org: No organisation 'nowhere'."
    code, _, err = _run(capsys, "digest", "preview", "--org", "bravo-secret", "--as", member.user.email)
    assert code == 2 and err.startswith("error: --org: No organisation 'bravo-secret'")
