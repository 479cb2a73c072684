"""The page cache (truenorth/orgs/pagecache.py): the dashboard, a goal page and the API's goal and
measure lists come from the per-process cache until something of the organisation changes.

"Another process" is simulated by putting this process's write generation back after a write: then
only the organisation's `cache_version` (replaced after the commit) can tell the page is stale, so
those tests are transactional (the commit really happens)."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from truenorth.cli import main as cli
from truenorth.jobs.models import Job
from truenorth.jobs.services import execute
from truenorth.orgs import pagecache
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy import services as strategy

if TYPE_CHECKING:
    from conftest import Persona

DASHBOARD = "/o/alpha/"
API_GOALS = "/api/v1/orgs/alpha/goals"
API_MEASURES = "/api/v1/orgs/alpha/measures"
# A kept page costs one statement: the session, the person and their membership (with the organisation),
# once this process has seen the session (its first page costs two).
HIT_QUERIES = 1


def _get(client: Any, path: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return len(ctx.captured_queries), response.content.decode()


def _without_tokens(html: str) -> str:
    return re.sub(r'(csrfmiddlewaretoken" value="|X-CSRFToken": ")[A-Za-z0-9]+', r"\1", html)


def _version(slug: str = "alpha") -> str:
    return Organisation.objects.get(slug=slug).cache_version


def _goal(owner: Persona, title: str) -> Any:
    assert owner.membership is not None
    return strategy.create_goal(owner.membership, owner.user, title=title, product_id=None, parent_id=None)


def _edit(owner: Persona, goal: Any, title: str) -> None:
    """Rename the goal through its edit form."""
    goal.refresh_from_db()
    fields = {
        "title": title,
        "outcome": goal.outcome,
        "level": goal.level,
        "status": goal.status,
        "owner": str(goal.owner_id or ""),
        "target_date": "",
        "weight": goal.weight,
        "checkin_cadence_days": goal.checkin_cadence_days or "",
        "version": goal.version,
    }
    url = reverse("strategy:goal_edit", kwargs={"org_slug": "alpha", "goal_id": goal.pk})
    response = owner.client.post(url, fields)
    assert response.status_code == 302, response.content.decode()[-2000:]


@pytest.mark.django_db
def test_the_second_dashboard_is_kept_and_its_csrf_token_is_the_sessions(owner: Persona) -> None:
    _goal(owner, "Grow the outdoor market")
    built_queries, built = _get(owner.client, DASHBOARD)
    kept_queries, kept = _get(owner.client, DASHBOARD)
    assert kept_queries == HIT_QUERIES < built_queries
    assert _without_tokens(kept) == _without_tokens(built)
    assert pagecache.CSRF_PLACEHOLDER not in kept
    # The token put back is valid for this session: a form posted with it is accepted.
    owner.client.handler.enforce_csrf_checks = True
    token = re.search(r'csrfmiddlewaretoken" value="([A-Za-z0-9]+)"', kept)
    assert token is not None
    response = owner.client.post(reverse("accounts:logout"), {"csrfmiddlewaretoken": token[1]})
    assert response.status_code == 302


@pytest.mark.django_db
def test_a_write_through_the_web_shows_at_once(owner: Persona) -> None:
    goal = _goal(owner, "Grow the outdoor market")
    url = reverse("strategy:goal", kwargs={"org_slug": "alpha", "goal_id": goal.pk})
    _get(owner.client, url)
    assert _get(owner.client, url)[0] == HIT_QUERIES
    _edit(owner, goal, "Lead the outdoor market")
    queries, html = _get(owner.client, url)
    assert queries > HIT_QUERIES and "Lead the outdoor market" in html


@pytest.mark.django_db
def test_a_write_through_a_service_in_this_process_shows_at_once(owner: Persona) -> None:
    _get(owner.client, DASHBOARD)
    _goal(owner, "Open a second shop")
    queries, html = _get(owner.client, DASHBOARD)
    assert queries > HIT_QUERIES and "Open a second shop" in html


@pytest.mark.django_db
def test_people_and_roles_never_share_a_kept_page(owner: Persona, stakeholder: Persona) -> None:
    _get(owner.client, DASHBOARD)
    _, owners = _get(owner.client, DASHBOARD)
    queries, theirs = _get(stakeholder.client, DASHBOARD)
    assert queries > HIT_QUERIES
    assert "Stakeholder A" in theirs and "Stakeholder A" not in owners


@pytest.mark.django_db
def test_an_organisation_never_gets_anothers_kept_answer(owner: Persona, outsider: Persona) -> None:
    assert owner.api().get(API_GOALS).status_code == 200
    assert outsider.api().get(API_GOALS).status_code == 404
    assert outsider.client.get(DASHBOARD).status_code == 404


@pytest.mark.django_db
def test_a_page_with_a_message_is_not_kept(owner: Persona, monkeypatch: pytest.MonkeyPatch) -> None:
    _get(owner.client, DASHBOARD)
    assert _get(owner.client, DASHBOARD)[0] == HIT_QUERIES
    monkeypatch.setattr(pagecache.messages, "get_messages", lambda request: ["Saved."])
    assert _get(owner.client, DASHBOARD)[0] > HIT_QUERIES
    assert _get(owner.client, DASHBOARD)[0] > HIT_QUERIES


@pytest.mark.django_db
def test_the_api_lists_are_kept_byte_for_byte(owner: Persona) -> None:
    _goal(owner, "Grow the outdoor market")
    client = owner.api_read()
    for path in (API_GOALS, API_MEASURES, API_GOALS + "?level=strategic"):
        built_queries, built = _get(client, path)
        kept_queries, kept = _get(client, path)
        assert kept == built and kept_queries < built_queries, path
    created = owner.api().post(API_GOALS, {"title": "Open a second shop"}, content_type="application/json")
    assert created.status_code == 201
    queries, after = _get(client, API_GOALS)
    assert queries > 2 and "Open a second shop" in after


@pytest.mark.django_db
def test_switched_off_nothing_is_kept(owner: Persona, settings: Any) -> None:
    settings.TRUENORTH_PAGE_CACHE_SECONDS = 0
    _get(owner.client, DASHBOARD)  # the first also writes the session
    first, _ = _get(owner.client, DASHBOARD)
    assert _get(owner.client, DASHBOARD)[0] == first > HIT_QUERIES


@pytest.mark.django_db
def test_a_page_over_the_size_limit_is_not_kept(owner: Persona, settings: Any) -> None:
    settings.TRUENORTH_PAGE_CACHE_MAX_BYTES = 1024
    _get(owner.client, DASHBOARD)
    first, _ = _get(owner.client, DASHBOARD)
    assert _get(owner.client, DASHBOARD)[0] == first


@pytest.mark.django_db
def test_nothing_is_kept_longer_than_the_setting(owner: Persona, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    _get(owner.client, DASHBOARD)
    assert _get(owner.client, DASHBOARD)[0] == HIT_QUERIES
    now[0] += 61
    assert _get(owner.client, DASHBOARD)[0] > HIT_QUERIES


@pytest.mark.django_db(transaction=True)
def test_reading_writes_nothing_that_renews_the_version(owner: Persona) -> None:
    """Session writes (the current organisation) and an API token's last use are bookkeeping."""
    before = (_version(), pagecache._generation[0])
    for path in (DASHBOARD, DASHBOARD):
        _get(owner.client, path)
    _get(owner.api_read(), API_GOALS)
    assert (_version(), pagecache._generation[0]) == before


