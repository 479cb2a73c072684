"""Tenant isolation, checked by walking every route rather than by listing them.

Organisation A ("Alpha Org", /o/alpha/) is fully populated: four personas, a pending invitation and
API tokens. The outsider owns organisation B and belongs to nothing in A. For every web route Django
knows and every operation in the OpenAPI schema, the outsider (and an anonymous visitor) tries to read
and change organisation A's objects. Every such attempt must answer exactly as if the object did not
exist (404), must not mention anything of organisation A, and must change nothing.

Routes are discovered, not listed: a new route whose URL parameters this file cannot fill makes the
walk fail and names the parameter to add to the mapping below, so new routes are covered by default.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.resolvers import RoutePattern
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tests.isolation_delivery import (
    DELIVERY_ID_NAMES,
    DELIVERY_SECRETS,
    DeliveryA,
    delivery_cross_references,
    delivery_ids,
    delivery_state,
    populate_delivery,
)
from tests.isolation_engagement import (
    ENGAGEMENT_ID_NAMES,
    ENGAGEMENT_SECRETS,
    EngagementA,
    engagement_cross_references,
    engagement_ids,
    engagement_refs,
    engagement_state,
    populate_engagement,
    populate_engagement_b,
)
from truenorth.accounts.models import APIToken, User
from truenorth.api import api
from truenorth.history.models import HistoryEntry
from truenorth.hypotheses import services as validation
from truenorth.hypotheses.models import Decision, Experiment, Hypothesis, ResultSnapshot
from truenorth.jobs.models import Job
from truenorth.measures import services as value
from truenorth.measures import sources as value_sources
from truenorth.measures.models import (
    KVA,
    CatalogueMeasure,
    DataSource,
    Investment,
    Measure,
    Observation,
    ObservationBatch,
    ValueSettings,
)
from truenorth.measures.sources import postgres_runner
from truenorth.orgs import services as org_services
from truenorth.orgs.models import Invitation, Membership, Organisation, Role
from truenorth.strategy import services as vision
from truenorth.strategy.models import (
    ChangeProposal,
    CheckIn,
    Comment,
    Endorsement,
    Goal,
    GoalLink,
    Product,
    TargetMeasure,
    TargetObservation,
    Team,
    WorkItem,
)

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

    from conftest import Persona

ORG_A_NAME = "Alpha Org"
ORG_A_SLUG = "alpha"
ORG_B_SLUG = "bravo-secret"
INVITEE_EMAIL = "invitee@a.example"

API_PREFIX = "api/v1/"
# Values that exist nowhere: the app must answer for org A's objects exactly as it does for these.
ABSENT_SLUG = "no-such-organisation"
ABSENT_ID = 2_147_483_000

# URL parameters that name an organisation or an object in one. A route that has any of them is
# "scoped": for someone outside the organisation it must answer 404, never 403/200/a redirect.
OBJECT_KWARGS = frozenset(
    {
        "org_slug",
        "member_id",
        "invitation_id",
        "token_id",
        "product_id",
        "goal_id",
        "target_id",
        "proposal_id",
        "concern_id",
        "link_id",
        "item_id",
        "change_id",
        "measure_id",
        "observation_id",
        "source_id",
        "hypothesis_id",
        "experiment_id",
        "decision_id",
        "snapshot_id",
        "job_id",
        "stakeholder_id",
        "pulse_id",
        "round_id",
        "share_link_id",
        "document_id",
        "email_id",
        "webhook_id",
        "delivery_id",
        "import_id",
    }
)

# Bearer links: whoever holds the link may use it, by design, so they are the explicit exceptions to
# "every route with a parameter answers 404". The walk still checks them for leaks and 5xx.
#  - orgs:accept_invitation: /invite/<token>/ is e-mailed to the invitee and may be forwarded; the
#    holder legitimately sees which organisation invites them (so "Alpha Org" may appear) and may
#    accept it. The walk only GETs it: POSTing would legitimately make the outsider a member of A.
#  - accounts:password_reset_confirm: the walk uses an org-A user's uid with a token that is NOT valid,
#    so the page must say the link is invalid without revealing whose account it is.
#  - accounts:sign_in_link: an e-mailed sign-in link (after failed sign-ins); the walk uses an invalid one.
#  - engagement:pulse-answer, engagement:share, engagement:share_markdown, engagement:unsubscribe and
#    engagement:activity_feed: one-time pulse links, brief share links, signed unsubscribe links and
#    personal feed links; the walk fills them with a token that is not theirs (they must answer as for
#    any unknown link); test_engagement_bearer_links_show_only_what_they_are_for uses valid ones.
ENGAGEMENT_BEARER_LINKS = frozenset(
    {
        "engagement:pulse-answer",
        "engagement:share",
        "engagement:share_markdown",
        "engagement:unsubscribe",
        "engagement:activity_feed",
    }
)
BEARER_LINK_ROUTES = (
    frozenset({"orgs:accept_invitation", "accounts:password_reset_confirm", "accounts:sign_in_link"})
    | ENGAGEMENT_BEARER_LINKS
)
BEARER_LINK_MAY_SHOW: dict[str, frozenset[str]] = {
    "orgs:accept_invitation": frozenset({ORG_A_NAME, INVITEE_EMAIL}),
    "accounts:password_reset_confirm": frozenset(),
    "accounts:sign_in_link": frozenset(),
} | {name: frozenset() for name in ENGAGEMENT_BEARER_LINKS}
BEARER_LINK_SKIP_POST = frozenset({"orgs:accept_invitation"})

# Floors, so the walks cannot pass vacuously (e.g. if the resolver walk or the schema broke).
# Raise them when you add routes; never lower them to make a failure go away.
MIN_WEB_ROUTES = 140
MIN_WEB_SCOPED_ROUTES = 110
MIN_API_OPERATIONS = 160
MIN_API_SCOPED_OPERATIONS = 155

# Form data sent with every web POST: a valid value for every form field in the app, aimed at doing
# as much damage as possible (rename the organisation, grant owner, invite), so that a missing access
# check would show up as a change rather than be hidden behind a form error.
# Plain requests, and the htmx form of a POST (views answer htmx with a fragment, not a redirect).
WEB_REQUEST_VARIANTS: list[tuple[str, dict[str, str]]] = [
    ("get", {}),
    ("post", {}),
    ("post", {"HX-Request": "true"}),
]

WEB_POST_DATA = {
    "name": "Pwned by B",
    "slug": "pwned-by-b",
    "version": "1",
    "email": "pwned@b.example",
    "role": Role.OWNER,
    "scope": APIToken.Scope.READ_WRITE,
    "organisation": "",
    "password": "correct-horse-battery-staple-42",
    "new_password1": "correct-horse-battery-staple-42",
    "new_password2": "correct-horse-battery-staple-42",
}


@dataclass
class OrgA:
    """Organisation A with one object of every kind a URL can point at."""

    org: Organisation
    users: list[User]
    member: Membership
    invitation: Invitation
    invitation_token: str
    token: APIToken  # an org-A user's read-write API token
    vision: VisionA
    engagement: EngagementA
    delivery: DeliveryA
    secrets: list[str] = field(default_factory=list)  # strings no outsider response may contain


@dataclass
class VisionA:
    """Organisation A's products and goals: one object of every kind a Vision URL points at."""

    team: Team
    product: Product
    goal: Goal  # an active strategic goal owned by the owner, with a child
    child: Goal
    org_goal: Goal
    target: TargetMeasure
    link: GoalLink
    proposal: ChangeProposal
    concern: Endorsement
    item: WorkItem
    measure: Measure
    observation: Observation
    source: DataSource
    hypothesis: Hypothesis  # concluded, with an experiment, a result snapshot and a decision
    experiment: Experiment
    snapshot: ResultSnapshot
    decision: Decision
    job: Job  # a finished measure refresh


