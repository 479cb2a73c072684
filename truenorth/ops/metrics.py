"""Prometheus metrics: request latency by route, queue depth, failures; `GET /metrics` behind a token.

- `MetricsMiddleware` (second in MIDDLEWARE) times every request into a histogram labelled by the URL
  pattern that answered (`request.resolver_match.route`, e.g. `o/<slug:org_slug>/goals/<int:goal_id>/`;
  never the raw path, so the number of series stays bounded), the method and the status class (`2xx`…),
  counts the requests in progress, and gives each request an id (`X-Request-ID`, taken from the proxy
  when it sent a sane one) that JSON log lines and error reports carry.
- Counters the lower floors bump (sign-in, webhook and refresh failures) live in truenorth.core.telemetry.
- Gauges read from the database at scrape time: jobs queued and running, huey's pending tasks, measures
  whose last refresh failed, data sources whose last check failed, webhook deliveries waiting or failed.
  A few COUNT queries for the whole instance, never a label per organisation.
- Several processes: in multiprocess mode (`telemetry.prepare_multiprocess`, run by `serve` and `worker`)
  a scrape merges every process's files, so it sees all gunicorn workers and the job worker.
- `/metrics` answers only `Authorization: Bearer <TRUENORTH_METRICS_TOKEN>` (compared in constant time);
  a missing or wrong token is 401; without the setting the address does not exist (404).
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from truenorth.core import jsonlog, telemetry

logger = logging.getLogger(__name__)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A request id from the proxy is kept only when it looks like one (it goes into logs and headers).
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(frozen=True)
class _RequestMetrics:
    latency: Histogram
    in_progress: Gauge


@functools.cache
def _request_metrics(multiprocess_dir: str | None) -> _RequestMetrics:
    # Created on first use (per multiprocess directory), in no registry: `registry()` collects them. The
    # failure counters too, so that every process shows them at 0 before the first failure.
    telemetry.counters()
    return _RequestMetrics(
        latency=Histogram(
            "truenorth_http_request_duration_seconds",
            "Time to answer a request, by URL pattern (route), method and status class.",
            ["route", "method", "status"],
            buckets=BUCKETS,
            registry=None,
        ),
        in_progress=Gauge(
            "truenorth_http_requests_in_progress",
            "Requests being answered right now.",
            registry=None,
            multiprocess_mode="livesum",
        ),
    )


def request_metrics() -> _RequestMetrics:
    with telemetry.CREATION_LOCK:  # one set per process, even when a worker's threads start together
        return _request_metrics(os.environ.get(telemetry.MULTIPROC_ENV))


def route_of(request: HttpRequest) -> str:
    """The label for a request: the URL pattern that matched, "static" for static files (served by
    WhiteNoise before any URL is resolved), else "unmatched" (a 404 for an unknown address)."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route:
        return str(match.route)
    static = "/" + str(settings.STATIC_URL).lstrip("/")
    return "static" if request.path.startswith(static) else "unmatched"


class MetricsMiddleware:
    """Times every request by route and tags it (and its log lines) with a request id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get("X-Request-ID", "")
        rid = supplied if SANE_REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
        request.META[jsonlog.REQUEST_ID_META] = rid
        token = jsonlog.request_id.set(rid)
        _tag_error_report(rid)
        metrics = request_metrics()
        metrics.in_progress.inc()
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            metrics.in_progress.dec()
            jsonlog.request_id.reset(token)
        method = request.method if request.method in METHODS else "other"
        metrics.latency.labels(route_of(request), method, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        if "X-Request-ID" not in response:
            response["X-Request-ID"] = rid
        return response


def _tag_error_report(rid: str) -> None:
    """Put the request id on this request's Sentry events (when Sentry is on)."""
    if settings.SENTRY_DSN and "sentry_sdk" in sys.modules:
        sys.modules["sentry_sdk"].set_tag("request_id", rid)


# --- scrape-time gauges -----------------------------------------------------------------------------


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _labelled(name: str, documentation: str, label: str, values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


def _jobs() -> Iterator[Metric]:
    from truenorth.jobs.models import ACTIVE, Job

    counts = dict(
        Job.objects.filter(status__in=ACTIVE).values_list("status").annotate(n=Count("id")).order_by()
    )
    yield _labelled(
        "truenorth_jobs",
        "Background jobs people follow (refreshes, imports, evidence runs) queued or running.",
        "status",
        {str(status): int(counts.get(status, 0)) for status in ACTIVE},
    )


def _huey() -> Iterator[Metric]:
    from huey.contrib.djhuey import HUEY

    yield _gauge("truenorth_huey_pending", "Tasks waiting in the huey queue.", HUEY.pending_count())


def _refreshes() -> Iterator[Metric]:
    from truenorth.measures.models import DataSource, Measure

    failing = Measure.objects.filter(archived_at__isnull=True).exclude(last_refresh_error="").count()
    yield _gauge("truenorth_measures_refresh_failing", "Measures whose last refresh failed.", failing)
    sources = DataSource.objects.exclude(last_error="").count()
    yield _gauge("truenorth_data_sources_failing", "Data sources whose last check failed.", sources)


def _webhooks() -> Iterator[Metric]:
    from truenorth.engagement.models import DeliveryStatus, WebhookDelivery

    shown = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRYING, DeliveryStatus.FAILED)
    counts = dict(
        WebhookDelivery.objects.filter(status__in=shown)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    yield _labelled(
        "truenorth_webhook_deliveries",
        "Webhook deliveries waiting (pending, sending, retrying) or given up on (failed).",
        "status",
        {str(status): int(counts.get(status, 0)) for status in shown},
    )


SCRAPE_SECTIONS: tuple[Callable[[], Iterator[Metric]], ...] = (_jobs, _huey, _refreshes, _webhooks)


class DatabaseCollector:
    """The gauges read at scrape time; a section that fails is left out and counted, never a 500."""

    def collect(self) -> Iterator[Metric]:
        errors = 0
        for section in SCRAPE_SECTIONS:
            try:
                metrics = list(section())
            except Exception:
                logger.warning("metrics: %s failed", section.__name__.lstrip("_"), exc_info=True)
                errors += 1
                continue
            yield from metrics
        yield _gauge("truenorth_scrape_errors", "Parts of this scrape that could not be read.", errors)


class _ProcessFilesCollector:
    """Every process's values (all gunicorn workers and the job worker), merged from their files."""

    def collect(self) -> Iterable[Metric]:
        root = telemetry.metrics_directory()
        files = sorted(str(f) for kind in telemetry.PROCESS_KINDS for f in (root / kind).glob("*.db"))
        return MultiProcessCollector.merge(files, accumulate=True)


class _ThisProcessCollector:
    """This process's own values (tests, runserver): the request metrics and the failure counters."""

    def collect(self) -> Iterator[Metric]:
        metrics = request_metrics()
        for source in (metrics.latency, metrics.in_progress, *telemetry.counters()):
            yield from source.collect()


def registry() -> CollectorRegistry:
    """What one scrape shows."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_ProcessFilesCollector() if telemetry.multiprocess() else _ThisProcessCollector())
    scrape.register(DatabaseCollector())
    return scrape


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`: the Prometheus text format, for `Authorization: Bearer <TRUENORTH_METRICS_TOKEN>`."""
    expected = settings.TRUENORTH_METRICS_TOKEN
    if not expected:
        raise Http404
    scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(supplied.strip().encode(), expected.encode()):
        refused = HttpResponse(
            "A valid metrics token is required (Authorization: Bearer <TRUENORTH_METRICS_TOKEN>).\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        refused["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return refused
    response = HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
