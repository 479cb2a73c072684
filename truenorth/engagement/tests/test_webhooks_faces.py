"""Outgoing webhooks through their faces: the API (CRUD, deliveries, replay, test, errors), the pages,
`truenorth webhooks …` and the demo's delivery log."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from truenorth import cli
from truenorth.engagement.demo import webhooks as demo
from truenorth.engagement.models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from truenorth.engagement.services import webhooks
from truenorth.history.models import HistoryEntry

pytestmark = pytest.mark.django_db

API = "/api/v1/orgs/alpha"
URL = "https://hooks.example.com/services/T1/B1/token-xyz"


@pytest.fixture(autouse=True)
def _no_identity_from_environment(monkeypatch):
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)


def _post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def _patch(client, path, body):
    return client.patch(path, json.dumps(body), content_type="application/json")


def _hook(admin, **kwargs):
    return webhooks.create_webhook(
        admin.membership, admin.user, name=kwargs.pop("name", "Ops"), url=URL, **kwargs
    )[0]


# --- API --------------------------------------------------------------------------------------------


def test_api_crud(admin, member):
    api = admin.api()
    made = _post(
        api, f"{API}/webhooks", {"name": "Ops", "url": URL, "format": "slack", "events": ["goal.created"]}
    )
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["secret"].startswith("whsec_") and body["url"] == URL and body["version"] == 1
    hook_id = body["id"]
    listed = api.get(f"{API}/webhooks").json()
    assert [h["name"] for h in listed] == ["Ops"] and "secret" not in listed[0]
    # Members read the list with the URL masked (it holds a token).
    seen = member.api().get(f"{API}/webhooks").json()
    assert seen[0]["url"] == "https://hooks.example.com/…"
    changed = _patch(api, f"{API}/webhooks/{hook_id}", {"version": 1, "active": False})
    assert changed.status_code == 200 and changed.json()["active"] is False and changed.json()["version"] == 2
    stale = _patch(api, f"{API}/webhooks/{hook_id}", {"version": 1, "name": "Other"})
    assert stale.status_code == 409
    rotated = _post(api, f"{API}/webhooks/{hook_id}/rotate-secret", {"version": 2})
    assert rotated.status_code == 200 and rotated.json()["secret"] != body["secret"]
    assert api.delete(f"{API}/webhooks/{hook_id}").status_code == 204
    assert api.get(f"{API}/webhooks/{hook_id}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "url": "http://127.0.0.1/hook"}, "url"),
        ({"name": "x", "url": "http://169.254.169.254/latest"}, "url"),
        ({"name": "x", "url": "https://u:p@hooks.example.com/"}, "url"),
        ({"name": "x", "url": "gopher://hooks.example.com/"}, "url"),
        ({"name": "x", "url": URL, "events": ["nope"]}, "events"),
        ({"name": "x", "url": URL, "format": "xml"}, "format"),
        ({"name": "x", "url": URL, "surprise": 1}, "surprise"),
    ],
)
def test_api_bad_input_is_a_422_naming_the_field(admin, body, field):
    answer = _post(admin.api(), f"{API}/webhooks", body)
    assert answer.status_code == 422, answer.content
    data = answer.json()
    assert data["detail"] and any(field in (e["field"] or "") for e in data["errors"]), data


def test_api_writes_need_an_admin(member, admin):
    hook = _hook(admin)
    api = member.api()
    assert _post(api, f"{API}/webhooks", {"name": "x", "url": URL}).status_code == 403
    assert _post(api, f"{API}/webhooks/{hook.pk}/test", {}).status_code == 403
    assert api.delete(f"{API}/webhooks/{hook.pk}").status_code == 403


def test_api_test_deliveries_and_replay(admin, monkeypatch):
    hook = _hook(admin)
    sent: list[int] = []
    monkeypatch.setattr(webhooks, "_enqueue", lambda ids: sent.extend(ids))
    api = admin.api()
    tested = _post(api, f"{API}/webhooks/{hook.pk}/test", {})
    assert (
        tested.status_code == 202 and tested.json()["kind"] == "test" and tested.json()["status"] == "pending"
    )
    delivery_id = tested.json()["id"]
    webhooks.record_attempt(
        WebhookDelivery.objects.get(pk=delivery_id), webhooks.Outcome(code=500, excerpt="boom")
    )
    failed = api.get(f"{API}/webhook-deliveries", {"status": "retrying"}).json()
    assert [d["id"] for d in failed] == [delivery_id] and failed[0]["last_error"] == "HTTP 500"
    assert api.get(f"{API}/webhook-deliveries", {"status": "delivered"}).json() == []
    assert api.get(f"{API}/webhook-deliveries", {"status": "lost"}).status_code == 422
    detail = api.get(f"{API}/webhook-deliveries/{delivery_id}").json()
    assert detail["attempt_log"][0]["response_code"] == 500 and detail["payload"]["event"] == "test"
    replayed = _post(api, f"{API}/webhook-deliveries/{delivery_id}/replay", {})
    assert replayed.status_code == 202 and replayed.json()["replay_of"] == delivery_id
    assert sent == [delivery_id, replayed.json()["id"]]
    kinds = [e["kind"] for e in api.get(f"{API}/webhook-events").json()]
    assert "proposal.accepted" in kinds and "pulse.closed" in kinds


def test_api_other_organisation_is_not_found(admin, outsider):
    hook = _hook(admin)
    delivery = WebhookDelivery.objects.create(webhook=hook, kind="test", payload={})
    api = outsider.api()
    assert api.get(f"{API}/webhooks").status_code == 404
    own = "/api/v1/orgs/bravo-secret"
    assert api.get(f"{own}/webhooks/{hook.pk}").status_code == 404
    assert _patch(api, f"{own}/webhooks/{hook.pk}", {"version": 1, "name": "x"}).status_code == 404
    assert api.get(f"{own}/webhook-deliveries/{delivery.pk}").status_code == 404
    assert _post(api, f"{own}/webhook-deliveries/{delivery.pk}/replay", {}).status_code == 404
    assert api.get(f"{own}/webhook-deliveries", {"webhook": hook.pk}).json() == []


# --- pages ------------------------------------------------------------------------------------------


def test_pages_create_shows_the_secret_once(admin, member):
    page = reverse("engagement:webhooks", kwargs={"org_slug": "alpha"})
    answer = admin.client.post(page, {"name": "Ops", "url": URL, "format": "json", "active": "on"})
    assert answer.status_code == 201
    assert b'data-testid="webhook-secret"' in answer.content and b"whsec_" in answer.content
    hook = Webhook.objects.get()
    detail = admin.client.get(
        reverse("engagement:webhook", kwargs={"org_slug": "alpha", "webhook_id": hook.pk})
    )
    assert detail.status_code == 200 and b"whsec_" not in detail.content and URL.encode() in detail.content
    listed = member.client.get(page)
    assert listed.status_code == 200 and b"Ops" in listed.content and b"token-xyz" not in listed.content
    assert b"Add a webhook" not in listed.content
    assert member.client.post(page, {"name": "X", "url": URL, "format": "json"}).status_code == 403


def test_pages_refuse_a_private_address_on_the_form(admin):
    page = reverse("engagement:webhooks", kwargs={"org_slug": "alpha"})
    answer = admin.client.post(page, {"name": "Ops", "url": "http://10.0.0.5/x", "format": "json"})
    assert answer.status_code == 422 and b"10.0.0.5, a private address" in answer.content
    assert not Webhook.objects.exists()


def test_pages_edit_unchanged_writes_nothing(admin):
    hook = _hook(admin, events=["goal.created", "checkin.recorded"])
    url = reverse("engagement:webhook", kwargs={"org_slug": "alpha", "webhook_id": hook.pk})
    form = {"name": "Ops", "url": URL, "format": "json", "events": hook.events, "active": "on", "version": 1}
    before = HistoryEntry.objects.count()
    assert admin.client.post(url, form).status_code == 302
    hook.refresh_from_db()
    assert hook.version == 1 and HistoryEntry.objects.count() == before
    stale = admin.client.post(url, {**form, "name": "Other", "version": 0})
    assert stale.status_code == 422
    assert admin.client.post(url, {**form, "active": ""}).status_code == 302
    hook.refresh_from_db()
    assert hook.active is False and hook.version == 2


def test_pages_test_replay_and_delivery_log(admin, member, monkeypatch):
    monkeypatch.setattr(webhooks, "_enqueue", lambda ids: None)
    hook = _hook(admin)
    kw = {"org_slug": "alpha", "webhook_id": hook.pk}
    assert admin.client.post(reverse("engagement:webhook_test", kwargs=kw)).status_code == 302
    delivery = WebhookDelivery.objects.get()
    webhooks.record_attempt(delivery, webhooks.Outcome(code=503, excerpt="busy"))
    page = admin.client.get(reverse("engagement:webhook", kwargs=kw))
    assert b"HTTP 503" in page.content and b'data-testid="replay"' in page.content
    dkw = {"org_slug": "alpha", "delivery_id": delivery.pk}
    shown = member.client.get(reverse("engagement:webhook_delivery", kwargs=dkw))
    assert (
        shown.status_code == 200 and b"busy" in shown.content and b'data-testid="replay"' not in shown.content
    )
    assert member.client.post(reverse("engagement:webhook_replay", kwargs=dkw)).status_code == 403
    assert admin.client.post(reverse("engagement:webhook_replay", kwargs=dkw)).status_code == 302
    assert WebhookDelivery.objects.filter(replay_of=delivery).count() == 1
    filtered = admin.client.get(
        reverse("engagement:webhooks", kwargs={"org_slug": "alpha"}), {"status": "failed"}
    )
    assert b"No deliveries with this status" in filtered.content


def test_pages_other_organisation_is_404(admin, outsider):
    hook = _hook(admin)
    delivery = WebhookDelivery.objects.create(webhook=hook, kind="test", payload={})
    c = outsider.client
    assert c.get(reverse("engagement:webhooks", kwargs={"org_slug": "alpha"})).status_code == 404
    own = {"org_slug": "bravo-secret"}
    assert c.get(reverse("engagement:webhook", kwargs={**own, "webhook_id": hook.pk})).status_code == 404
    assert (
        c.post(reverse("engagement:webhook_delete", kwargs={**own, "webhook_id": hook.pk})).status_code == 404
    )
    assert (
        c.get(reverse("engagement:webhook_delivery", kwargs={**own, "delivery_id": delivery.pk})).status_code
        == 404
    )
    assert (
        c.post(reverse("engagement:webhook_replay", kwargs={**own, "delivery_id": delivery.pk})).status_code
        == 404
    )
    assert Webhook.objects.filter(pk=hook.pk).exists()


def test_pages_delete_and_rotate(admin):
    hook = _hook(admin)
    kw = {"org_slug": "alpha", "webhook_id": hook.pk}
    rotated = admin.client.post(reverse("engagement:webhook_rotate", kwargs=kw), {"version": 1})
    assert rotated.status_code == 200 and b"whsec_" in rotated.content
    stale = admin.client.post(reverse("engagement:webhook_rotate", kwargs=kw), {"version": 1})
    assert stale.status_code == 302
    assert admin.client.post(reverse("engagement:webhook_delete", kwargs=kw)).status_code == 302
    assert not Webhook.objects.exists()


# --- CLI --------------------------------------------------------------------------------------------


def _run(capsys, persona, *args: str, org: str = "alpha") -> tuple[int, str, str]:
    code = cli.main(["webhooks", *args, "--org", org, "--as", persona.user.email])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err
    assert fragment in err, err


def test_cli_add_list_deliveries_replay(capsys, admin, monkeypatch):
    monkeypatch.setattr(webhooks, "_enqueue", lambda ids: None)
    code, out, err = _run(
        capsys, admin, "add", "Ops", URL, "--format", "teams", "--event", "goal.created", "--json"
    )
    assert code == 0, err
    made = json.loads(out)
    assert (
        made["secret"].startswith("whsec_")
        and made["events"] == ["goal.created"]
        and made["format"] == "teams"
    )
    code, out, _ = _run(capsys, admin, "list", "--json")
    assert code == 0 and json.loads(out)[0]["url"] == URL
    code, out, _ = _run(capsys, admin, "test", str(made["id"]), "--json")
    assert code == 0
    delivery_id = json.loads(out)["id"]
    code, out, _ = _run(capsys, admin, "deliveries", "--status", "pending", "--json")
    assert code == 0 and [d["id"] for d in json.loads(out)] == [delivery_id]
    code, out, _ = _run(capsys, admin, "replay", str(delivery_id))
    assert code == 0 and "Replay queued as delivery" in out
    code, out, _ = _run(capsys, admin, "deliveries")
    assert code == 0 and "Webhook deliveries" in out


def test_cli_errors(capsys, admin, member, outsider):
    _one_line_error(*_run(capsys, admin, "add", "Ops", "http://127.0.0.1:8080/")[::2], "127.0.0.1")
    _one_line_error(*_run(capsys, admin, "add", "Ops", URL, "--format", "xml")[::2], "format")
    _one_line_error(*_run(capsys, member, "add", "Ops", URL)[::2], "admin role")
    _one_line_error(*_run(capsys, admin, "deliveries", "--status", "lost")[::2], "status")
    _one_line_error(*_run(capsys, admin, "replay", "999999")[::2], "No such delivery")
    hook = _hook(admin)
    _one_line_error(*_run(capsys, outsider, "test", str(hook.pk), org="bravo-secret")[::2], "No such webhook")
    _one_line_error(*_run(capsys, outsider, "list", org="alpha")[::2], "No organisation")


# --- demo -------------------------------------------------------------------------------------------


def test_demo_log_has_a_delivery_and_a_retried_failure(org_a, owner, admin, member, stakeholder):
    users = {p.user.email: p.user for p in (owner, admin, member, stakeholder)}
    args = (org_a, users, owner.user.email, admin.user.email, member.user.email, stakeholder.user.email)
    demo.load(*args)
    demo.load(*args)  # safe twice
    hook = Webhook.objects.get(organisation=org_a)
    assert hook.format == "slack" and hook.url.startswith("https://hooks.example.com/") and not hook.active
    deliveries = {d.kind: d for d in hook.deliveries.all()}
    assert set(deliveries) == {"checkin.recorded", "proposal.accepted"}
    assert all(d.status == DeliveryStatus.DELIVERED for d in deliveries.values())
    codes = list(
        WebhookAttempt.objects.filter(delivery=deliveries["proposal.accepted"]).values_list(
            "response_code", flat=True
        )
    )
    assert codes == [503, 200] and deliveries["proposal.accepted"].attempts == 2
    assert deliveries["checkin.recorded"].attempts == 1


def test_api_members_never_see_the_url_in_attempts(admin, member):
    hook = _hook(admin)
    delivery = WebhookDelivery.objects.create(webhook=hook, kind="test", payload={"event": "test"})
    webhooks.record_attempt(delivery, webhooks.Outcome(code=200, url=URL))
    seen = member.api().get(f"{API}/webhook-deliveries/{delivery.pk}")
    assert seen.status_code == 200 and "token-xyz" not in seen.content.decode()
    assert seen.json()["attempt_log"][0]["url"] == "https://hooks.example.com/…"
    assert admin.api().get(f"{API}/webhook-deliveries/{delivery.pk}").json()["attempt_log"][0]["url"] == URL