VISION_SECRETS = (
    "Alpha Secret Product",
    "Alpha secret goal",
    "Alpha secret work",
    "Alpha secret measure",
    "Alpha secret source",
    "Alpha secret hypothesis",
)


def populate_vision(owner: Persona, stakeholder: Persona) -> VisionA:
    m, u = owner.membership, owner.user
    assert m is not None and stakeholder.membership is not None
    team = vision.create_team(m, u, "Alpha Team")
    product = vision.create_product(m, u, name=VISION_SECRETS[0], owner_id=u.pk, team_ids=[team.pk])
    goal = vision.create_goal(
        m,
        u,
        product_id=product.pk,
        title=VISION_SECRETS[1],
        owner_id=u.pk,
        status=Goal.Status.ACTIVE,
        targets=[{"name": "Weekly active teams", "baseline": 10, "target": 40}],
    )
    child = vision.create_goal(m, u, product_id=product.pk, parent_id=goal.pk, title="Alpha child goal")
    org_goal = vision.create_goal(m, u, title="Alpha organisation goal", owner_id=u.pk)
    target = goal.targets.get()
    vision.record_observation(m, u, target.pk, 20)
    link = vision.link_goals(m, u, goal.pk, org_goal.pk, GoalLink.Kind.ALIGNS)
    vision.check_in(m, u, goal.pk, status="on_track", confidence=7)
    vision.add_comment(stakeholder.membership, stakeholder.user, goal.pk, "Looks right to me")
    proposal = vision.propose_change(
        stakeholder.membership, stakeholder.user, goal.pk, {"title": "Alpha goal, reworded"}
    )
    concern = vision.raise_concern(stakeholder.membership, stakeholder.user, goal.pk, "Too ambitious for Q3")
    vision.endorse(stakeholder.membership, stakeholder.user, goal.pk)
    item = vision.create_work_item(m, u, product.pk, title=VISION_SECRETS[2], external_key="ALPHA-1")
    source = value_sources.create_data_source(
        m, u, name=VISION_SECRETS[4], kind="duckdb", config={"path": ""}
    )
    measure = value.create_measure(m, u, name=VISION_SECRETS[3], kva=KVA.CURRENT_VALUE, product_id=product.pk)
    observation = value.add_observation(m, u, measure.pk, 42, note="Alpha secret note")
    value.add_investment(m, u, product.pk, period_start="2026-01-01", period_end="2026-03-31", amount=1000)
    value.set_value_measure(m, u, product.pk, measure.pk)
    hypothesis = validation.create_hypothesis(
        m,
        u,
        product.pk,
        title=VISION_SECRETS[5],
        goal_id=goal.pk,
        metric_name="Downloads",
        baseline=20,
        target=30,
    )
    validation.move_hypothesis(m, u, hypothesis.pk, "ready")
    experiment = validation.create_experiment(
        m,
        u,
        hypothesis.pk,
        name="Alpha experiment",
        kind="ab",
        variations=[{"name": "control", "allocation": 0.5}, {"name": "b", "allocation": 0.5}],
        metrics=[{"role": "primary", "name": "Downloads"}],
    )
    validation.move_hypothesis(m, u, hypothesis.pk, "testing")
    snapshot = validation.store_snapshot(experiment, method="frequentist", inputs={}, results={"n": 1})
    decision = validation.conclude(
        m, u, hypothesis.pk, outcome="validated", decision="persevere", learning="Alpha secret learning"
    )
    job = Job.objects.create(
        organisation=m.organisation,
        kind="measure.refresh",
        status="succeeded",
        created_by=u,
        params={"measure_id": measure.pk},
        result={"summary": "Alpha secret job result"},
    )
    return VisionA(
        team,
        product,
        goal,
        child,
        org_goal,
        target,
        link,
        proposal,
        concern,
        item,
        measure,
        observation,
        source,
        hypothesis,
        experiment,
        snapshot,
        decision,
        job,
    )


@pytest.fixture
def world(org_a: Organisation, owner: Persona, admin: Persona, member: Persona, stakeholder: Persona) -> OrgA:
    assert owner.membership is not None and member.membership is not None
    invitation, link = org_services.invite(owner.membership, owner.user, INVITEE_EMAIL, Role.MEMBER)
    raw_invitation = link.rstrip("/").rsplit("/", 1)[-1]
    mail.outbox.clear()
    users = [m.user for m in Membership.objects.filter(organisation=org_a).select_related("user")]
    token = APIToken.objects.get(user=owner.user, scope=APIToken.Scope.READ_WRITE)
    secrets = [ORG_A_NAME, f"/o/{ORG_A_SLUG}/", INVITEE_EMAIL, token.prefix, *(u.email for u in users)]
    secrets += VISION_SECRETS
    objects = populate_vision(owner, stakeholder)
    engagement = populate_engagement(owner, stakeholder, objects.goal, objects.product)
    mail.outbox.clear()  # the queued digest was sent while populating
    delivery = populate_delivery(owner, objects.product)
    secrets += ENGAGEMENT_SECRETS + DELIVERY_SECRETS
    return OrgA(
        org_a,
        users,
        member.membership,
        invitation,
        raw_invitation,
        token,
        objects,
        engagement,
        delivery,
        secrets,
    )


def org_a_state(world: OrgA) -> dict[str, Any]:
    """Everything about organisation A that a successful attack would change."""
    org = Organisation.objects.get(pk=world.org.pk)
    user_ids = [u.pk for u in world.users]
    return {
        "organisation": (org.name, org.slug, org.version),
        "memberships": sorted(
            Membership.objects.filter(organisation=org).values_list("id", "user_id", "role")
        ),
        "invitations": sorted(
            Invitation.objects.filter(organisation=org).values_list(
                "id", "email", "role", "revoked_at", "accepted_at", "accepted_by_id"
            )
        ),
        "tokens": sorted(
            APIToken.objects.filter(user_id__in=user_ids).values_list("id", "user_id", "scope", "revoked_at")
        ),
        "users": sorted(
            User.objects.filter(pk__in=user_ids).values_list("id", "email", "password", "is_active")
        ),
        "history": sorted(HistoryEntry.objects.filter(organisation=org).values_list("id", flat=True)),
        **vision_state(org),
        **engagement_state(org),
        **delivery_state(org),
    }


def vision_state(org: Organisation) -> dict[str, Any]:
    """Every Vision row of the organisation, field by field."""
    by_org = {
        "teams": Team.objects.filter(organisation=org),
        "products": Product.objects.filter(organisation=org),
        "goals": Goal.objects.filter(organisation=org),
        "links": GoalLink.objects.filter(organisation=org),
        "work_items": WorkItem.objects.filter(organisation=org),
        "targets": TargetMeasure.objects.filter(goal__organisation=org),
        "observations": TargetObservation.objects.filter(target_measure__goal__organisation=org),
        "checkins": CheckIn.objects.filter(goal__organisation=org),
        "comments": Comment.objects.filter(goal__organisation=org),
        "proposals": ChangeProposal.objects.filter(goal__organisation=org),
        "endorsements": Endorsement.objects.filter(goal__organisation=org),
        "measures": Measure.objects.filter(organisation=org),
        "observations_v": Observation.objects.filter(measure__organisation=org),
        "batches": ObservationBatch.objects.filter(organisation=org),
        "data_sources": DataSource.objects.filter(organisation=org),
        "investments": Investment.objects.filter(organisation=org),
        "value_settings": ValueSettings.objects.filter(product__organisation=org),
        "catalogue": CatalogueMeasure.objects.filter(organisation=org),
        "hypotheses": Hypothesis.objects.filter(organisation=org),
        "experiments": Experiment.objects.filter(hypothesis__organisation=org),
        "snapshots": ResultSnapshot.objects.filter(experiment__hypothesis__organisation=org),
        "decisions": Decision.objects.filter(hypothesis__organisation=org),
    }
    state: dict[str, Any] = {
        name: sorted(map(repr, qs.order_by("pk").values())) for name, qs in by_org.items()
    }
    state["product_teams"] = sorted(
        Product.teams.through.objects.filter(product__organisation=org).values_list("product_id", "team_id")
    )
    return state


