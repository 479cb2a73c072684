"""`/metrics`: behind a token, request latency by route (never the raw path), queue depth and failures read
from the database at scrape time, and the failure counters the lower floors bump."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.test import Client
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from conftest import PASSWORD, Persona
from truenorth.engagement.models import DeliveryStatus, WebhookDelivery
from truenorth.engagement.services import webhooks
from truenorth.jobs.models import Job, JobStatus
from truenorth.measures.models import DataSource, Measure
from truenorth.measures.refresh import refresh_measure
from truenorth.ops import metrics
from truenorth.orgs.models import Organisation

TOKEN = "metrics-token-for-the-tests-0123456789"


@pytest.fixture
def metrics_on(settings) -> str:
    settings.TRUENORTH_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape() -> list[Sample]:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sample's value (0 when absent: a counter nobody has bumped yet)."""
    found = [
        s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, f"{name} {labels}: {len(found)} samples"
    return found[0] if found else 0.0


# --- the token ------------------------------------------------------------------------------------------


def test_metrics_do_not_exist_without_a_token_setting(settings, db) -> None:
    settings.TRUENORTH_METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token-of-some-length", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
def test_a_missing_or_wrong_token_is_refused_with_401(metrics_on, db, authorization) -> None:
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = Client().get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"truenorth_" not in response.content


def test_the_right_token_gets_the_prometheus_text_uncached(metrics_on, db) -> None:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}")  # the scheme's case is free
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert b"# TYPE truenorth_http_request_duration_seconds histogram" in response.content
    assert Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


# --- requests by route ----------------------------------------------------------------------------------


def test_request_latency_is_labelled_by_route_never_by_the_raw_path(metrics_on, member: Persona) -> None:
    org = org_of(member)
    job = Job.objects.create(organisation=org, kind="measure.refresh", status=JobStatus.SUCCEEDED)
    before = scrape()
    route = "o/<slug:org_slug>/jobs/<id:job_id>/"
    for _ in range(3):
        assert member.client.get(reverse("jobs:job", args=[org.slug, job.pk])).status_code == 200
    assert Client().get("/no/such/page/98765/").status_code == 404
    after = scrape()

    count = "truenorth_http_request_duration_seconds_count"
    assert (
        value(after, count, route=route, method="GET", status="2xx")
        - value(before, count, route=route, method="GET", status="2xx")
        == 3
    )
    assert (
        value(after, count, route="unmatched", method="GET", status="4xx")
        - value(before, count, route="unmatched", method="GET", status="4xx")
        == 1
    )
    bucket = "truenorth_http_request_duration_seconds_bucket"
    assert value(after, bucket, route=route, method="GET", status="2xx", le="+Inf") >= 3
    routes = {s.labels["route"] for s in after if "route" in s.labels}
    # The job's id as a path segment (a bare digit would match "api/v1/…"), the slug, the unknown path.
    assert not any(f"/{job.pk}/" in r or org.slug in r or "98765" in r for r in routes), routes


def test_every_answer_carries_a_request_id_and_a_sane_one_from_the_proxy_is_kept(db) -> None:
    own = Client().get("/healthz")
    assert len(own["X-Request-ID"]) == 32
    assert Client().get("/healthz", HTTP_X_REQUEST_ID="proxy-42.a:b")["X-Request-ID"] == "proxy-42.a:b"
    hostile = Client().get("/healthz", HTTP_X_REQUEST_ID="x\u00e9<script>" + "y" * 80)["X-Request-ID"]
    assert len(hostile) == 32 and hostile.isalnum()


# --- what the database says, at scrape time -----------------------------------------------------------


def org_of(persona: Persona) -> Organisation:
    assert persona.membership is not None
    return persona.membership.organisation


def _delivery(org: Organisation, admin: Persona, status: str) -> WebhookDelivery:
    hook = webhooks.Webhook.objects.filter(organisation=org).first()
    if hook is None:
        assert admin.membership is not None
        hook, _ = webhooks.create_webhook(
            admin.membership, admin.user, name="Ops", url="https://hooks.example/x"
        )
    return WebhookDelivery.objects.create(webhook=hook, kind="goal.created", status=status)


