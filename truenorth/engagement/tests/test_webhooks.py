"""Outgoing webhooks: signing, retries against a real local receiver, SSRF refusals, events from history,
replay and isolation (services and the network layer)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from truenorth.core import outbound
from truenorth.core.errors import Forbidden, NotFound, ValidationFailed
from truenorth.engagement.models import DeliveryStatus, Webhook, WebhookDelivery
from truenorth.engagement.services import webhook_formats, webhooks
from truenorth.history.models import HistoryEntry
from truenorth.strategy import services as strategy

pytestmark = pytest.mark.django_db


class Receiver:
    """A webhook receiver on 127.0.0.1 answering the queued codes in turn (then 200)."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.requests: list[dict[str, Any]] = []
        self.redirect_to = ""
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                outer.requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                if outer.redirect_to:
                    self.send_response(307)
                    self.send_header("Location", outer.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                code = outer.codes.pop(0) if outer.codes else 200
                answer = b"x" * 100_000 if code == 500 else b"ok"
                self.send_response(code)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?x=1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.TRUENORTH_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    made = Receiver()
    yield made
    made.close()


def _hook(admin: Any, url: str, **kwargs: Any) -> tuple[Webhook, str]:
    return webhooks.create_webhook(
        admin.membership, admin.user, name=kwargs.pop("name", "Ops"), url=url, **kwargs
    )


# --- signing and sending ----------------------------------------------------------------------------


def test_a_delivery_is_signed_with_the_timestamp_and_body(
    admin, receiver, django_capture_on_commit_callbacks
):
    hook, secret = _hook(admin, receiver.url)
    assert secret.startswith("whsec_") and secret not in hook.secret_encrypted
    with django_capture_on_commit_callbacks(execute=True):
        delivery = webhooks.send_test(admin.membership, admin.user, hook.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert request["path"] == "/hook?x=1"
    stamp = headers["x-truenorth-timestamp"]
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["x-truenorth-signature"] == f"sha256={expected}"
    assert headers["x-truenorth-event"] == "test"
    assert headers["x-truenorth-delivery"] == str(delivery.uid)
    assert abs(int(stamp) - timezone.now().timestamp()) < 60
    assert json.loads(body)["organisation"]["slug"] == "alpha"


def test_failures_are_retried_with_backoff_then_delivered(
    admin, receiver, django_capture_on_commit_callbacks
):
    hook, _ = _hook(admin, receiver.url)
    receiver.codes = [500, 503]
    start = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        delivery = webhooks.send_test(admin.membership, admin.user, hook.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING and delivery.attempts == 1
    assert delivery.last_error == "HTTP 500"
    assert delivery.next_attempt_at is not None
    assert dt.timedelta(seconds=55) < delivery.next_attempt_at - start < dt.timedelta(seconds=70)
    first = delivery.attempt_log.get()
    assert first.response_code == 500 and len(first.response_excerpt) <= outbound.EXCERPT_LENGTH
    # Not due yet: nothing is sent.
    assert webhooks.send_due(now=start + dt.timedelta(seconds=30)) == {
        "sent": 0,
        "delivered": 0,
        "skipped": 0,
    }
    second_time = start + dt.timedelta(minutes=2)
    webhooks.send_due(now=second_time)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING and delivery.attempts == 2
    assert delivery.next_attempt_at == second_time + dt.timedelta(minutes=5)
    webhooks.send_due(now=second_time + dt.timedelta(minutes=6))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 3
    assert [a.response_code for a in delivery.attempt_log.all()] == [500, 503, 200]
    assert len(receiver.requests) == 3


def test_six_failures_are_final(admin, receiver):
    hook, _ = _hook(admin, receiver.url)
    receiver.codes = [500] * 10
    delivery = WebhookDelivery.objects.create(webhook=hook, kind="test", payload={"event": "test"})
    now = timezone.now()
    for _ in range(webhooks.MAX_ATTEMPTS):
        done = webhooks.send_delivery(delivery.pk, now=now)
        assert done is not None
        now = (done.next_attempt_at or now) + dt.timedelta(seconds=1)
    delivery.refresh_from_db()
    assert (
        delivery.status == DeliveryStatus.FAILED
        and delivery.attempts == 6
        and delivery.next_attempt_at is None
    )
    assert webhooks.send_delivery(delivery.pk, now=now + dt.timedelta(days=2)) is None
    assert len(receiver.requests) == 6


def test_backoff_schedule():
    waits = [webhooks.backoff(n) for n in range(1, 7)]
    assert [w.total_seconds() if w else None for w in waits] == [60, 300, 1500, 7200, 36000, None]


def test_claiming_is_atomic(admin, receiver):
    hook, _ = _hook(admin, receiver.url)
    delivery = WebhookDelivery.objects.create(webhook=hook, kind="test", payload={})
    assert webhooks.claim(delivery.pk) is not None
    assert webhooks.claim(delivery.pk) is None  # a second worker gets nothing
    # A claim abandoned longer than the lease is taken over.
    assert (
        webhooks.claim(delivery.pk, timezone.now() + webhooks.lease() + dt.timedelta(seconds=1)) is not None
    )


def test_concurrency_per_organisation(admin, receiver, settings):
    settings.TRUENORTH_WEBHOOKS_CONCURRENCY_PER_ORGANISATION = 1
    hook, _ = _hook(admin, receiver.url)
    first, second = (WebhookDelivery.objects.create(webhook=hook, kind="test", payload={}) for _ in range(2))
    assert webhooks.claim(first.pk) is not None
    assert webhooks.claim(second.pk) is None


def test_slack_and_teams_bodies(admin, receiver, django_capture_on_commit_callbacks):
    slack, _ = _hook(admin, receiver.url, name="Slack", format="slack")
    teams, _ = _hook(admin, receiver.url, name="Teams", format="teams")
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.send_test(admin.membership, admin.user, slack.pk)
        webhooks.send_test(admin.membership, admin.user, teams.pk)
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    slack_body = next(b for b in bodies if "blocks" in b)
    teams_body = next(b for b in bodies if "attachments" in b)
    assert slack_body["text"].startswith("Test event from TrueNorth")
    assert teams_body["type"] == "message"
    assert teams_body["attachments"][0]["content"]["type"] == "AdaptiveCard"


def test_formats_show_changes():
    event = {
        "event": "goal.updated",
        "actor": "ada@example.com",
        "object": {"type": "goal", "title": "Grow <revenue>"},
        "changes": {"title": {"old": "Grow", "new": "Grow <revenue>"}},
        "organisation": {"name": "Acme"},
        "link": "https://tn.example/o/acme/",
    }
    slack = webhook_formats.slack(event)
    assert slack["text"] == "ada@example.com updated goal “Grow <revenue>” (goal.updated)"
    assert "Grow &lt;revenue&gt;" in json.dumps(slack["blocks"])
    facts = webhook_formats.teams(event)["attachments"][0]["content"]["body"][2]["facts"]
    assert facts == [{"title": "title", "value": "Grow → Grow <revenue>"}]


# --- SSRF -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("192.168.1.20", "private"),
        ("169.254.169.254", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("64:ff9b::a00:1", "private"),
        ("2002:c0a8:0101::1", "private"),
        ("100.64.0.1", "carrier-grade"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_non_public_addresses_are_refused(address, why):
    problem = outbound.address_problem(address)
    assert problem is not None and why in problem
    with pytest.raises(outbound.UrlRefused, match=why):
        outbound.pick_address(address, 443, allow_private=False)


def test_public_addresses_pass():
    assert outbound.address_problem("93.184.216.34") is None
    assert outbound.address_problem("2606:2800:220:1:248:1893:25c8:1946") is None


def test_private_literals_are_refused_on_save(admin):
    for url in (
        "http://127.0.0.1/x",
        "http://[::1]/x",
        "http://10.0.0.5/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
    ):
        with pytest.raises(ValidationFailed) as caught:
            _hook(admin, url)
        assert caught.value.field == "url" and "address" in caught.value.message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/", "https://"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
        ("https:///nohost", "no host"),
        ("https://hooks.example.com/" + "a" * 2000, "longer than"),
        ("https://hooks.example.com/a b", "spaces"),
        ("", "Give"),
    ],
)
def test_bad_urls_are_refused_on_save(admin, url, message):
    with pytest.raises(ValidationFailed, match=message):
        _hook(admin, url)


def test_a_name_resolving_to_loopback_is_refused_at_send_time(admin, django_capture_on_commit_callbacks):
    hook, _ = _hook(admin, "http://localhost:9/hook")  # a name: accepted on save, checked on sending
    with django_capture_on_commit_callbacks(execute=True):
        delivery = webhooks.send_test(admin.membership, admin.user, hook.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1  # not retried
    assert "localhost resolves to" in delivery.last_error and "loopback address" in delivery.last_error


def test_refusal_names_the_address(admin):
    hook, _ = _hook(admin, "https://internal.example.com/hook")
    delivery = WebhookDelivery.objects.create(webhook=hook, kind="test", payload={})
    done = webhooks.send_delivery(delivery.pk, resolver=lambda host, port: ["10.0.0.5"])
    assert done is not None and done.status == DeliveryStatus.FAILED
    assert done.last_error.startswith("internal.example.com resolves to 10.0.0.5, a private address")


def test_every_resolved_address_must_be_public():
    with pytest.raises(outbound.UrlRefused, match=r"10\.0\.0\.5"):
        outbound.pick_address(
            "x.example", 443, allow_private=False, resolver=lambda h, p: ["93.184.216.34", "10.0.0.5"]
        )


def test_a_redirect_to_a_private_address_is_refused(receiver, monkeypatch):
    # The receiver is on loopback; pretend its name is public (the resolver), and let it redirect to the
    # metadata address: the redirect's target is checked like the first one.
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    port = receiver.server.server_address[1]

    def resolver(host: str, p: int) -> list[str]:
        return ["127.0.0.1"] if host == "public.example" else []

    original = outbound.address_problem
    monkeypatch.setattr(
        outbound, "address_problem", lambda text: None if text == "127.0.0.1" else original(text)
    )
    answer = outbound.post(
        f"http://public.example:{port}/hook", b"{}", {}, timeout=5, allow_private=False, resolver=resolver
    )
    assert len(receiver.requests) == 1
    assert not answer.ok and not answer.retry
    assert "Redirected to http://169.254.169.254/latest/meta-data/" in answer.error
    assert "link-local" in answer.error


def test_redirect_check_function():
    with pytest.raises(outbound.UrlRefused, match="private"):
        outbound.check_redirect("http://10.1.1.1/x", "https://hooks.example.com/a", allow_private=False)
    with pytest.raises(outbound.UrlRefused, match="https://"):
        outbound.check_redirect("file:///etc/passwd", "https://hooks.example.com/a", allow_private=False)
    target = outbound.check_redirect(
        "/b", "https://hooks.example.com/a", allow_private=False, resolver=lambda h, p: ["93.184.216.34"]
    )
    assert target == "https://hooks.example.com/b"


def test_redirects_are_followed_with_the_body(settings, receiver):
    final = Receiver()
    try:
        receiver.redirect_to = final.url
        answer = outbound.post(receiver.url, b'{"a":1}', {"X-A": "1"}, timeout=5, allow_private=True)
        assert answer.ok and answer.url == final.url
        assert final.requests[0]["body"] == b'{"a":1}'
    finally:
        final.close()


def test_the_connection_goes_to_the_checked_address(receiver):
    # The name does not exist in DNS: the request reaches the receiver only through the pinned address.
    port = receiver.server.server_address[1]
    answer = outbound.post(
        f"http://pinned.invalid:{port}/p",
        b"{}",
        {},
        timeout=5,
        allow_private=True,
        resolver=lambda h, p: ["127.0.0.1"],
    )
    assert answer.ok
    assert receiver.requests[0]["headers"]["host"] == f"pinned.invalid:{port}"


# --- events, replay, isolation ----------------------------------------------------------------------


def test_a_history_change_produces_a_delivery(admin, member, receiver, django_capture_on_commit_callbacks):
    hook, _ = _hook(admin, receiver.url, events=["product.created"])
    other, _ = _hook(admin, receiver.url, name="Only decisions", events=["decision.recorded"])
    with django_capture_on_commit_callbacks(execute=True):
        product = strategy.create_product(member.membership, member.user, name="Trail shoes")
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.webhook == hook and delivery.kind == "product.created"
    assert delivery.status == DeliveryStatus.DELIVERED
    body = json.loads(receiver.requests[0]["body"])
    assert body["object"] == {
        "type": "product",
        "model": "strategy.product",
        "id": str(product.pk),
        "title": str(product),
    }
    assert body["actor"] == "member@a.example"
    assert not other.deliveries.exists()


def test_no_webhooks_costs_one_query(member, django_assert_num_queries, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        strategy.create_product(member.membership, member.user, name="Quiet")
    assert callbacks
    with django_assert_num_queries(1):
        for callback in callbacks:
            callback()


def test_inactive_and_unsubscribed_webhooks_get_nothing(admin, member, django_capture_on_commit_callbacks):
    hook, _ = _hook(admin, "https://hooks.example.com/a", active=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        strategy.create_product(member.membership, member.user, name="Quiet")
    for callback in callbacks:
        if getattr(callback, "func", None) is webhooks.emit:
            callback()
    assert not hook.deliveries.exists()


@pytest.mark.parametrize(
    ("object_type", "action", "changes", "kind"),
    [
        ("strategy.goal", "created", {}, "goal.created"),
        ("strategy.goal", "updated", {"check-in": {"old": None, "new": "On track"}}, "checkin.recorded"),
        (
            "strategy.changeproposal",
            "updated",
            {"state": {"old": "open", "new": "accepted"}},
            "proposal.accepted",
        ),
        ("hypotheses.decision", "created", {}, "decision.recorded"),
        ("measures.measure", "updated", {"name": {}}, "measure.updated"),
        ("hypotheses.hypothesis", "archived", {}, "hypothesis.archived"),
        ("orgs.membership", "created", {}, None),
        ("engagement.webhook", "created", {}, None),
    ],
)
def test_event_kinds(object_type, action, changes, kind):
    assert webhooks.event_kind_for(object_type, action, changes) == kind


def test_emit_for_other_events(admin):
    hook, _ = _hook(admin, "https://hooks.example.com/a", events=["pulse.closed"])
    made = webhooks.emit(admin.membership.organisation, "pulse.closed", {"event": "pulse.closed"})
    assert [d.webhook for d in made] == [hook]
    assert webhooks.emit(admin.membership.organisation, "goal.created", {}) == []


def test_replay_sends_the_same_payload_again(admin, receiver, django_capture_on_commit_callbacks):
    hook, _ = _hook(admin, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        first = webhooks.send_test(admin.membership, admin.user, hook.pk)
    with django_capture_on_commit_callbacks(execute=True):
        again = webhooks.replay(admin.membership, admin.user, first.pk)
    again.refresh_from_db()
    assert again.replay_of == first and again.uid != first.uid and again.status == DeliveryStatus.DELIVERED
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]
    assert (
        receiver.requests[0]["headers"]["x-truenorth-delivery"]
        != receiver.requests[1]["headers"]["x-truenorth-delivery"]
    )


def test_other_organisations_see_nothing(admin, outsider):
    hook, _ = _hook(admin, "https://hooks.example.com/a")
    delivery = WebhookDelivery.objects.create(webhook=hook, kind="test", payload={})
    with pytest.raises(NotFound):
        webhooks.get_webhook(outsider.membership, hook.pk)
    with pytest.raises(NotFound):
        webhooks.replay(outsider.membership, outsider.user, delivery.pk)
    with pytest.raises(NotFound):
        webhooks.update_webhook(outsider.membership, outsider.user, hook.pk, version=1, name="x")
    assert not webhooks.deliveries_of(outsider.membership).exists()


def test_only_admins_write(member, admin):
    with pytest.raises(Forbidden):
        _hook(member, "https://hooks.example.com/a")
    hook, _ = _hook(admin, "https://hooks.example.com/a")
    with pytest.raises(Forbidden):
        webhooks.send_test(member.membership, member.user, hook.pk)


def test_edit_history_version_and_secret_rotation(admin):
    hook, secret = _hook(admin, "https://hooks.example.com/T000/B000/secret-token")
    unchanged = webhooks.update_webhook(
        admin.membership, admin.user, hook.pk, version=1, name="Ops", url=hook.url
    )
    assert unchanged.version == 1
    entries = HistoryEntry.objects.filter(object_type="engagement.webhook")
    assert entries.count() == 1
    assert "secret-token" not in json.dumps(entries.get().changes)
    changed = webhooks.update_webhook(admin.membership, admin.user, hook.pk, version=1, active=False)
    assert changed.version == 2 and entries.count() == 2
    with pytest.raises(Exception, match="changed this webhook"):
        webhooks.update_webhook(admin.membership, admin.user, hook.pk, version=1, name="Other")
    rotated, new_secret = webhooks.rotate_secret(admin.membership, admin.user, hook.pk, version=2)
    assert new_secret != secret and webhooks.secret_of(rotated) == new_secret and rotated.version == 3


def test_unknown_events_and_duplicate_names_are_refused(admin):
    with pytest.raises(ValidationFailed, match="Unknown event kind") as caught:
        _hook(admin, "https://hooks.example.com/a", events=["goal.exploded"])
    assert caught.value.field == "events"
    _hook(admin, "https://hooks.example.com/a")
    with pytest.raises(ValidationFailed, match="exists already"):
        _hook(admin, "https://hooks.example.com/b")


# --- TLS to a pinned address ------------------------------------------------------------------------


def _self_signed(tmp_path, name: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def test_tls_checks_the_host_name_on_the_pinned_address(tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path, "receiver.test")
    server = Receiver()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server.server.socket = server_context.wrap_socket(server.server.socket, server_side=True)
    port = server.server.server_address[1]
    client_context = ssl.create_default_context(cafile=cert)
    try:
        good = outbound.post(
            f"https://receiver.test:{port}/tls",
            b"{}",
            {},
            timeout=5,
            allow_private=True,
            resolver=lambda h, p: ["127.0.0.1"],
            context=client_context,
        )
        assert good.ok, good.error
        # The same address under another name: the certificate does not match, nothing is sent.
        wrong = outbound.post(
            f"https://impostor.test:{port}/tls",
            b"{}",
            {},
            timeout=5,
            allow_private=True,
            resolver=lambda h, p: ["127.0.0.1"],
            context=client_context,
        )
        assert not wrong.ok and wrong.error.startswith("TLS failed")
        assert [r["path"] for r in server.requests] == ["/tls"]
    finally:
        server.close()
