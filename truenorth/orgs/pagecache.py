"""Whole pages and API lists served from a per-process cache, per organisation version.

The busiest reads (an organisation's dashboard, a goal page, the API's goal and measure lists) cost
10-60 ms of CPU to build and are read far more often than anything changes. Each answer is kept in the
per-process cache `CACHES["pages"]` (settings TRUENORTH_PAGE_CACHE_*) under a key made of:

- the organisation's `cache_version`, a random token replaced after every write to the organisation's
  data (below), and this process's write generation, bumped by every write this process makes;
- who asks (the person, their role), what (the full path, htmx headers), in which language and time zone;
and is kept at most TRUENORTH_PAGE_CACHE_SECONDS, so nothing is older than that (overdue check-ins,
"3 days ago", a write that no boundary below saw).

Writes are seen where they are made, not model by model: a database wrapper (`_watch`) marks every
INSERT/UPDATE/DELETE on the thread, except to bookkeeping tables (BOOKKEEPING_TABLES), and each
boundary replaces the version of the organisations it wrote for when it ends:
- a web or API request: the organisation in its URL (`org_slug`/`slug`) or named by the view
  (`scope_request`: a pulse answered by link), else every organisation of the signed-in person
  (account pages, invitations), else none (signed-out pages);
- a background job: its organisation; a huey task or a CLI command: every organisation.
The replacement runs after the commit (a reader never caches the new version with old data) and is
one UPDATE per boundary, never per row. A session's CSRF token is not kept: pages are stored with a
placeholder put back per request. Only 200 answers under TRUENORTH_PAGE_CACHE_MAX_BYTES are kept, and
never a page showing one-time messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import messages
from django.core.cache import BaseCache, caches
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.utils import timezone, translation

from truenorth.core import prepared

if TYPE_CHECKING:  # imported before django.setup() by the CLI (truenorth/cli.py)
    from truenorth.orgs.models import Membership

# Writes to these tables change no kept answer: sessions, the shared cache and its counters, failed
# sign-ins and API tokens' last use (else anyone could renew every page by failing to sign in).
BOOKKEEPING_TABLES = (
    "django_session",
    "truenorth_cache",
    "truenorth_rate_counter",
    "accounts_loginattempt",
    "accounts_apitoken",
)
# Stands for the asking session's CSRF token in kept pages: random per process (the cache is too), so
# no text anyone writes into a goal can be mistaken for it.
CSRF_PLACEHOLDER = f"csrf-{secrets.token_hex(16)}"
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")
_STORE_ATTR = "_truenorth_page_cache_store"

_state = threading.local()
_generation = [0]  # this process's writes; a lost increment under a race still changes it


def _wrote() -> bool:
    return bool(getattr(_state, "wrote", False))


def note_write() -> None:
    """This thread changed data: its boundary replaces the version when it ends."""
    _state.wrote = True
    _generation[0] += 1


def _watch(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Mapping[str, Any]) -> Any:
    head = sql.lstrip()[:80]
    if head[:6].upper() in _WRITES and not getattr(_state, "bumping", False):
        if not any(table in head for table in BOOKKEEPING_TABLES):
            note_write()
    return execute(sql, params, many, context)


def install(sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
    """`connection_created` receiver: watch every database connection's writes."""
    if connection is not None and _watch not in connection.execute_wrappers:
        connection.execute_wrappers.append(_watch)


def _bump(where: Q | None) -> None:
    """Give the organisations matched by `where` (all when None) a new version, after the commit."""

    from truenorth.orgs.models import Organisation

    def run() -> None:
        _state.bumping = True
        try:
            rows = Organisation.objects.all() if where is None else Organisation.objects.filter(where)
            rows.update(cache_version=secrets.token_hex(8))
        finally:
            _state.bumping = False

    transaction.on_commit(run)  # at once outside a transaction


def enter() -> None:
    """Start a write boundary (nested ones keep the outer one's writes apart)."""
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    stack.append(_wrote())
    _state.wrote = False


def leave(scope: Callable[[], Q | None]) -> None:
    """End the boundary: when it wrote, the organisations `scope()` names (None: all) get a new version."""
    stack = getattr(_state, "stack", None) or [False]
    try:
        if _wrote():
            _bump(scope())
    finally:
        _state.wrote = stack.pop()


@contextlib.contextmanager
def boundary(scope: Callable[[], Q | None]) -> Iterator[None]:
    """Writes made inside give the organisations `scope()` names (None: all) a new version at the end."""
    enter()
    try:
        yield
    finally:
        leave(scope)


def every_organisation() -> Q | None:
    return None


# --- the web and API boundary -----------------------------------------------------------------------


_SCOPE_ATTR = "_truenorth_page_cache_org"