def test_queue_depth_and_failures_reflect_the_database(
    metrics_on, admin: Persona, outsider: Persona, django_assert_num_queries
) -> None:
    org_a = org_of(admin)
    org_b = org_of(outsider)
    for org, status in [
        (org_a, JobStatus.QUEUED),
        (org_a, JobStatus.QUEUED),
        (org_b, JobStatus.QUEUED),
        (org_b, JobStatus.RUNNING),
        (org_a, JobStatus.SUCCEEDED),
        (org_a, JobStatus.FAILED),
    ]:
        Job.objects.create(organisation=org, kind="measure.refresh", status=status)
    Measure.objects.create(organisation=org_a, name="Broken", kva="current_value", last_refresh_error="boom")
    Measure.objects.create(organisation=org_b, name="Broken too", kva="current_value", last_refresh_error="x")
    Measure.objects.create(organisation=org_b, name="Fine", kva="current_value")
    DataSource.objects.create(organisation=org_a, name="Warehouse", kind="duckdb", last_error="unreachable")
    for delivery_status in (
        DeliveryStatus.FAILED,
        DeliveryStatus.FAILED,
        DeliveryStatus.RETRYING,
        DeliveryStatus.DELIVERED,
    ):
        _delivery(org_a, admin, delivery_status)

    samples = scrape()
    assert value(samples, "truenorth_jobs", status="queued") == 3
    assert value(samples, "truenorth_jobs", status="running") == 1
    assert value(samples, "truenorth_measures_refresh_failing") == 2
    assert value(samples, "truenorth_data_sources_failing") == 1
    assert value(samples, "truenorth_webhook_deliveries", status="failed") == 2
    assert value(samples, "truenorth_webhook_deliveries", status="retrying") == 1
    assert value(samples, "truenorth_webhook_deliveries", status="pending") == 0
    assert value(samples, "truenorth_huey_pending") >= 0
    assert value(samples, "truenorth_scrape_errors") == 0
    # One instance, many tenants: nothing is labelled by organisation.
    assert not any({"organisation", "org", "slug"} & s.labels.keys() for s in samples)
    assert not any(org_b.slug in str(s.labels) or org_a.slug in str(s.labels) for s in samples)

    with django_assert_num_queries(4):  # jobs, measures, data sources, webhook deliveries: at any size
        list(metrics.DatabaseCollector().collect())


def test_a_scrape_answers_even_when_one_part_fails(metrics_on, db, monkeypatch) -> None:
    def broken() -> Iterator[metrics.Metric]:
        raise RuntimeError("database went away")
        yield  # pragma: no cover

    monkeypatch.setattr(metrics, "SCRAPE_SECTIONS", (broken, *metrics.SCRAPE_SECTIONS))
    samples = scrape()
    assert value(samples, "truenorth_scrape_errors") == 1
    assert value(samples, "truenorth_jobs", status="queued") == 0  # the other parts are still there


# --- counters the lower floors bump -------------------------------------------------------------------


def _delta(name: str, action: Callable[[], object], **labels: str) -> float:
    before = value(scrape(), name, **labels)
    action()
    return value(scrape(), name, **labels) - before


def test_a_wrong_password_counts_a_sign_in_failure(metrics_on, member: Persona) -> None:
    login = reverse("accounts:login")

    def wrong() -> None:
        response = Client().post(login, {"email": member.user.email, "password": "not-the-password"})
        assert response.status_code == 200 and b"wrong" in response.content

    assert _delta("truenorth_sign_in_failures_total", wrong, method="password") == 1

    def right() -> None:
        assert Client().post(login, {"email": member.user.email, "password": PASSWORD}).status_code == 302

    assert _delta("truenorth_sign_in_failures_total", right, method="password") == 0


def test_an_attempt_refused_by_the_throttling_counts_too(metrics_on, settings, member: Persona) -> None:
    settings.LOGIN_MAX_FAILURES_PER_IP = 1
    login = reverse("accounts:login")

    def wrong_then_refused() -> None:
        Client().post(login, {"email": member.user.email, "password": "not-the-password"})
        refused = Client().post(login, {"email": member.user.email, "password": PASSWORD})
        assert refused.status_code != 302  # the right password, refused: too many failures from here

    assert _delta("truenorth_sign_in_failures_total", wrong_then_refused, method="password") == 2


def test_a_failed_refresh_counts_and_shows_in_the_failing_gauge(metrics_on, org_a) -> None:
    measure = Measure.objects.create(
        organisation=org_a, name="Per head", kva="current_value", source="computed", formula="nobody / 3"
    )
    assert _delta("truenorth_refresh_failures_total", lambda: refresh_measure(measure)) == 1
    assert value(scrape(), "truenorth_measures_refresh_failing") == 1


def test_a_failed_webhook_attempt_counts(metrics_on, admin: Persona) -> None:
    delivery = _delivery(org_of(admin), admin, DeliveryStatus.SENDING)

    def fail() -> None:
        webhooks.record_attempt(
            delivery, webhooks.Outcome(code=500, url="https://hooks.example/x", retry=False)
        )

    assert _delta("truenorth_webhook_delivery_failures_total", fail) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED

    def succeed() -> None:
        ok = _delivery(org_of(admin), admin, DeliveryStatus.SENDING)
        webhooks.record_attempt(ok, webhooks.Outcome(code=204, url="https://hooks.example/x"))

    assert _delta("truenorth_webhook_delivery_failures_total", succeed) == 0


def test_an_unknown_sign_in_method_is_counted_as_other_so_labels_stay_bounded(metrics_on, db) -> None:
    from truenorth.core import telemetry

    assert (
        _delta("truenorth_sign_in_failures_total", lambda: telemetry.sign_in_failed("x" * 50), method="other")
        == 1
    )
    samples = scrape()
    assert not any(s.labels.get("method") == "x" * 50 for s in samples)
    # Every method's series exists from the start (at 0), so alerts on it work before the first failure.
    methods = {s.labels["method"] for s in samples if s.name == "truenorth_sign_in_failures_total"}
    assert methods == {"password", "totp", "recovery", "oidc", "other"}