def cross_organisation_references() -> list[str]:
    """Rows of one organisation that point at another organisation's objects (must be none)."""
    checks = {
        "goal parent": Goal.objects.exclude(parent__isnull=True).exclude(
            parent__organisation=F("organisation")
        ),
        "goal product": Goal.objects.exclude(product__isnull=True).exclude(
            product__organisation=F("organisation")
        ),
        "link target": GoalLink.objects.exclude(target__organisation=F("organisation")),
        "link source": GoalLink.objects.exclude(source__organisation=F("organisation")),
        "work item goal": WorkItem.objects.exclude(goal__isnull=True).exclude(
            goal__organisation=F("organisation")
        ),
        "work item team": WorkItem.objects.exclude(team__isnull=True).exclude(
            team__organisation=F("organisation")
        ),
        "product team": Product.teams.through.objects.exclude(team__organisation=F("product__organisation")),
        "product owner": Product.objects.exclude(owner__isnull=True).exclude(
            owner__memberships__organisation=F("organisation")
        ),
        "measure product": Measure.objects.exclude(product__isnull=True).exclude(
            product__organisation=F("organisation")
        ),
        "measure source": Measure.objects.exclude(data_source__isnull=True).exclude(
            data_source__organisation=F("organisation")
        ),
        "observation batch": Observation.objects.exclude(batch__isnull=True).exclude(
            batch__organisation=F("measure__organisation")
        ),
        "investment product": Investment.objects.exclude(product__organisation=F("organisation")),
        "investment goal": Investment.objects.exclude(goal__isnull=True).exclude(
            goal__organisation=F("organisation")
        ),
        "value measure": ValueSettings.objects.exclude(value_measure__isnull=True).exclude(
            value_measure__organisation=F("product__organisation")
        ),
        "target measure": TargetMeasure.objects.exclude(measure__isnull=True).exclude(
            measure__organisation=F("goal__organisation")
        ),
        "goal owner": Goal.objects.exclude(owner__isnull=True).exclude(
            owner__memberships__organisation=F("organisation")
        ),
    }
    checks |= engagement_cross_references() | delivery_cross_references()
    return [f"{name}: {list(qs.values_list('pk', flat=True))}" for name, qs in checks.items() if qs.exists()]


def leaked(text: str, secrets: list[str], allowed: frozenset[str] = frozenset()) -> list[str]:
    return [s for s in secrets if s not in allowed and s.lower() in text.lower()]


def body_and_location(response: Response) -> str:
    return response.content.decode(errors="replace") + "\n" + response.headers.get("Location", "")


def signed_in(persona: Persona) -> Client:
    """A fresh signed-in browser: a POST to the logout route must not sign out the rest of the walk."""
    client = Client()
    client.force_login(persona.user)
    return client


# --- the web walk -----------------------------------------------------------------------------


@dataclass
class WebRoute:
    name: str  # "namespace:name", or the route itself when unnamed
    route: str  # e.g. "o/<slug:org_slug>/members/<int:member_id>/role/"
    kwargs: list[str]

    @property
    def scoped(self) -> bool:
        return bool(self.kwargs) and self.name not in BEARER_LINK_ROUTES


KWARG_RE = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")


def _walk(patterns: list[Any], prefix: str, namespace: str) -> Iterator[WebRoute]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            route = prefix + _route_of(entry.pattern, prefix)
            if route.startswith(API_PREFIX) or route.startswith(settings.STATIC_URL.lstrip("/")):
                continue  # the API is walked through its OpenAPI schema; static files hold no data
            ns = ":".join(filter(None, [namespace, entry.namespace or ""]))
            yield from _walk(entry.url_patterns, route, ns)
        elif isinstance(entry, URLPattern):
            route = prefix + _route_of(entry.pattern, prefix)
            name = f"{namespace}:{entry.name}" if namespace and entry.name else (entry.name or route)
            yield WebRoute(name, route, [m["name"] for m in KWARG_RE.finditer(route)])
        else:  # pragma: no cover - Django has only these two kinds
            pytest.fail(f"Unknown URL entry {entry!r} under {prefix!r}; teach the walk about it.")


def _route_of(pattern: Any, prefix: str) -> str:
    if not isinstance(pattern, RoutePattern):
        pytest.fail(
            f"The walk builds URLs from path() routes only; {pattern!r} under {prefix!r} is a regex. "
            "Use path(), or teach tests/test_isolation.py to fill regex groups."
        )
    return str(pattern)


def web_routes() -> list[WebRoute]:
    return list(_walk(get_resolver().url_patterns, "", ""))


def web_kwargs(world: OrgA, org_slug: str = ORG_A_SLUG) -> dict[str, str]:
    """Every URL parameter the web routes use, pointing at organisation A's objects.

    A new route with a parameter not listed here makes the walk fail: add the parameter here with a
    value that points into organisation A (and to OBJECT_KWARGS if it names an organisation's object).
    """
    return {
        "org_slug": org_slug,
        "member_id": str(world.member.pk),
        "invitation_id": str(world.invitation.pk),
        "token_id": str(world.token.pk),
        "token": world.invitation_token,  # the invitation link; see BEARER_LINK_ROUTES
        "uidb64": urlsafe_base64_encode(force_bytes(world.users[0].pk)),
        **vision_ids(world.vision),
        **engagement_ids(world.engagement),
        **delivery_ids(world.delivery),
    }


VISION_ID_NAMES = (
    "hypothesis_id",
    "experiment_id",
    "decision_id",
    "snapshot_id",
    "measure_id",
    "observation_id",
    "source_id",
    "product_id",
    "goal_id",
    "target_id",
    "proposal_id",
    "concern_id",
    "link_id",
    "item_id",
    "work_item_id",
    "job_id",
)


def vision_ids(v: VisionA) -> dict[str, str]:
    return {
        "product_id": str(v.product.pk),
        "goal_id": str(v.goal.pk),
        "target_id": str(v.target.pk),
        "proposal_id": str(v.proposal.pk),
        "concern_id": str(v.concern.pk),
        "link_id": str(v.link.pk),
        "item_id": str(v.item.pk),
        "work_item_id": str(v.item.pk),
        "measure_id": str(v.measure.pk),
        "observation_id": str(v.observation.pk),
        "source_id": str(v.source.pk),
        "hypothesis_id": str(v.hypothesis.pk),
        "experiment_id": str(v.experiment.pk),
        "decision_id": str(v.decision.pk),
        "snapshot_id": str(v.snapshot.pk),
        "job_id": str(v.job.pk),
    }


# Per-route values that differ from web_kwargs (the same parameter name means different things).
WEB_KWARG_OVERRIDES: dict[str, dict[str, str]] = {
    # An org-A user's uid with a reset token that is not valid (a valid one would be a bearer link).
    "accounts:password_reset_confirm": {"token": "bogus-reset-token"},
    "accounts:sign_in_link": {"token": "bogus-sign-in-link"},
}

ABSENT_KWARGS = {"org_slug": ABSENT_SLUG} | {name: str(ABSENT_ID) for name in OBJECT_KWARGS - {"org_slug"}}