def scope_request(request: HttpRequest, organisation_id: int) -> None:
    """A page without the organisation in its address (a pulse answered by link) names the one it
    writes for, so its writes renew that organisation's pages, not every organisation's."""
    setattr(request, _SCOPE_ATTR, organisation_id)


def _request_scope(request: HttpRequest) -> Q | None:
    named = getattr(request, _SCOPE_ATTR, None)
    if named is not None:
        return Q(pk=named)
    match = getattr(request, "resolver_match", None)
    kwargs = match.kwargs if match is not None else {}
    slug = kwargs.get("org_slug") or kwargs.get("slug")
    if isinstance(slug, str):
        return Q(slug=slug)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Q(memberships__user=user)
    # Signed out, with no organisation named (sign-up, sign-in links, password resets): nothing such a
    # request writes is on an organisation's pages, and renewing every organisation's would let anyone
    # send an UPDATE of every organisation per request.
    return Q(pk__in=[])


class PageCacheMiddleware:
    """A request is a write boundary; answers the view marked for keeping are stored after it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with boundary(lambda: _request_scope(request)):
            response = self.get_response(request)
        store = getattr(request, _STORE_ATTR, None)
        if store is not None:
            _keep(response, *store)
        return response

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        """A kept answer before the view runs, or None to run it. Only GETs of the views listed in
        FAST_PAGE_VIEWS / FAST_API_VIEWS (which keep their answers themselves) are looked up, after one
        query checks what the view would: see `_page_caller` and `_api_caller`."""
        match = request.resolver_match
        if request.method != "GET" or match is None or _seconds() <= 0:
            return None
        if match.view_name in FAST_PAGE_VIEWS:
            slug = kwargs.get("org_slug")
            caller = _page_caller(request, slug) if isinstance(slug, str) else None
        elif match.view_name in FAST_API_VIEWS:
            slug = kwargs.get("slug")
            scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
            ok = scheme.lower() == "bearer" and raw.strip() and isinstance(slug, str)
            caller = _api_caller(raw.strip(), str(slug)) if ok else None
        else:
            return None
        return None if caller is None else _hit(request, _key_of(request, *caller))


# The pages and API operations answered from the cache before they run (PageCacheMiddleware.
# process_view); each calls `cached_render`/`cached_api` itself, so a miss keeps its answer.
FAST_PAGE_VIEWS = frozenset({"home:dashboard", "strategy:goal"})
FAST_API_VIEWS = frozenset({"api:list_goals", "api:list_measures"})


def _membership_row(user_id: int, slug: str) -> tuple[int, str, str, bool] | None:
    """(organisation id, its version, role, requires two-factor) of the person in organisation `slug`."""
    from django.db import connection as db

    from truenorth.orgs.models import Membership, Organisation

    sql = (
        f"SELECT o.id, o.cache_version, m.role, o.require_two_factor FROM {Membership._meta.db_table} m "  # noqa: S608
        f"JOIN {Organisation._meta.db_table} o ON o.id = m.organisation_id WHERE o.slug = %s AND m.user_id = %s"
    )
    with prepared.cursor(db) as cursor:
        cursor.execute(sql, [slug, user_id])
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]), bool(row[3]))


def _page_caller(request: HttpRequest, slug: str) -> tuple[int, str, int, str] | None:
    """What `org_view` would check before the page: a signed-in member (Django's own session and user
    checks), whose session already names this organisation (else org_view records it), in an
    organisation not requiring two-factor sign-in (else its gate decides), with no one-time message."""
    from truenorth.orgs.access import CURRENT_ORG_SESSION_KEY

    found = _session_member(request, slug)
    if request.session.get(CURRENT_ORG_SESSION_KEY) != slug:  # loaded by then, or loaded now
        return None
    row: tuple[int, str, str, bool] | None
    if found is not None:
        user, row = found
    else:
        user = request.user
        if not user.is_authenticated:
            return None
        row = _membership_row(int(user.pk), slug)
    if row is None or row[3] or len(messages.get_messages(request)) > 0:
        return None
    return row[0], row[1], int(user.pk), row[2]


# The sign-ins whose person `_session_member` loads itself (each loads the row by id, active only).
_SESSION_BACKENDS = ("truenorth.accounts.backends.SessionUserBackend", "django.contrib.auth.backends.ModelBackend")
# Session key -> the person it signed in, as this process last saw it: only a hint for reading the
# session, the person and the membership in one statement (the session's own data is still checked).
_session_people: dict[str, int] = {}
SESSION_HINTS = 10_000


def _session_member(request: HttpRequest, slug: str) -> tuple[Any, tuple[int, str, str, bool]] | None:
    """The signed-in person and their membership row, doing what Django's `get_user` does (the
    session's backend, an active person, the session's hash of their password), then setting
    `request.user`; None when the person is loaded already or anything is unusual (the caller then
    goes Django's way, which also signs out a stale session).

    One statement reads the session, the person and the membership when this process has seen the
    session before (`_session_people`), else two (the session, then the person with the membership)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.db import connection as db
    from django.utils.crypto import constant_time_compare
    from django.utils.functional import SimpleLazyObject, empty

    from truenorth.accounts.backends import user_columns, user_from_row
    from truenorth.accounts.models import User
    from truenorth.accounts.sessions import SessionStore
    from truenorth.orgs.models import Membership, Organisation

    lazy = request.__dict__.get("user")
    session = request.session
    if not isinstance(lazy, SimpleLazyObject) or lazy._wrapped is not empty or not isinstance(session, SessionStore):
        return None
    memberships = (
        f"JOIN {Membership._meta.db_table} m ON m.user_id = u.id "
        f"JOIN {Organisation._meta.db_table} o ON o.id = m.organisation_id"
    )
    columns = f"{user_columns()}, o.id, o.cache_version, m.role, o.require_two_factor"
    hinted = _session_people.get(session.session_key or "")
    if hinted is not None and not session.is_loaded():
        sql = (
            f"SELECT s.session_data, {columns} FROM {session.model._meta.db_table} s "  # noqa: S608
            f"JOIN {User._meta.db_table} u ON u.id = %s {memberships} "
            "WHERE s.session_key = %s AND s.expire_date > %s AND o.slug = %s"
        )
        params = [hinted, session.session_key, db.ops.adapt_datetimefield_value(timezone.now()), slug]
        with prepared.cursor(db) as cursor:
            cursor.execute(sql, params)
            found = cursor.fetchone()
        if found is None:  # signed out, expired, no longer a member, or the hint is wrong
            _session_people.pop(str(session.session_key), None)
            return None
        session.preload(found[0])
        found = found[1:]
    else:
        hinted = None
    backend, session_hash = session.get(BACKEND_SESSION_KEY), session.get(HASH_SESSION_KEY)
    if backend not in _SESSION_BACKENDS or backend not in settings.AUTHENTICATION_BACKENDS or not session_hash:
        return None
    try:
        user_id = User._meta.pk.to_python(session.get(SESSION_KEY))
    except Exception:  # a malformed id: Django's way decides
        return None
    if hinted is None:
        sql = f"SELECT {columns} FROM {User._meta.db_table} u {memberships} WHERE u.id = %s AND o.slug = %s"  # noqa: S608
        with prepared.cursor(db) as cursor:
            cursor.execute(sql, [user_id, slug])
            found = cursor.fetchone()
        if found is None:
            return None
    elif user_id != hinted:
        _session_people.pop(str(session.session_key), None)
        return None
    user = user_from_row(found)
    if not user.is_active or not constant_time_compare(session_hash, user.get_session_auth_hash()):
        return None
    user.backend = backend
    request.user = request._cached_user = user  # type: ignore[attr-defined]
    if len(_session_people) >= SESSION_HINTS:
        _session_people.clear()
    _session_people[str(session.session_key)] = int(user.pk)
    org_id, version, role, two_factor = found[-4:]
    return user, (int(org_id), str(version), str(role), bool(two_factor))


def _api_caller(raw: str, slug: str) -> tuple[int, str, int, str] | None:
    """(organisation id, its version, person id, role) of a token allowed to read organisation `slug`
    whose last use is recent, or None."""
    from django.db import connection as db

    from truenorth.accounts.models import APIToken, User, hash_token
    from truenorth.accounts.services import LAST_USED_RESOLUTION
    from truenorth.orgs.models import Membership, Organisation

    sql = (
        f"SELECT o.id, o.cache_version, m.user_id, m.role FROM {APIToken._meta.db_table} t "  # noqa: S608
        f"JOIN {User._meta.db_table} u ON u.id = t.user_id "
        f"JOIN {Membership._meta.db_table} m ON m.user_id = t.user_id "
        f"JOIN {Organisation._meta.db_table} o ON o.id = m.organisation_id "
        "WHERE t.token_hash = %s AND t.revoked_at IS NULL AND t.last_used_at >= %s AND u.is_active = %s "
        "AND o.slug = %s AND o.require_two_factor = %s"
    )
    since = db.ops.adapt_datetimefield_value(timezone.now() - LAST_USED_RESOLUTION)
    with prepared.cursor(db) as cursor:
        cursor.execute(sql, [hash_token(raw), since, True, slug, False])
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), str(row[1]), int(row[2]), str(row[3]))


