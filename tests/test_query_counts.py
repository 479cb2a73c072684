"""Fixed SQL query counts: a page or list endpoint runs the same number of queries with 3 rows or 40.

Each case is measured twice for the owner of organisation A: once with the fixtures' few rows, then
after adding 40 of everything (members, organisations in the switcher, pending invitations, history
entries, API tokens). The two counts must be equal (no N+1) and equal to the pinned number, so any
added query shows up here and has to be justified by updating the pin.

Requests are warmed up once before measuring, so one-off writes (an API token's `last_used_at`, at
most once a minute) are not counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from truenorth.accounts.models import APIToken, User, hash_token
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.orgs.models import Invitation, Membership, Organisation, Role


@pytest.fixture(autouse=True)
def _pages_as_built(settings: Any) -> None:
    """The counts of the pages as built, not as kept by the page cache (tests/test_page_cache.py)."""
    settings.TRUENORTH_PAGE_CACHE_SECONDS = 0


if TYPE_CHECKING:
    from conftest import Persona

MANY = 40


def _grow(owner: Persona) -> None:
    """Add MANY rows of every kind the measured pages and endpoints list."""
    org = owner.membership.organisation if owner.membership else None
    assert org is not None
    users = User.objects.bulk_create(
        [User(email=f"bulk{i:02}@a.example", name=f"Bulk {i:02}", password="!") for i in range(MANY)]
    )
    memberships = Membership.objects.bulk_create(
        [Membership(organisation=org, user=u, role=Role.MEMBER) for u in users]
    )
    others = Organisation.objects.bulk_create(
        [Organisation(name=f"Zeta {i:02}", slug=f"zeta-{i:02}") for i in range(MANY)]
    )
    Membership.objects.bulk_create(
        [Membership(organisation=o, user=owner.user, role=Role.STAKEHOLDER) for o in others]
    )
    Invitation.objects.bulk_create(
        [
            Invitation(
                organisation=org,
                email=f"invitee{i:02}@example.com",
                role=Role.MEMBER,
                token_hash=hash_token(f"bulk-invitation-{i}"),
                invited_by=owner.user,
                expires_at=timezone.now() + dt.timedelta(days=7),
            )
            for i in range(MANY)
        ]
    )
    for m in memberships:
        record(
            org, m, owner.user, HistoryEntry.Action.UPDATED, {"role": {"old": "stakeholder", "new": "member"}}
        )
    APIToken.objects.bulk_create(
        [
            APIToken(
                user=owner.user,
                name=f"bulk token {i:02}",
                token_hash=hash_token(f"bulk-token-{i}"),
                prefix=f"tn_bulk{i:02}",
            )
            for i in range(MANY)
        ]
    )


def _measure(client: Client, path: str) -> tuple[int, list[str], Any]:
    client.get(path)  # warm-up
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries], response


def _json_len(response: Any) -> int:
    return len(response.json())


def _html_has(text: str) -> Callable[[Any], bool]:
    return lambda response: text in response.content.decode()


# (path, web page or API, pinned count, check that the grown rows are really listed)
# Web pages: session, user, membership, [page queries], org switcher, unread notifications in the
# header. The current organisation is written to the session only when it changes (the warm-up
# request), so not here. The dashboard's Vision panel adds progress (4), products and goal counts (3),
# organisation goals, my overdue check-ins and unread notifications; the Value card adds measures (with
# their last observation) and the latest value (2), the Validation card hypotheses per product and state,
# running experiments and the latest decision (3); goal trees have their own pins in
# truenorth/strategy/tests/test_tree_queries.py.
DASHBOARD_QUERIES = 23
CASES: list[tuple[str, str, int, Callable[[Any], bool]]] = [
    ("/o/alpha/", "web", DASHBOARD_QUERIES, _html_has(f"{2 + MANY} members")),
    ("/o/alpha/members/", "web", 7, _html_has("invitee39@example.com")),
    ("/o/alpha/settings/", "web", 6, _html_has("Bulk 39 in Alpha Org")),
    ("/o/alpha/products/", "web", 13, _html_has("Bulk 39 &lt;bulk39@a.example&gt;")),
    ("/o/alpha/alignment/", "web", 14, _html_has("Bulk 39 &lt;bulk39@a.example&gt;")),
    ("/o/alpha/checkins/overdue/", "web", 8, _html_has("Bulk 39 &lt;bulk39@a.example&gt;")),
    ("/o/alpha/notifications/", "web", 6, _html_has("No notifications.")),
    ("/accounts/tokens/", "web", 3, _html_has("bulk token 39")),
    ("/api/v1/orgs", "api", 2, lambda r: _json_len(r) == 1 + MANY),
    # Organisation endpoints: +1 for the two-factor policy of the token's person (accounts/twofactor.py).
    ("/api/v1/orgs/alpha/members", "api", 4, lambda r: _json_len(r) == 2 + MANY),
    ("/api/v1/orgs/alpha/history", "api", 4, lambda r: _json_len(r) >= MANY),
    ("/api/v1/tokens", "api", 2, lambda r: _json_len(r) == 2 + MANY),
]


@pytest.mark.parametrize(("path", "kind", "pinned", "shows_rows"), CASES, ids=[c[0] for c in CASES])
def test_query_count_is_fixed(
    owner: Persona, path: str, kind: str, pinned: int, shows_rows: Callable[[Any], bool]
) -> None:
    client = owner.client if kind == "web" else owner.api()
    few, _, _ = _measure(client, path)
    _grow(owner)
    many, many_sql, response = _measure(client, path)
    assert shows_rows(response), f"{path} does not list the added rows, so the comparison proves nothing"
    assert few == many, (
        f"{path}: {few} queries with few rows but {many} with {MANY} more (N+1?):\n" + "\n".join(many_sql)
    )
    assert many == pinned, f"{path}: {many} queries, pinned {pinned}:\n" + "\n".join(many_sql)


ORG_PAGES = ("/o/alpha/", "/o/alpha/members/", "/o/alpha/settings/")


def test_org_pages_of_non_admins_are_fixed_too(owner: Persona, member: Persona, stakeholder: Persona) -> None:
    """Members and stakeholders see no invitations (one query fewer on the members page)."""
    pinned = {"/o/alpha/": DASHBOARD_QUERIES, "/o/alpha/members/": 6, "/o/alpha/settings/": 6}

    def counts() -> dict[tuple[str, str], int]:
        return {
            (persona.user.email, path): _measure(persona.client, path)[0]
            for persona in (member, stakeholder)
            for path in ORG_PAGES
        }

    few = counts()
    _grow(owner)
    many = counts()
    assert few == many
    assert many == {(email, path): pinned[path] for email, path in many}


def _grow_pillars(owner: Persona, products: int) -> None:
    """Products, each with a measure (and a value), a hypothesis with a running experiment and a decision."""
    from truenorth.hypotheses.models import Decision, Experiment, Hypothesis
    from truenorth.measures.models import Measure, Observation
    from truenorth.strategy.models import Product

    org = owner.membership.organisation if owner.membership else None
    assert org is not None
    start = Product.objects.filter(organisation=org).count()
    made = Product.objects.bulk_create(
        [Product(organisation=org, name=f"Pillar {start + i:02}") for i in range(products)]
    )
    measures = Measure.objects.bulk_create(
        [Measure(organisation=org, product=p, name=f"Measure of {p.name}", kva="current_value") for p in made]
    )
    Observation.objects.bulk_create(
        [Observation(measure=m, value=i + 0.5, observed_at=timezone.now()) for i, m in enumerate(measures)]
    )
    hypotheses = Hypothesis.objects.bulk_create(
        [Hypothesis(organisation=org, product=p, title=f"Idea for {p.name}", state="testing") for p in made]
    )
    Experiment.objects.bulk_create(
        [Experiment(hypothesis=h, name=f"Test of {h.title}", state="running") for h in hypotheses]
    )
    Decision.objects.bulk_create(
        [
            Decision(
                hypothesis=h, outcome="inconclusive", decision="stop", learning="x", decided_by=owner.user
            )
            for h in hypotheses
        ]
    )


def test_the_dashboard_pillar_cards_keep_a_fixed_query_count(owner: Persona) -> None:
    _grow_pillars(owner, 2)
    few, _, response = _measure(owner.client, "/o/alpha/")
    assert "<strong>2</strong> measures" in response.content.decode()
    _grow_pillars(owner, MANY)
    many, many_sql, response = _measure(owner.client, "/o/alpha/")
    html = response.content.decode()
    assert f"<strong>{2 + MANY}</strong> measures" in html and f"{2 + MANY} experiments running" in html
    assert few == many == DASHBOARD_QUERIES, "\n".join(many_sql)