# --- other processes: only the organisation's version tells them ------------------------------------


def _forget_local_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this process made no write since the page was kept (it was made by another one)."""
    monkeypatch.setattr(pagecache, "_generation", [pagecache._generation[0]])
    frozen = pagecache._generation[0]

    def note_write() -> None:
        pagecache._state.wrote = True
        pagecache._generation[0] = frozen

    monkeypatch.setattr(pagecache, "note_write", note_write)


@pytest.mark.django_db(transaction=True)
def test_another_process_sees_a_web_write_through_the_version(
    owner: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forget_local_writes(monkeypatch)
    goal = _goal(owner, "Grow the outdoor market")
    _get(owner.client, DASHBOARD)
    assert _get(owner.client, DASHBOARD)[0] == HIT_QUERIES
    before = _version()
    _edit(owner, goal, "Z1 the outdoor market")
    assert _version() != before
    queries, html = _get(owner.client, DASHBOARD)
    assert queries > HIT_QUERIES and "Z1 the outdoor market" in html


@pytest.mark.django_db(transaction=True)
def test_a_job_renews_its_organisation_only(
    owner: Persona, outsider: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forget_local_writes(monkeypatch)
    job = Job.objects.create(
        organisation=Organisation.objects.get(slug="alpha"), created_by=owner.user, kind="nothing"
    )
    theirs = _version("bravo-secret")
    before = _version()
    execute(job.pk)  # an unknown kind fails, and recording that is a write of the organisation's
    assert _version() != before and _version("bravo-secret") == theirs


@pytest.mark.django_db(transaction=True)
def test_a_cli_command_that_writes_renews_every_organisation(
    owner: Persona, outsider: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forget_local_writes(monkeypatch)
    before = (_version(), _version("bravo-secret"))
    assert cli(["products", "create", "Tents", "--org", "alpha", "--as", owner.user.email]) == 0
    after = (_version(), _version("bravo-secret"))
    assert after[0] != before[0] and after[1] != before[1]


@pytest.mark.django_db(transaction=True)
def test_a_cli_command_that_only_reads_renews_nothing(
    owner: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forget_local_writes(monkeypatch)
    before = _version()
    assert cli(["products", "list", "--org", "alpha", "--as", owner.user.email]) == 0
    assert _version() == before


@pytest.mark.django_db(transaction=True)
def test_a_pulse_answered_by_link_renews_its_organisation_only(
    owner: Persona, outsider: Persona, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from truenorth.engagement.services import pulses as pulses
    from truenorth.engagement.services import throttle

    throttle.reset("pulse-link", "127.0.0.1")
    assert owner.membership is not None
    product = strategy.create_product(owner.membership, owner.user, name="Checkout", product_goal="One day")
    pulse = pulses.create_pulse(owner.membership, owner.user, product_id=product.pk, title="Pulse")
    _, invitations = pulses.open_round(pulse, send=False)
    _forget_local_writes(monkeypatch)
    before, theirs = _version(), _version("bravo-secret")
    answer = {
        "own_words": "Value in a day",
        "clarity": "4",
        "commitment": "5",
        "contribution": "",
        "group": "",
    }
    done = client.post(reverse("engagement:pulse-answer", args=[invitations[0][1]]), answer)
    assert done.status_code == 200 and b"Thank you" in done.content
    assert _version() != before and _version("bravo-secret") == theirs


@pytest.mark.django_db(transaction=True)
def test_a_failed_sign_in_renews_nobodys_pages(owner: Persona, client: Any) -> None:
    before = _version()
    response = client.post(reverse("accounts:login"), {"email": owner.user.email, "password": "wrong" * 3})
    assert response.status_code in (200, 429)
    assert _version() == before


@pytest.mark.django_db(transaction=True)
def test_a_missing_page_is_built_once_while_other_threads_wait(
    owner: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads asking for the same missing page at once: one builds it, the others get it kept."""
    from truenorth.home import views

    built = []
    real = views._dashboard

    def slow(request: Any, membership: Any) -> Any:
        built.append(1)
        time.sleep(0.3)
        return real(request, membership)

    monkeypatch.setattr(views, "_dashboard", slow)
    _get(owner.client, DASHBOARD)  # the session's first page writes it
    pagecache.clear()
    built.clear()
    statuses: list[int] = []

    def ask() -> None:
        statuses.append(owner.client.get(DASHBOARD).status_code)
        connection.close()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 4 and len(built) == 1