# --- keys, hits and stores --------------------------------------------------------------------------


def _cache() -> BaseCache:
    return caches["pages" if "pages" in settings.CACHES else "default"]


def _seconds() -> int:
    return int(getattr(settings, "TRUENORTH_PAGE_CACHE_SECONDS", 60))


def _key(request: HttpRequest, membership: Membership) -> str | None:
    """The answer's key, or None when it must not come from (or go to) the cache."""
    if _seconds() <= 0 or request.method != "GET":
        return None
    if len(messages.get_messages(request)) > 0:  # one-time messages: shown once, never kept
        return None
    org = membership.organisation
    return _key_of(request, org.pk, org.cache_version, membership.user_id, membership.role)


def _key_of(request: HttpRequest, org_id: int, version: str, user_id: int, role: str) -> str:
    parts = (
        request.get_full_path(),
        request.headers.get("HX-Request", ""),
        request.headers.get("HX-Target", ""),
        str(org_id),
        version,
        str(_generation[0]),
        str(user_id),
        role,
        translation.get_language() or "",
        timezone.get_current_timezone_name(),
    )
    return "page:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _keep(response: HttpResponse, key: str, token: str | None) -> None:
    limit = int(getattr(settings, "TRUENORTH_PAGE_CACHE_MAX_BYTES", 262_144))
    if (
        response.status_code != 200
        or response.streaming
        or response.cookies.keys() - {settings.CSRF_COOKIE_NAME}
    ):
        return
    body = response.content
    if len(body) > limit:
        return
    if token is not None:
        body = body.replace(token.encode(), CSRF_PLACEHOLDER.encode())
    # Kept for the setting's time, less up to a fifth at random, so that the processes' copies do not all
    # expire (and get built again) at the same moment.
    _cache().set(key, (response["Content-Type"], body), _seconds() * random.uniform(0.8, 1.0))  # noqa: S311 (jitter)