def build_url(route: WebRoute, values: dict[str, str]) -> str:
    missing = [k for k in route.kwargs if k not in values]
    if missing:
        pytest.fail(
            f"Route {route.name!r} ({route.route}) has URL parameter(s) {missing} that the isolation walk "
            "does not know. Add them to web_kwargs() in tests/test_isolation.py with a value that points "
            "at an object of organisation A (and to OBJECT_KWARGS if they name an organisation's object), "
            "so the new route is checked for cross-organisation access."
        )
    url = "/" + KWARG_RE.sub(lambda m: values[m["name"]], route.route)
    match = resolve(url)
    assert match.route == route.route, f"{url} resolved to {match.route}, not {route.route}"
    return url


def test_the_web_walk_finds_every_route_and_can_fill_their_parameters(world: OrgA) -> None:
    routes = web_routes()
    assert len(routes) >= MIN_WEB_ROUTES, [r.route for r in routes]
    assert sum(r.scoped for r in routes) >= MIN_WEB_SCOPED_ROUTES, [r.route for r in routes if r.scoped]
    assert not [r for r in routes if r.route.startswith(API_PREFIX)]
    for route in routes:
        build_url(route, {**web_kwargs(world), **WEB_KWARG_OVERRIDES.get(route.name, {})})
    unknown = {k for r in routes if r.scoped for k in r.kwargs} - OBJECT_KWARGS
    assert not unknown, (
        f"Scoped routes use parameters {unknown} not in OBJECT_KWARGS; add them there (and to web_kwargs)."
    )


def _assert_outsider_cannot_reach(
    route: WebRoute, url: str, absent_url: str, outsider: Persona, world: OrgA
) -> list[str]:
    problems = []
    for method, headers in WEB_REQUEST_VARIANTS:
        data = WEB_POST_DATA if method == "post" else None
        what = f"{method.upper()}{' (htmx)' if headers else ''} {url} ({route.name})"
        response = getattr(signed_in(outsider), method)(url, data, headers=headers)
        absent = getattr(signed_in(outsider), method)(absent_url, data, headers=headers)
        # 404 as if it did not exist. A 405 is tolerated only for a method the route never accepts,
        # i.e. when an object that does not exist gets the very same 405: it reveals nothing.
        if response.status_code not in (404, 405) or response.status_code != absent.status_code:
            problems.append(
                f"{what} answered {response.status_code} {response.headers.get('Location', '')}; an object "
                f"that does not exist answers {absent.status_code}. It must answer 404 as if organisation "
                "A's object did not exist."
            )
        if found := leaked(body_and_location(response), world.secrets):
            problems.append(f"{what} revealed {found}")
    return problems


def test_an_outsider_gets_404_from_every_web_route_into_another_organisation(
    world: OrgA, outsider: Persona
) -> None:
    before = org_a_state(world)
    problems: list[str] = []
    walked = 0
    for route in web_routes():
        values = {**web_kwargs(world), **WEB_KWARG_OVERRIDES.get(route.name, {})}
        url = build_url(route, values)
        if route.scoped:
            absent_url = build_url(route, {**values, **ABSENT_KWARGS})
            problems += _assert_outsider_cannot_reach(route, url, absent_url, outsider, world)
            walked += 1
            continue
        methods = ["get"] if route.name in BEARER_LINK_SKIP_POST else ["get", "post"]
        allowed = BEARER_LINK_MAY_SHOW.get(route.name, frozenset())
        for method in methods:
            data = WEB_POST_DATA if method == "post" else None
            response = getattr(signed_in(outsider), method)(url, data)
            if response.status_code >= 500:
                problems.append(f"{method.upper()} {url} ({route.name}) failed with {response.status_code}")
            if found := leaked(body_and_location(response), world.secrets, allowed):
                problems.append(f"{method.upper()} {url} ({route.name}) revealed {found}")
    assert walked >= MIN_WEB_SCOPED_ROUTES
    assert not problems, "\n".join(problems)
    assert org_a_state(world) == before, "the outsider's requests changed organisation A"
    assert not [m for m in mail.outbox if INVITEE_EMAIL in m.to or "Alpha" in m.subject]


def test_an_outsider_cannot_reach_another_organisations_objects_through_their_own_organisation(
    world: OrgA, outsider: Persona
) -> None:
    """The classic IDOR: /o/<my org, where I am owner>/members/<a member of another org>/..."""
    before = org_a_state(world)
    problems: list[str] = []
    walked = 0
    for route in web_routes():
        if not route.scoped or set(route.kwargs) <= {"org_slug"} or "org_slug" not in route.kwargs:
            continue
        values = web_kwargs(world, org_slug=ORG_B_SLUG)
        url = build_url(route, values)
        absent_url = build_url(route, {**values, **ABSENT_KWARGS, "org_slug": ORG_B_SLUG})
        problems += _assert_outsider_cannot_reach(route, url, absent_url, outsider, world)
        walked += 1
    assert walked >= 3  # change role, remove member, revoke invitation
    assert not problems, "\n".join(problems)
    assert org_a_state(world) == before, "the outsider's requests changed organisation A"


def test_an_invitation_link_holder_sees_only_the_invitation(world: OrgA, outsider: Persona) -> None:
    # The explicit exception: the link is meant for whoever holds it, so it shows the organisation's
    # name, but nothing else of it (no members, no addresses inside it).
    url = reverse("orgs:accept_invitation", args=[world.invitation_token])
    for client in (signed_in(outsider), Client()):
        response = client.get(url)
        assert response.status_code == 200
        assert ORG_A_NAME in response.content.decode()
        found = leaked(
            response.content.decode(), world.secrets, BEARER_LINK_MAY_SHOW["orgs:accept_invitation"]
        )
        assert not found, f"the invitation page revealed {found}"


def test_a_forged_or_revoked_invitation_link_reveals_nothing(
    world: OrgA, owner: Persona, outsider: Persona
) -> None:
    assert owner.membership is not None
    forged = signed_in(outsider).get(reverse("orgs:accept_invitation", args=["forged-token"]))
    assert forged.status_code == 404
    assert not leaked(forged.content.decode(), world.secrets)

    org_services.revoke_invitation(owner.membership, owner.user, world.invitation.pk)
    before = org_a_state(world)
    url = reverse("orgs:accept_invitation", args=[world.invitation_token])
    for method in ("get", "post"):
        response = getattr(signed_in(outsider), method)(url)
        assert response.status_code == 404, method
        assert not leaked(response.content.decode(), world.secrets), method
    assert org_a_state(world) == before


def test_an_anonymous_visitor_is_sent_to_sign_in_by_every_organisation_page(world: OrgA) -> None:
    login = reverse(settings.LOGIN_URL)
    problems: list[str] = []
    checked = 0
    for route in web_routes():
        url = build_url(route, {**web_kwargs(world), **WEB_KWARG_OVERRIDES.get(route.name, {})})
        methods = ["get"] if route.name in BEARER_LINK_SKIP_POST else ["get", "post"]
        for method in methods:
            response = getattr(Client(), method)(url, WEB_POST_DATA if method == "post" else None)
            body = response.content.decode(errors="replace")
            if route.scoped:
                checked += 1
                expected = f"{login}?next={quote(url)}"
                if response.status_code != 302 or response.headers.get("Location") != expected:
                    problems.append(
                        f"anonymous {method.upper()} {url} ({route.name}) answered {response.status_code} "
                        f"{response.headers.get('Location', '')}, not a redirect to {expected}"
                    )
            elif response.status_code >= 500:
                problems.append(
                    f"anonymous {method.upper()} {url} ({route.name}) failed: {response.status_code}"
                )
            allowed = BEARER_LINK_MAY_SHOW.get(route.name, frozenset())
            if found := leaked(body, world.secrets, allowed):
                problems.append(f"anonymous {method.upper()} {url} ({route.name}) revealed {found}")
    assert checked >= 2 * MIN_WEB_SCOPED_ROUTES
    assert not problems, "\n".join(problems)