# --- kept API lists answer before the API runs -------------------------------------------------------


@pytest.mark.django_db
def test_a_kept_api_list_costs_one_query(owner: Persona) -> None:
    client = owner.api_read()
    _get(client, API_GOALS)
    queries, _ = _get(client, API_GOALS)
    assert queries == 1


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_on_postgresql_the_one_statement_of_a_kept_answer_is_prepared(owner: Persona) -> None:
    """Django binds parameters on the client, which psycopg never prepares: the kept answers' statements
    go through truenorth.core.prepared, so after DATABASE_PREPARE_THRESHOLD (5) they are only executed."""
    api = owner.api_read()
    for _ in range(7):
        _get(api, API_GOALS)
        _get(owner.client, DASHBOARD)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [str(row[0]) for row in cursor.fetchall()]
    assert any("accounts_apitoken t" in sql for sql in statements), statements
    assert any("django_session s" in sql for sql in statements), statements


@pytest.mark.django_db
def test_a_revoked_token_never_reads_a_kept_list(owner: Persona) -> None:
    from truenorth.accounts.models import APIToken, hash_token

    client = owner.api_read()
    _get(client, API_GOALS)
    _get(client, API_GOALS)
    APIToken.objects.filter(token_hash=hash_token(owner.read_token)).update(revoked_at=timezone.now())
    assert client.get(API_GOALS).status_code == 401