def _hit(request: HttpRequest, key: str | None) -> HttpResponse | None:
    if key is None:
        return None
    found = _cache().get(key)
    if found is None:
        return None
    content_type, body = found
    if CSRF_PLACEHOLDER.encode() in body:
        body = body.replace(CSRF_PLACEHOLDER.encode(), get_token(request).encode())
    return HttpResponse(body, content_type=content_type)


def cached_render(
    request: HttpRequest, membership: Membership, template: str, context: Callable[[], dict[str, Any]]
) -> HttpResponse:
    """`render(request, template, context())`, or the same page kept from an earlier request."""
    key = _key(request, membership)
    if key is None:
        return render(request, template, context())
    if (hit := _hit(request, key)) is not None:
        return hit
    with _single_flight(key):  # the process's other threads asking for it wait for this one
        if (hit := _hit(request, key)) is not None:
            return hit
        token = get_token(request)
        response = render(request, template, {**context(), "csrf_token": token})
        _keep(response, key, token)
    return response


_flights: dict[str, threading.Lock] = {}
_flights_lock = threading.Lock()


@contextlib.contextmanager
def _single_flight(key: str) -> Iterator[None]:
    """One thread of the process builds a missing page; the others asking for it meanwhile wait, then
    find it kept (a page expiring under load is built once per process, not once per thread)."""
    with _flights_lock:
        lock = _flights.setdefault(key, threading.Lock())
    with lock:
        try:
            yield
        finally:
            with _flights_lock:
                _flights.pop(key, None)


def cached_api(request: HttpRequest, membership: Membership, build: Callable[[], Any]) -> Any:
    """An API operation's result (serialised by the API as usual, then kept), or the JSON kept from
    an earlier request."""
    key = _key(request, membership)
    if (hit := _hit(request, key)) is not None:
        return hit
    result = build()
    if key is not None:
        setattr(request, _STORE_ATTR, (key, None))
    return result


def clear() -> None:
    """Forget every kept answer of this process (tests, `truenorth restore`)."""
    _cache().clear()


def check() -> list[Any]:
    """`truenorth check`: whether pages are kept, for how long and in how much memory at most."""
    from truenorth.core.health import CheckResult

    seconds = _seconds()
    if seconds <= 0:
        return [CheckResult("page cache", "ok", "off (TRUENORTH_PAGE_CACHE_SECONDS=0): every page is built")]
    entries = int(getattr(settings, "TRUENORTH_PAGE_CACHE_ENTRIES", 300))
    size = int(getattr(settings, "TRUENORTH_PAGE_CACHE_MAX_BYTES", 262_144))
    detail = (
        f"pages kept up to {seconds} s per server process, at most {entries} of at most {size // 1024} KiB "
        f"(<= {entries * size / 2**20:.0f} MiB per process); renewed after every write"
    )
    return [CheckResult("page cache", "ok", detail)]
