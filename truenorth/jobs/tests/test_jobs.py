"""Background jobs: submitting (per-organisation limit), following (API and page), failures recorded on
the job, progress, organisation isolation, interrupted jobs, and the instance-wide query time ceiling."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from django.utils import timezone

from truenorth.core.errors import TooManyRequests, ValidationFailed
from truenorth.jobs import services
from truenorth.jobs.models import Job, JobStatus
from truenorth.measures import sources
from truenorth.measures.models import DataSource, Measure, Observation

QUICK = "SELECT TIMESTAMP '2025-01-01 00:00:00' AS t, 42.0 AS v"
# Interruptible and far longer than any test: only a time limit ends it.
ENDLESS = (
    "SELECT TIMESTAMP '2025-01-01 00:00:00' AS t, sum(hash(i)) * 0.0 AS v FROM range(1000000000000) r(i)"
)


@pytest.fixture
def memory_source(org_a):
    return DataSource.objects.create(
        organisation=org_a,
        name="Scratch",
        kind="duckdb",
        config_encrypted=sources.encrypt_config({"path": "", "files": []}),
        timeout_seconds=5,
    )


def sql_measure(org, source, query=QUICK, name="Answers"):
    return Measure.objects.create(
        organisation=org, name=name, kva="current_value", source="sql", data_source=source, query=query
    )


def api_path(org, suffix: str) -> str:
    return f"/api/v1/orgs/{org.slug}/{suffix}"


# Runners used only by these tests.
SEEN: list[tuple[int, int, int, int]] = []


@services.register("test.count")
def _count(job: Job, progress: services.Progress) -> dict[str, Any]:
    total = int(job.params["n"])
    for done in range(total + 1):
        progress(done, total)
        row = Job.objects.get(pk=job.pk)
        SEEN.append((done, total, row.progress_done, row.progress_total))
    return {"summary": f"counted to {total}", "payload": len(services.payload_of(job) or b"")}


@services.register("test.crash")
def _crash(job: Job, progress: services.Progress) -> dict[str, Any]:
    raise RuntimeError("secret internals: /srv/data/customer.db")


@services.register("test.refuse")
def _refuse(job: Job, progress: services.Progress) -> dict[str, Any]:
    raise ValidationFailed("That cannot be done.", field="x")


@services.register("test.partial")
def _partial(job: Job, progress: services.Progress) -> dict[str, Any]:
    raise services.JobFailed("Stopped at row 3.", result={"done": 2})


# --- the API ------------------------------------------------------------------------------------------


def test_refreshing_a_measure_through_the_api_answers_202_with_a_job_that_ends_with_its_result(
    org_a, member, memory_source
):
    measure = sql_measure(org_a, memory_source)
    response = member.api().post(api_path(org_a, f"measures/{measure.pk}/refresh"))
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == body["url"] == api_path(org_a, f"jobs/{body['id']}")
    assert body["kind"] == "measure.refresh"
    assert body["status"] == "succeeded"  # immediate mode in tests: it already ran
    assert body["progress"] == {"done": 1, "total": 1}
    assert body["result"]["created"] == 1
    assert body["result"]["link"] == f"/o/{org_a.slug}/measures/{measure.pk}/"
    assert body["page"] == f"/o/{org_a.slug}/jobs/{body['id']}/"
    assert Observation.objects.filter(measure=measure).count() == 1
    followed = member.api_read().get(response["Location"])
    assert followed.status_code == 200
    assert followed.json()["status"] == "succeeded"
    listed = member.api_read().get(api_path(org_a, "jobs")).json()
    assert [j["id"] for j in listed] == [body["id"]]


def test_a_refresh_that_fails_is_a_failed_job_with_the_reason_and_the_request_still_answers_202(
    org_a, member, memory_source
):
    measure = sql_measure(org_a, memory_source, query="SELECT * FROM no_such_table")
    response = member.api().post(api_path(org_a, f"measures/{measure.pk}/refresh"))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "failed"
    assert "no_such_table" in body["error"]
    assert body["result"]["ok"] is False
    measure.refresh_from_db()
    assert "no_such_table" in measure.last_refresh_error


def test_a_measure_that_is_not_refreshed_is_refused_at_once_without_a_job(org_a, member):
    manual = Measure.objects.create(organisation=org_a, name="By hand", kva="current_value")
    response = member.api().post(api_path(org_a, f"measures/{manual.pk}/refresh"))
    assert response.status_code == 422
    assert not Job.objects.exists()


def test_a_stakeholder_cannot_start_a_refresh(org_a, stakeholder, memory_source):
    measure = sql_measure(org_a, memory_source)
    assert stakeholder.api().post(api_path(org_a, f"measures/{measure.pk}/refresh")).status_code == 403
    assert not Job.objects.exists()


# --- the per-organisation limit ----------------------------------------------------------------------


def test_an_organisation_with_its_limit_of_active_jobs_gets_429_and_another_organisation_does_not(
    org_a, org_b, member, outsider, memory_source, settings
):
    settings.TRUENORTH_JOBS_PER_ORGANISATION = 2
    for status in (JobStatus.QUEUED, JobStatus.RUNNING):
        Job.objects.create(organisation=org_a, kind="measure.refresh", status=status)
    Job.objects.create(organisation=org_a, kind="measure.refresh", status=JobStatus.SUCCEEDED)
    measure = sql_measure(org_a, memory_source)
    response = member.api().post(api_path(org_a, f"measures/{measure.pk}/refresh"))
    assert response.status_code == 429
    assert "at most 2 at a time" in response.json()["detail"]
    assert Job.objects.filter(organisation=org_a).count() == 3
    assert outsider.membership is not None
    theirs = services.submit(outsider.membership, outsider.user, "test.count", {"n": 1})
    assert theirs.status == JobStatus.SUCCEEDED


def test_finished_jobs_do_not_count_toward_the_limit(org_a, member, settings):
    settings.TRUENORTH_JOBS_PER_ORGANISATION = 1
    for _ in range(3):
        assert services.submit(member.membership, member.user, "test.count", {"n": 1}).status == "succeeded"
    Job.objects.create(organisation=org_a, kind="test.count", status=JobStatus.QUEUED)
    with pytest.raises(TooManyRequests):
        services.submit(member.membership, member.user, "test.count", {"n": 1})


# --- isolation -----------------------------------------------------------------------------------------


def test_another_organisations_job_is_not_found_by_any_route(org_a, org_b, member, outsider):
    job = services.submit(member.membership, member.user, "test.count", {"n": 1})
    for path in (api_path(org_a, f"jobs/{job.pk}"), api_path(org_b, f"jobs/{job.pk}")):
        response = outsider.api_read().get(path)
        assert response.status_code == 404, path
        assert "counted" not in response.content.decode()
    assert outsider.api_read().get(api_path(org_b, "jobs")).json() == []
    for path in (f"/o/{org_a.slug}/jobs/{job.pk}/", f"/o/{org_b.slug}/jobs/{job.pk}/"):
        assert outsider.client.get(path).status_code == 404, path


# --- running: failures, progress, payload -----------------------------------------------------------------


def test_an_unexpected_error_fails_the_job_with_a_generic_message_and_is_logged(member, caplog):
    with caplog.at_level(logging.ERROR, logger="truenorth.jobs.services"):
        job = services.submit(member.membership, member.user, "test.crash")
    assert job.status == JobStatus.FAILED
    assert job.error == services.INTERNAL_ERROR
    assert "secret internals" not in services.describe(job)["error"]
    assert "secret internals" in caplog.text
    assert job.finished_at is not None


def test_a_domain_error_fails_the_job_with_its_message_and_a_partial_result_is_kept(member):
    refused = services.submit(member.membership, member.user, "test.refuse")
    assert (refused.status, refused.error) == ("failed", "That cannot be done.")
    partial = services.submit(member.membership, member.user, "test.partial")
    assert (partial.status, partial.error, partial.result) == ("failed", "Stopped at row 3.", {"done": 2})


def test_progress_is_recorded_on_the_job_as_the_runner_reports_it(member):
    SEEN.clear()
    job = services.submit(member.membership, member.user, "test.count", {"n": 3})
    assert SEEN == [(0, 3, 0, 3), (1, 3, 1, 3), (2, 3, 2, 3), (3, 3, 3, 3)]
    assert services.describe(job)["progress"] == {"done": 3, "total": 3}
    assert job.result["summary"] == "counted to 3"


def test_an_uploaded_payload_reaches_the_runner_but_not_ordinary_queries_and_is_dropped_on_success(member):
    job = services.submit(member.membership, member.user, "test.count", {"n": 0}, payload=b"x" * 1000)
    assert job.result["payload"] == 1000
    assert "payload" in Job.objects.get(pk=job.pk).get_deferred_fields()
    assert services.payload_of(job) is None


def test_a_runner_acts_only_while_its_author_is_still_a_member(org_a, member, memory_source):
    from truenorth.orgs.models import Membership

    measure = sql_measure(org_a, memory_source)
    job = Job.objects.create(
        organisation=org_a, kind="measure.refresh", created_by=member.user, params={"measure_id": measure.pk}
    )
    Membership.objects.filter(pk=member.membership.pk).delete()
    services.execute(job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "no longer a member" in job.error
    assert not Observation.objects.filter(measure=measure).exists()


def test_a_job_left_running_by_a_killed_worker_is_marked_failed(org_a):
    old = Job.objects.create(
        organisation=org_a, kind="measure.refresh", status=JobStatus.RUNNING, started_at=timezone.now()
    )
    queued = Job.objects.create(organisation=org_a, kind="measure.refresh")
    assert services.fail_interrupted() == 1
    old.refresh_from_db()
    queued.refresh_from_db()
    assert (old.status, old.error) == ("failed", services.INTERRUPTED)
    assert queued.status == "queued"
    services.execute(old.pk)  # a late delivery of its task does not run it again
    old.refresh_from_db()
    assert old.status == "failed"


# --- the web page ---------------------------------------------------------------------------------------


def test_refresh_now_on_the_measure_page_redirects_to_the_job_page_which_links_back(
    org_a, member, memory_source
):
    measure = sql_measure(org_a, memory_source)
    page = member.client.get(f"/o/{org_a.slug}/measures/{measure.pk}/")
    assert b'data-testid="refresh-now"' in page.content
    response = member.client.post(f"/o/{org_a.slug}/measures/{measure.pk}/refresh/")
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/o/{org_a.slug}/jobs/{job.pk}/"
    shown = member.client.get(response["Location"]).content.decode()
    assert 'data-status="succeeded"' in shown
    assert "1 new observation" in shown
    assert f'href="/o/{org_a.slug}/measures/{measure.pk}/"' in shown
    assert "every 1s" not in shown  # finished: it stops polling


def test_the_job_page_polls_while_the_job_is_queued_or_running(org_a, member):
    job = Job.objects.create(organisation=org_a, kind="measure.refresh", created_by=member.user)
    page = member.client.get(f"/o/{org_a.slug}/jobs/{job.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in page
    assert "Waiting for the worker" in page
    Job.objects.filter(pk=job.pk).update(status="running", progress_done=2, progress_total=5)
    fragment = member.client.get(f"/o/{org_a.slug}/jobs/{job.pk}/", headers={"HX-Request": "true"})
    text = fragment.content.decode()
    assert "<html" not in text
    assert 'value="2" max="5"' in text
    assert 'hx-trigger="every 1s"' in text
    listing = member.client.get(f"/o/{org_a.slug}/jobs/").content.decode()
    assert f"/o/{org_a.slug}/jobs/{job.pk}/" in listing


# --- the instance-wide ceiling on query time --------------------------------------------------------------


def test_the_instance_ceiling_on_query_time_stops_a_query_whose_source_allows_far_longer(
    org_a, member, memory_source, settings
):
    settings.TRUENORTH_MAX_QUERY_SECONDS = 1
    DataSource.objects.filter(pk=memory_source.pk).update(timeout_seconds=600)
    measure = sql_measure(org_a, DataSource.objects.get(pk=memory_source.pk), query=ENDLESS)
    started = time.monotonic()
    submitted = member.api().post(api_path(org_a, f"measures/{measure.pk}/refresh")).json()
    job = services.reload(Job.objects.get(pk=submitted["id"]))
    assert time.monotonic() - started < 10
    assert job.status == "failed"
    assert "longer than 1 s" in job.error
    assert DataSource.objects.get(pk=memory_source.pk).timeout_seconds == 600  # the cap is not saved


def test_truenorth_check_warns_about_jobs_stuck_in_the_queue(org_a):
    import datetime as dt

    from truenorth.core.health import run_checks

    assert any(c.name == "background jobs" and c.status == "ok" for c in run_checks())
    Job.objects.create(
        organisation=org_a, kind="measure.refresh", created_at=timezone.now() - dt.timedelta(hours=2)
    )
    Job.objects.create(organisation=org_a, kind="measure.refresh")  # just queued: fine
    warnings = [c for c in run_checks() if c.name.startswith("job #")]
    assert len(warnings) == 1
    assert warnings[0].status == "warning" and "truenorth worker" in warnings[0].detail


def test_refresh_now_past_the_limit_says_why_on_the_measure_page(org_a, member, memory_source, settings):
    settings.TRUENORTH_JOBS_PER_ORGANISATION = 1
    Job.objects.create(organisation=org_a, kind="measure.refresh", status=JobStatus.RUNNING)
    measure = sql_measure(org_a, memory_source)
    response = member.client.post(f"/o/{org_a.slug}/measures/{measure.pk}/refresh/", follow=True)
    assert response.redirect_chain[-1][0] == f"/o/{org_a.slug}/measures/{measure.pk}/"
    assert "at most 1 at a time" in response.content.decode()
    assert Job.objects.count() == 1


def test_outside_immediate_mode_a_job_is_queued_only_once_its_row_is_committed(
    member, monkeypatch, django_capture_on_commit_callbacks
):
    from huey.contrib.djhuey import HUEY

    queued: list[int] = []
    monkeypatch.setattr(services, "_enqueue", lambda job: queued.append(job.pk))
    monkeypatch.setattr(HUEY, "immediate", False)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.submit(member.membership, member.user, "test.count", {"n": 1})
        assert queued == []  # the worker could not see the row yet
    assert queued == [job.pk]
    assert job.status == "queued"