# --- the API walk -----------------------------------------------------------------------------


@dataclass
class Operation:
    method: str  # lower case, as in the schema
    path: str  # e.g. "/api/v1/orgs/{slug}/members/{member_id}"
    spec: dict[str, Any]

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


@functools.cache
def api_schema() -> dict[str, Any]:
    """The OpenAPI schema (built once: building it for every request made the walk slow)."""
    schema: dict[str, Any] = api.get_openapi_schema()
    return schema


def api_operations() -> list[Operation]:
    return [
        Operation(method, path, spec)
        for path, item in api_schema()["paths"].items()
        for method, spec in item.items()
        if method in HTTP_METHODS
    ]


def api_path_values(world: OrgA, slug: str = ORG_A_SLUG) -> dict[str, str]:
    """Every API path parameter, pointing at organisation A's objects.

    A new operation with a path parameter not listed here makes the walk fail: add it with a value
    that points at an object of organisation A (or of one of its users).
    """
    return {
        "slug": slug,
        "member_id": str(world.member.pk),
        "invitation_id": str(world.invitation.pk),
        "token_id": str(world.token.pk),
        **vision_ids(world.vision),
        **engagement_ids(world.engagement),
        **delivery_ids(world.delivery),
    }


ABSENT_PATH_VALUES = {
    "slug": ABSENT_SLUG,
    "member_id": str(ABSENT_ID),
    "invitation_id": str(ABSENT_ID),
    "token_id": str(ABSENT_ID),
} | {name: str(ABSENT_ID) for name in (*VISION_ID_NAMES, *ENGAGEMENT_ID_NAMES, *DELIVERY_ID_NAMES)}