@pytest.mark.django_db
def test_a_former_member_never_reads_a_kept_list(owner: Persona, monkeypatch: pytest.MonkeyPatch) -> None:
    client = owner.api_read()
    _get(client, API_GOALS)
    _forget_local_writes(monkeypatch)  # as if another process removed the membership
    Membership.objects.filter(pk=owner.membership.pk if owner.membership else 0).delete()
    assert client.get(API_GOALS).status_code == 404


@pytest.mark.django_db
def test_a_two_factor_organisation_is_never_answered_early(
    owner: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = owner.api_read()
    _get(client, API_GOALS)
    _forget_local_writes(monkeypatch)
    Organisation.objects.filter(slug="alpha").update(require_two_factor=True)
    response = client.get(API_GOALS)
    assert response.status_code == 403 and "two-factor" in response.json()["detail"]


@pytest.mark.django_db
def test_a_stale_last_use_takes_the_usual_way_and_is_recorded(owner: Persona) -> None:
    from truenorth.accounts.models import APIToken, hash_token

    client = owner.api_read()
    _get(client, API_GOALS)
    long_ago = timezone.now() - dt.timedelta(hours=1)
    tokens = APIToken.objects.filter(token_hash=hash_token(owner.read_token))
    tokens.update(last_used_at=long_ago)
    queries, _ = _get(client, API_GOALS)
    used = tokens.get().last_used_at
    assert queries > 1 and used is not None and used > long_ago


# --- kept pages answer before the view --------------------------------------------------------------


def _tables(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split("FROM", 1)[1].split()[0].strip('"') for q in ctx.captured_queries]


@pytest.mark.django_db
def test_a_kept_page_costs_one_statement_before_the_view(owner: Persona) -> None:
    _get(owner.client, DASHBOARD)
    with CaptureQueriesContext(connection) as ctx:
        response = owner.client.get(DASHBOARD)
    assert response.status_code == 200 and response.wsgi_request.user == owner.user
    assert _tables(ctx) == ["django_session"]
    assert "accounts_user" in ctx.captured_queries[0]["sql"] and "orgs_membership" in ctx.captured_queries[0]["sql"]
    # A session this process has not seen yet: the session, then the person with the membership.
    pagecache._session_people.clear()
    with CaptureQueriesContext(connection) as ctx:
        assert owner.client.get(DASHBOARD).status_code == 200
    assert _tables(ctx) == ["django_session", "accounts_user"]


@pytest.mark.django_db
def test_a_wrong_hint_never_answers_as_another_person(owner: Persona, outsider: Persona) -> None:
    Membership.objects.create(organisation=Organisation.objects.get(slug="alpha"), user=outsider.user)
    _get(outsider.client, DASHBOARD)  # the outsider's own page of alpha is kept
    _get(owner.client, DASHBOARD)
    key = str(owner.client.session.session_key)
    pagecache._session_people[key] = outsider.user.pk  # the hint names someone else
    response = owner.client.get(DASHBOARD)
    assert response.status_code == 200 and response.wsgi_request.user == owner.user
    assert key not in pagecache._session_people  # forgotten; the next page records the right one
    assert owner.client.get(DASHBOARD).wsgi_request.user == owner.user
    assert pagecache._session_people[key] == owner.user.pk


@pytest.mark.django_db
def test_a_hinted_session_signed_out_elsewhere_or_after_a_password_change_is_refused(owner: Persona) -> None:
    from django.contrib.sessions.models import Session

    _get(owner.client, DASHBOARD)
    _get(owner.client, DASHBOARD)
    owner.user.set_password("a brand new passphrase 42")
    owner.user.save()  # the session's hash no longer matches: Django signs it out
    response = owner.client.get(DASHBOARD)
    assert response.status_code == 302 and "/accounts/login" in response["Location"]
    owner.client.force_login(owner.user)
    _get(owner.client, DASHBOARD)
    Session.objects.all().delete()  # signed out from another device
    response = owner.client.get(DASHBOARD)
    assert response.status_code == 302 and "/accounts/login" in response["Location"]


@pytest.mark.django_db
def test_switching_organisation_goes_through_the_view_and_is_remembered(
    owner: Persona, outsider: Persona
) -> None:
    from truenorth.orgs.access import CURRENT_ORG_SESSION_KEY

    Membership.objects.create(organisation=Organisation.objects.get(slug="bravo-secret"), user=owner.user)
    other = "/o/bravo-secret/"
    _get(owner.client, DASHBOARD)
    _get(owner.client, DASHBOARD)
    _get(owner.client, other)
    assert owner.client.session[CURRENT_ORG_SESSION_KEY] == "bravo-secret"
    queries, _ = _get(owner.client, DASHBOARD)  # kept, but the session must record the switch back
    assert queries > HIT_QUERIES and owner.client.session[CURRENT_ORG_SESSION_KEY] == "alpha"


@pytest.mark.django_db
def test_a_two_factor_organisation_still_holds_a_kept_page(
    owner: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    _get(owner.client, DASHBOARD)
    _get(owner.client, DASHBOARD)
    _forget_local_writes(monkeypatch)
    Organisation.objects.filter(slug="alpha").update(require_two_factor=True)
    response = owner.client.get(DASHBOARD)
    assert response.status_code == 302 and "two-factor" in response["Location"]


def test_truenorth_check_states_the_page_caches_time_and_memory(settings: Any) -> None:
    settings.TRUENORTH_PAGE_CACHE_SECONDS = 60
    settings.TRUENORTH_PAGE_CACHE_ENTRIES = 300
    settings.TRUENORTH_PAGE_CACHE_MAX_BYTES = 262_144
    (line,) = pagecache.check()
    assert line.status == "ok" and "60 s" in line.detail and "75 MiB" in line.detail
    settings.TRUENORTH_PAGE_CACHE_SECONDS = 0
    assert "off" in pagecache.check()[0].detail


@pytest.mark.django_db
def test_a_signed_out_page_naming_no_organisation_renews_none(owner: Persona, outsider: Persona) -> None:
    """Sign-in links, password resets: renewing every organisation per signed-out request would let
    anyone send an UPDATE of every organisation's row at will."""
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    request = RequestFactory().post("/accounts/password/reset/")
    request.user = AnonymousUser()
    assert not Organisation.objects.filter(pagecache._request_scope(request)).exists()
    request.user = owner.user
    assert list(
        Organisation.objects.filter(pagecache._request_scope(request)).values_list("slug", flat=True)
    ) == ["alpha"]