def example_value(
    schema: dict[str, Any], components: dict[str, Any], name: str = "", refs: dict[str, Any] | None = None
) -> Any:
    """A minimal value that satisfies a JSON schema, so input validation (422) cannot mask access control.

    Objects get every property, not only the required ones, and enums their first choice (the role
    "owner"): if an access check were missing, the request would really change something.
    """
    if refs and name in refs:
        return refs[name]
    if "$ref" in schema:
        return example_value(components[schema["$ref"].rsplit("/", 1)[-1]], components, name, refs)
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema:
            options = [s for s in schema[combinator] if s.get("type") != "null"] or schema[combinator]
            return example_value(options[0], components, name, refs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {key: example_value(sub, components, key, refs) for key, sub in props.items()}
    if kind == "array":
        item = example_value(schema.get("items", {}), components, name, refs)
        return [item] * max(schema.get("minItems", 0), 0)
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2030-01-01T00:00:00Z"
        if schema.get("format") == "date":
            return "2030-01-01"
        value = "pwned@b.example" if "email" in name else "pwned-by-b"
        value = value.ljust(schema.get("minLength", 0), "x")
        return value[: schema.get("maxLength", len(value))]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return float(max(schema.get("minimum", 1), 1))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    pytest.fail(f"Cannot build an example for {name!r}: {schema}; teach example_value() this schema.")


@dataclass
class Request:
    method: str
    url: str
    body: Any  # None: no body
    multipart: bool = False  # body is form fields and files, not JSON


# An upload for multipart operations (file imports): a valid CSV naming organisation A's measure, so a
# missing access check would import into A rather than be stopped by a parse error.
UPLOAD_CSV = b"measure,observed_at,value,note\nAlpha secret measure,2026-01-05,13,pwned\n"


def build_request(op: Operation, values: dict[str, str], refs: dict[str, Any] | None = None) -> Request:
    missing = [p for p in op.path_params if p not in values]
    if missing:
        pytest.fail(
            f"API operation {op} has path parameter(s) {missing} that the isolation walk does not know. "
            "Add them to api_path_values() in tests/test_isolation.py with a value that points at an "
            "object of organisation A, so the new operation is checked for cross-organisation access."
        )
    components = api_schema().get("components", {}).get("schemas", {})
    url = re.sub(r"{(\w+)}", lambda m: quote(values[m[1]], safe=""), op.path)
    query = {
        p["name"]: example_value(p.get("schema", {}), components, p["name"])
        for p in op.spec.get("parameters", [])
        if p.get("in") == "query" and p.get("required")
    }
    if query:
        url += "?" + urlencode(query)
    body = None
    content = op.spec.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content:
        props = content["multipart/form-data"]["schema"].get("properties", {})
        fields: dict[str, Any] = {}
        for name, prop in props.items():
            options = [prop, *prop.get("anyOf", [])]
            if any(o.get("format") == "binary" for o in options):
                fields[name] = SimpleUploadedFile(f"{name}.csv", UPLOAD_CSV, "text/csv")
            else:  # a plain form field next to the file (e.g. which importer reads it)
                fields[name] = str(example_value(prop, components, name, refs))
        return Request(op.method, url, fields, multipart=True)
    if content:
        assert "application/json" in content, f"{op}: the walk only sends JSON or multipart bodies"
        body = example_value(content["application/json"]["schema"], components, refs=refs)
    return Request(op.method, url, body)


def send(client: Client, request: Request) -> Response:
    call = getattr(client, request.method)
    if request.body is None:
        response: Response = call(request.url)
    elif request.multipart:
        for upload in request.body.values():
            if isinstance(upload, SimpleUploadedFile):
                upload.seek(0)
        response = call(request.url, request.body)
    else:
        response = call(request.url, json.dumps(request.body), content_type="application/json")
    return response


def token_client(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _assert_api_indistinguishable_from_absent(
    op: Operation, values: dict[str, str], absent_values: dict[str, str], raw_token: str, world: OrgA
) -> list[str]:
    request = build_request(op, values)
    response = send(token_client(raw_token), request)
    absent = send(token_client(raw_token), build_request(op, absent_values))
    problems = []
    if response.status_code != 404:
        hint = (
            " (422: the walk's generated body was refused; fix example_value(), a 404 must not be"
            " masked by validation)"
            if response.status_code == 422
            else ""
        )
        problems.append(
            f"{op} as {request.url} with body {request.body} answered {response.status_code}"
            f"{hint}: {response.content[:200]!r}; it must answer 404 as if the object did not exist."
        )
    elif response.content != absent.content:
        problems.append(
            f"{op} answered {response.content!r} for organisation A's object but {absent.content!r} for "
            "one that does not exist; the two must be indistinguishable."
        )
    if response.headers.get("Content-Type", "").split(";")[0] != "application/json":
        problems.append(f"{op} answered {response.headers.get('Content-Type')}, not JSON")
    if found := leaked(body_and_location(response), world.secrets):
        problems.append(f"{op} revealed {found}")
    return problems


def test_the_api_walk_covers_every_operation_and_can_fill_their_parameters(world: OrgA) -> None:
    ops = api_operations()
    assert len(ops) >= MIN_API_OPERATIONS, [str(o) for o in ops]
    assert sum(bool(o.path_params) for o in ops) >= MIN_API_SCOPED_OPERATIONS
    for op in ops:
        build_request(op, api_path_values(world))
    # The schema describes exactly what is served.
    served = Client().get(f"/{API_PREFIX}openapi.json")
    assert served.status_code == 200
    assert set(served.json()["paths"]) == set(api_schema()["paths"])


def test_an_outsider_gets_404_from_every_api_operation_on_another_organisation(
    world: OrgA, outsider: Persona
) -> None:
    before = org_a_state(world)
    problems: list[str] = []
    scoped = unscoped = 0
    for op in api_operations():
        if op.path_params:
            scoped += 1
            problems += _assert_api_indistinguishable_from_absent(
                op, api_path_values(world), ABSENT_PATH_VALUES, outsider.token, world
            )
            if op.method == "get":  # a read token is refused the same way
                problems += _assert_api_indistinguishable_from_absent(
                    op, api_path_values(world), ABSENT_PATH_VALUES, outsider.read_token, world
                )
        else:
            unscoped += 1
            request = build_request(op, {})
            response = send(token_client(outsider.token), request)
            if response.status_code >= 500 or response.status_code == 422:
                problems.append(
                    f"{op} with body {request.body} answered {response.status_code}: "
                    f"{response.content[:200]!r}"
                )
            if found := leaked(body_and_location(response), world.secrets):
                problems.append(f"{op} revealed {found}")
    assert scoped >= MIN_API_SCOPED_OPERATIONS
    assert scoped + unscoped >= MIN_API_OPERATIONS
    assert not problems, "\n".join(problems)
    assert org_a_state(world) == before, "the outsider's API calls changed organisation A"
    assert not [m for m in mail.outbox if "Alpha" in m.subject]


def test_an_outsider_cannot_reach_another_organisations_objects_through_their_own_organisation_in_the_api(
    world: OrgA, outsider: Persona
) -> None:
    """/orgs/<my org, where I am owner>/members/<a member of another org>: still 404."""
    before = org_a_state(world)
    problems: list[str] = []
    walked = 0
    for op in api_operations():
        if "slug" not in op.path_params or set(op.path_params) == {"slug"}:
            continue
        walked += 1
        values = api_path_values(world, slug=ORG_B_SLUG)
        problems += _assert_api_indistinguishable_from_absent(
            op, values, {**ABSENT_PATH_VALUES, "slug": ORG_B_SLUG}, outsider.token, world
        )
    assert walked >= 3  # change role, remove member, revoke invitation
    assert not problems, "\n".join(problems)
    assert org_a_state(world) == before, "the outsider's API calls changed organisation A"


PUBLIC_API_DOCUMENTS = ("openapi.json", "docs")


@pytest.mark.parametrize("authorization", [None, "Bearer tn_not-a-real-token", "Basic b3duZXI6cHc="])
def test_every_api_operation_answers_401_json_without_a_valid_token(
    world: OrgA, authorization: str | None
) -> None:
    before = org_a_state(world)
    problems: list[str] = []
    ops = api_operations()
    for op in ops:
        request = build_request(op, api_path_values(world))
        client = Client(HTTP_AUTHORIZATION=authorization) if authorization else Client()
        response = send(client, request)
        content_type = response.headers.get("Content-Type", "").split(";")[0]
        if response.status_code != 401 or content_type != "application/json":
            problems.append(f"{op} answered {response.status_code} {content_type}, not 401 JSON")
        elif not response.json().get("detail"):
            problems.append(f"{op} answered 401 without a detail: {response.content!r}")
        if found := leaked(body_and_location(response), world.secrets):
            problems.append(f"{op} revealed {found}")
    assert len(ops) >= MIN_API_OPERATIONS
    assert not problems, "\n".join(problems)
    assert org_a_state(world) == before
    # Only the API's description is public, and it holds no data.
    for document in PUBLIC_API_DOCUMENTS:
        response = Client().get(f"/{API_PREFIX}{document}")
        assert response.status_code == 200, document
        assert not leaked(response.content.decode(), world.secrets), document


def test_the_api_ignores_a_signed_in_browser_session(world: OrgA, owner: Persona) -> None:
    # Session cookies are sent by browsers automatically; accepting them would make the API open to
    # cross-site request forgery. Only a token authenticates.
    before = org_a_state(world)
    for op in api_operations():
        response = send(owner.client, build_request(op, api_path_values(world)))
        assert response.status_code == 401, f"{op} accepted a session cookie: {response.status_code}"
    assert org_a_state(world) == before


def test_an_outsider_cannot_pull_another_organisations_objects_into_their_own_through_request_bodies(
    world: OrgA, outsider: Persona
) -> None:
    """Object ids in a body (parent, product, goal, target, team, owner) are checked too: an outsider who
    owns organisation B and sends B's own URLs with A's ids in the body changes nothing of A, learns
    nothing of A, and never makes B's objects point into A."""
    assert outsider.membership is not None
    b = outsider.membership
    product_b = vision.create_product(b, outsider.user, name="Bravo product", owner_id=outsider.user.pk)
    goal_b = vision.create_goal(
        b,
        outsider.user,
        product_id=product_b.pk,
        title="Bravo goal",
        owner_id=outsider.user.pk,
        status=Goal.Status.ACTIVE,
        targets=[{"name": "Bravo measure", "baseline": 1, "target": 2}],
    )
    org_goal_b = vision.create_goal(b, outsider.user, title="Bravo organisation goal")
    link_b = vision.link_goals(b, outsider.user, goal_b.pk, org_goal_b.pk, GoalLink.Kind.ALIGNS)
    proposal_b = vision.propose_change(b, outsider.user, goal_b.pk, {"title": "Bravo goal, reworded"})
    concern_b = vision.raise_concern(b, outsider.user, goal_b.pk, "Bravo concern")
    item_b = vision.create_work_item(b, outsider.user, product_b.pk, title="Bravo work")
    measure_b = value.create_measure(
        b, outsider.user, name="Bravo measure", kva=KVA.CURRENT_VALUE, product_id=product_b.pk
    )
    observation_b = value.add_observation(b, outsider.user, measure_b.pk, 1)
    source_b = value_sources.create_data_source(
        b, outsider.user, name="Bravo source", kind="duckdb", config={"path": ""}
    )
    hypothesis_b = validation.create_hypothesis(b, outsider.user, product_b.pk, title="Bravo hypothesis")
    experiment_b = validation.create_experiment(
        b, outsider.user, hypothesis_b.pk, name="Bravo experiment", kind="qualitative"
    )
    b_values = {
        "slug": ORG_B_SLUG,
        "product_id": str(product_b.pk),
        "goal_id": str(goal_b.pk),
        "target_id": str(goal_b.targets.get().pk),
        "proposal_id": str(proposal_b.pk),
        "concern_id": str(concern_b.pk),
        "link_id": str(link_b.pk),
        "item_id": str(item_b.pk),
        "work_item_id": str(item_b.pk),
        "measure_id": str(measure_b.pk),
        "observation_id": str(observation_b.pk),
        "source_id": str(source_b.pk),
        "hypothesis_id": str(hypothesis_b.pk),
        "experiment_id": str(experiment_b.pk),
        "snapshot_id": str(ABSENT_ID),
        "decision_id": str(ABSENT_ID),
        "member_id": str(b.pk),
        "invitation_id": str(ABSENT_ID),
        "token_id": str(ABSENT_ID),
        **populate_engagement_b(outsider, product_b),
        **delivery_ids(populate_delivery(outsider, product_b, name="Bravo source")),
    }
    v = world.vision
    a_owner = next(u for u in world.users if u.email == "owner@a.example")
    refs: dict[str, Any] = {
        "product": v.product.pk,
        "parent": v.child.pk,
        "goal": v.goal.pk,
        "target": v.org_goal.pk,
        "team": v.team.pk,
        "teams": [v.team.pk],
        "owner": a_owner.pk,
        "owner_email": a_owner.email,
        "measure": v.measure.pk,
        "measure_id": v.measure.pk,
        "value_measure": v.measure.pk,
        "data_source": v.source.pk,
        "hypothesis": v.hypothesis.pk,
        "experiment": v.experiment.pk,
        "catalogue": CatalogueMeasure.objects.filter(organisation=world.org)
        .values_list("pk", flat=True)
        .first(),
        "ids": [1, 2, 3],
        **engagement_refs(world.engagement, v.goal, v.product, a_owner.pk),
    }
    before = org_a_state(world)
    problems: list[str] = []
    walked = 0
    for op in api_operations():
        if "slug" not in op.path_params or "requestBody" not in op.spec:
            continue
        walked += 1
        request = build_request(op, b_values, refs)
        response = send(token_client(outsider.token), request)
        if response.status_code >= 500:
            problems.append(f"{op} with {request.body} failed: {response.status_code}")
        if found := leaked(body_and_location(response), world.secrets):
            problems.append(f"{op} with {request.body} revealed {found}")
    assert walked >= 15
    assert not problems, "\n".join(problems)
    assert org_a_state(world) == before, "the outsider's API calls changed organisation A"
    assert not cross_organisation_references()


def test_an_outsider_cannot_link_their_goal_to_another_organisations_measure(
    world: OrgA, outsider: Persona
) -> None:
    """A target of B's goal given A's measure id (on create, update, goal creation, the goal page's
    forms) is refused as "no such measure", the same answer as for an id that does not exist."""
    assert outsider.membership is not None
    b = outsider.membership
    goal_b = vision.create_goal(b, outsider.user, title="Bravo goal", owner_id=outsider.user.pk)
    target_b = vision.add_target(b, outsider.user, goal_b.pk, {"name": "Bravo", "baseline": 0, "target": 1})
    goal_b.refresh_from_db()
    smuggled = world.vision.measure.pk
    client = token_client(outsider.token)
    base = f"/{API_PREFIX}orgs/{ORG_B_SLUG}"
    answers = [
        client.post(
            f"{base}/goals/{goal_b.pk}/targets",
            json.dumps({"baseline": 0, "target": 1, "measure_id": smuggled, "version": goal_b.version}),
            content_type="application/json",
        ),
        client.patch(
            f"{base}/targets/{target_b.pk}",
            json.dumps({"measure_id": smuggled, "version": goal_b.version}),
            content_type="application/json",
        ),
        client.post(
            f"{base}/goals",
            json.dumps(
                {"title": "Smuggler", "targets": [{"baseline": 0, "target": 1, "measure_id": smuggled}]}
            ),
            content_type="application/json",
        ),
    ]
    absent = client.post(
        f"{base}/goals/{goal_b.pk}/targets",
        json.dumps({"baseline": 0, "target": 1, "measure_id": ABSENT_ID, "version": goal_b.version}),
        content_type="application/json",
    )
    for answer in answers:
        assert answer.status_code == 422, answer.content
        assert answer.json()["detail"] == absent.json()["detail"] == "No such measure in this organisation."
        assert not leaked(answer.content.decode(), world.secrets)
    web = outsider.client.post(
        f"/o/{ORG_B_SLUG}/goals/{goal_b.pk}/targets/{target_b.pk}/edit/",
        {"name": "Bravo", "baseline": "0", "target": "1", "direction": "increase", "measure": str(smuggled),
         "version": str(goal_b.version)},
    )  # fmt: skip
    assert web.status_code == 200 and not leaked(web.content.decode(), world.secrets)
    assert not TargetMeasure.objects.filter(goal__organisation=b.organisation, measure__isnull=False).exists()
    assert not cross_organisation_references()


# --- data sources: files and databases ------------------------------------------------------------

ALPHA_FILE_SECRETS = ["alpha-secret-file", "Alpha secret row 4711"]


def _outsider_api(outsider: Persona, method: str, path: str, body: dict[str, Any] | None = None) -> Response:
    client = token_client(outsider.token)
    url = f"/{API_PREFIX}orgs/{ORG_B_SLUG}{path}"
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, json.dumps(body or {}), content_type="application/json")


def test_an_outsider_cannot_reach_another_organisations_files_through_a_data_source(
    world: OrgA, outsider: Persona, settings: Any, tmp_path: Any
) -> None:
    """Organisation A keeps a DuckDB file and a CSV file in its own directory. The owner of B names them
    in every way (absolute, relative, `..`, a link in B's directory, a glob, a read_parquet list, in the
    settings, in the file list and in the query of a SQL measure): every attempt is refused, answers
    with no 5xx, and no answer holds A's file names or rows."""
    import duckdb

    settings.TRUENORTH_DUCKDB_DIRS = [tmp_path / "duckdb"]
    a_dir = value_sources.organisation_directory(world.org)
    assert outsider.membership is not None
    b_dir = value_sources.organisation_directory(outsider.membership.organisation_id)
    conn = duckdb.connect(str(a_dir / "alpha-secret-file.duckdb"))
    conn.execute(
        "CREATE TABLE t AS SELECT DATE '2025-01-01' AS day, 4711.0 AS v, 'Alpha secret row 4711' AS s"
    )
    conn.execute(f"COPY t TO '{a_dir / 'alpha-secret-file.parquet'}' (FORMAT parquet)")
    conn.close()
    (a_dir / "alpha-secret-file.csv").write_text("day,v,s\n2025-01-01,4711,Alpha secret row 4711\n")
    (b_dir / "mine.csv").write_text("day,v\n2025-01-01,1\n")
    (b_dir / "link.csv").symlink_to(a_dir / "alpha-secret-file.csv")
    (b_dir / "link-dir").symlink_to(a_dir, target_is_directory=True)
    secrets = world.secrets + ALPHA_FILE_SECRETS
    relative = f"../{a_dir.name}"

    names = [
        str(a_dir / "alpha-secret-file.duckdb"),
        f"{relative}/alpha-secret-file.duckdb",
        f"{b_dir}/../{a_dir.name}/alpha-secret-file.duckdb",
        "link.csv",
        "link-dir",
        str(a_dir),
    ]
    problems: list[str] = []

    def check(response: Response, what: str, typed: str = "") -> None:
        if response.status_code >= 500:
            problems.append(f"{what}: {response.status_code}")
        if found := leaked(body_and_location(response), secrets, frozenset(s for s in secrets if s in typed)):
            problems.append(f"{what} revealed {found}")

    before = org_a_state(world)
    for name in names:
        for config in ({"path": name, "files": []}, {"path": "", "files": [name]}):
            created = _outsider_api(
                outsider, "post", "/data-sources", {"name": "Peek", "kind": "duckdb", "config": config}
            )
            check(created, f"data source {config}", name)
            if created.status_code != 422:
                problems.append(f"data source {config} was not refused: {created.status_code}")
    own = _outsider_api(
        outsider,
        "post",
        "/data-sources",
        {"name": "Mine", "kind": "duckdb", "config": {"path": "", "files": ["mine.csv"]}},
    )
    assert own.status_code == 201, own.content
    source_id = own.json()["id"]
    queries = [
        f"SELECT day, v FROM read_csv('{a_dir}/alpha-secret-file.csv')",
        f"SELECT day, v FROM read_csv('{relative}/alpha-secret-file.csv')",
        f"SELECT day, v FROM read_csv('{b_dir}/../{a_dir.name}/alpha-secret-file.csv')",
        f"SELECT day, v FROM read_csv('{b_dir}/link.csv')",
        f"SELECT day, v FROM read_csv('{b_dir}/link-dir/*.csv')",
        f"SELECT day, v FROM read_parquet(['{b_dir}/mine.csv', '{a_dir}/alpha-secret-file.parquet'])",
        f"SELECT now(), count(*) FROM glob('{a_dir.parent}/*/*')",
        f"SELECT now(), count(*) FROM glob('{b_dir}/../*/*')",
        f"SELECT day, v FROM read_csv('{a_dir.parent}/*/*.csv')",
    ]
    for number, query in enumerate(queries):
        measure = _outsider_api(
            outsider,
            "post",
            "/measures",
            {
                "name": f"Peek {number}",
                "kva": "current_value",
                "source": "sql",
                "data_source": source_id,
                "query": query,
            },
        )
        check(measure, f"measure with {query}", query)
        if measure.status_code != 201:
            continue
        refreshed = _outsider_api(outsider, "post", f"/measures/{measure.json()['id']}/refresh")
        check(refreshed, f"refresh of {query}", query)
        body = refreshed.json()
        if body.get("status") == "succeeded":
            problems.append(f"{query} ran: {body}")
        check(
            _outsider_api(outsider, "get", f"/measures/{measure.json()['id']}"),
            f"measure page of {query}",
            query,
        )
    check(_outsider_api(outsider, "post", f"/data-sources/{source_id}/test"), "test of B's own source")
    assert not problems, "\n".join(problems)
    assert org_a_state(world) == before


def test_an_outsider_cannot_use_truenorths_own_database_as_a_data_source(
    world: OrgA, outsider: Persona, settings: Any, monkeypatch: Any
) -> None:
    """Every spelling of the server TrueNorth's database lives on is refused: by address unless the
    operator allows private networks, and then by the server's identity after connecting."""
    import uuid

    import psycopg
    from django.db import connection

    pg_url = os.environ.get("TRUENORTH_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
    params = psycopg.conninfo.conninfo_to_dict(pg_url)
    if str(params.get("host")) not in ("127.0.0.1", "localhost") or str(params.get("port") or 5432) != "5432":
        pytest.skip("needs the test PostgreSQL on 127.0.0.1:5432")
    try:
        admin_conn = psycopg.connect(pg_url, autocommit=True, connect_timeout=3)
    except psycopg.Error:
        pytest.skip(f"PostgreSQL is not reachable at {pg_url}")
    if connection.vendor == "postgresql":
        own_db = connection.settings_dict["NAME"]
    else:  # TrueNorth runs on SQLite here: stand the test PostgreSQL database in for its own
        own_db = params["dbname"]

        def stand_in() -> Any:
            with psycopg.connect(pg_url) as conn:
                return value_sources._identity(lambda sql, p: conn.execute(sql, p).fetchone())

        monkeypatch.setattr(postgres_runner, "_own_identity", stand_in)
    role = f"truenorth_probe_{uuid.uuid4().hex[:10]}"
    admin_conn.execute(f"CREATE ROLE {role} LOGIN")
    spellings = [
        "127.0.0.1:5432", "127.0.0.1:05432", "truenorth-probe.invalid/{db}?hostaddr=127.0.0.1",
        "127.0.0.1,127.0.0.1", "[::ffff:127.0.0.1]", "0.0.0.0", "localhost", "2130706433",
    ]  # fmt: skip
    dsns = [
        f"postgres://{role}@{s.format(db=own_db)}" if "{db}" in s else f"postgres://{role}@{s}/{own_db}"
        for s in spellings
    ]
    problems: list[str] = []
    try:
        before = org_a_state(world)
        for allow in (False, True):
            settings.TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS = allow
            for number, dsn in enumerate(dsns):
                created = _outsider_api(
                    outsider,
                    "post",
                    "/data-sources",
                    {"name": f"Own {allow} {number}", "kind": "postgres", "config": {"dsn": dsn}},
                )
                if created.status_code == 422:
                    if allow or "private" not in created.content.decode():
                        problems.append(f"{dsn} (allow={allow}) refused oddly: {created.content!r}")
                    continue
                tested = _outsider_api(outsider, "post", f"/data-sources/{created.json()['id']}/test")
                text = tested.content.decode()
                expected = "own database" if allow else "private"
                if tested.status_code != 200 or tested.json()["ok"] or expected not in text:
                    problems.append(f"{dsn} (allow={allow}) was not refused: {text}")
                if found := leaked(text, world.secrets):
                    problems.append(f"{dsn} revealed {found}")
        assert not problems, "\n".join(problems)
        assert org_a_state(world) == before
    finally:
        admin_conn.execute(f"DROP ROLE {role}")
        admin_conn.close()


def test_search_finds_only_the_searchers_organisation_even_when_another_has_the_same_words(
    world: OrgA, owner: Persona, outsider: Persona
) -> None:
    """Organisation B writes the very words of organisation A's objects; each side finds only its own."""
    assert outsider.membership is not None
    m, u = outsider.membership, outsider.user
    product = vision.create_product(m, u, name="Bravo product")
    vision.create_goal(m, u, product_id=product.pk, title="Bravo secret goal")
    vision.create_work_item(m, u, product.pk, title="Bravo secret work")
    value.create_measure(m, u, name="Bravo secret measure", kva=KVA.CURRENT_VALUE)
    validation.create_hypothesis(m, u, product.pk, title="Bravo secret hypothesis")
    queries = ["secret", "secret goal", "secret learning", "alpha secret", '"Alpha" OR secret', "ALPHA-1"]
    problems: list[str] = []
    for q in queries:
        page = signed_in(outsider).get(f"/o/{ORG_B_SLUG}/search/?{urlencode({'q': q})}")
        api_answer = _outsider_api(outsider, "get", f"/search?{urlencode({'q': q})}")
        for where, response in (("page", page), ("API", api_answer)):
            if response.status_code != 200:
                problems.append(f"search {q!r} ({where}) answered {response.status_code}")
            if found := leaked(body_and_location(response), world.secrets):
                problems.append(f"search {q!r} ({where}) in organisation B revealed {found}")
        theirs = [r["title"] for r in api_answer.json()] if api_answer.status_code == 200 else []
        if q == "secret" and len(theirs) != 4:
            problems.append(f"organisation B does not find its own objects: {theirs}")
        mine = owner.api().get(f"/api/v1/orgs/{ORG_A_SLUG}/search", {"q": q}).json()
        if any("Bravo" in r["title"] for r in mine):
            problems.append(f"organisation A's search {q!r} shows organisation B's {mine}")
    assert not problems, "\n".join(problems)
    own = owner.api().get(f"/api/v1/orgs/{ORG_A_SLUG}/search", {"q": "secret"}).json()
    # The process change's hypothesis and experiment carry the delivery source's secret name too.
    assert {r["kind"] for r in own} == {
        "goal",
        "measure",
        "hypothesis",
        "work_item",
        "learning",
        "experiment",
    }


def test_engagement_bearer_links_show_only_what_they_are_for(world: OrgA, outsider: Persona) -> None:
    """A pulse answer link shows the question about the product's goal; a share link shows its brief.
    Neither shows the organisation's people, its other objects, or a way into the app."""
    e = world.engagement
    private = [
        *(u.email for u in world.users),
        INVITEE_EMAIL,
        f"/o/{ORG_A_SLUG}/",
        *ENGAGEMENT_SECRETS,
        "Alpha secret source",  # a data source is not part of a brief
    ]
    pages = {
        "pulse link": reverse("engagement:pulse-answer", args=[e.pulse_token]),
        "share link": reverse("engagement:share", args=[e.share_token]),
        "shared Markdown": reverse("engagement:share_markdown", args=[e.share_token]),
    }
    for what, url in pages.items():
        for client in (Client(), signed_in(outsider)):
            response = client.get(url)
            assert response.status_code == 200, (what, response.status_code)
            body = response.content.decode()
            # The pulse's own title is what its answer page is about.
            allowed = frozenset({e.pulse.title}) if what == "pulse link" else frozenset()
            found = leaked(body, private, allowed)
            assert not found, f"the {what} revealed {found}"
    # The share link's brief is the product's (its goals); the pulse link asks for the goal in the
    # person's own words, without showing the official statement (which would give the answer away).
    assert "Alpha secret goal" in Client().get(pages["share link"]).content.decode()
    question = Client().get(pages["pulse link"]).content.decode()
    assert "own words" in question
    assert "Alpha secret product goal statement" not in question
