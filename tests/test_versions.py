"""Optimistic concurrency on every API update of a versioned object (issue 8, item 18).

`version` used to be optional, so two clients editing the same object overwrote each other silently.
This walk sends every such operation three times: without `version` (422 naming the field), with a
stale one after someone else's save (409, nothing changed), and with the current one (2xx, version + 1).
The OpenAPI schema is read too, so a new operation that takes a `version` cannot be left out.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db.models import F, Model
from django.test import Client
from django.urls import reverse

from conftest import Persona
from truenorth.api import api
from truenorth.core.forms import MISSING_VERSION
from truenorth.delivery.models import DeliverySource
from truenorth.delivery.models.github import GitHubConnection
from truenorth.delivery.models.process import ProcessChange
from truenorth.delivery.services import github_fetch as delivery_github
from truenorth.delivery.services import process as delivery_process
from truenorth.delivery.services import sources as delivery_sources
from truenorth.engagement.models import NotificationSettings, Pulse, Stakeholder, Webhook
from truenorth.engagement.services import mail as engagement_mail
from truenorth.engagement.services import pulses as engagement_pulses
from truenorth.engagement.services import stakeholders as engagement_stakeholders
from truenorth.engagement.services import webhooks as engagement_webhooks
from truenorth.history.models import HistoryEntry
from truenorth.hypotheses import services as hypotheses
from truenorth.hypotheses.models import Decision, Experiment, Hypothesis
from truenorth.measures import services as measures
from truenorth.measures.models import DataSource, DataSourceKind, Measure
from truenorth.measures.sources import encrypt_config
from truenorth.orgs.models import Organisation
from truenorth.strategy import services as strategy
from truenorth.strategy.models import Goal, Product, TargetMeasure

ORG = "/api/v1/orgs/{slug}"
AB: dict[str, Any] = {
    "name": "Download button",
    "kind": "ab",
    "variations": [{"name": "control", "allocation": 0.5}, {"name": "one_tap", "allocation": 0.5}],
    "metrics": [{"role": "primary", "name": "Download rate"}],
}


@dataclass
class World:
    org: Organisation
    product: Product
    archived_product: Product
    goal: Goal
    archived_goal: Goal
    target: TargetMeasure
    measure: Measure
    archived_measure: Measure
    source: DataSource
    draft: Hypothesis
    testing: Hypothesis
    experiment: Experiment
    stakeholder: Stakeholder
    archived_stakeholder: Stakeholder
    pulse: Pulse
    notification_settings: NotificationSettings
    webhook: Webhook
    delivery_source: DeliverySource
    github_connection: GitHubConnection
    process_change: ProcessChange
    sql_measure: Measure | None = None


@dataclass
class Call:
    """One update: `body` None sends the version as `?version=` (archive, restore, remove)."""

    url: str
    body: dict[str, Any] | None
    versioned: Model  # the object whose version the call must send
    deletes: bool = False  # the current version removes the versioned object itself


# (method, OpenAPI path) -> how to call it on the world.
CASES: dict[tuple[str, str], Callable[[World], Call]] = {
    ("patch", ORG): lambda w: Call("", {"name": "Alpha Renamed"}, w.org),
    ("patch", ORG + "/products/{product_id}"): lambda w: Call(
        f"/products/{w.product.pk}", {"vision": "Joy"}, w.product
    ),
    ("post", ORG + "/products/{product_id}/archive"): lambda w: Call(
        f"/products/{w.product.pk}/archive", None, w.product
    ),
    ("post", ORG + "/products/{product_id}/restore"): lambda w: Call(
        f"/products/{w.archived_product.pk}/restore", None, w.archived_product
    ),
    ("patch", ORG + "/goals/{goal_id}"): lambda w: Call(
        f"/goals/{w.goal.pk}", {"title": "Grow more"}, w.goal
    ),
    ("post", ORG + "/goals/{goal_id}/move"): lambda w: Call(
        f"/goals/{w.goal.pk}/move", {"parent": None, "position": 1}, w.goal
    ),
    ("post", ORG + "/goals/{goal_id}/archive"): lambda w: Call(f"/goals/{w.goal.pk}/archive", None, w.goal),
    ("post", ORG + "/goals/{goal_id}/restore"): lambda w: Call(
        f"/goals/{w.archived_goal.pk}/restore", None, w.archived_goal
    ),
    ("post", ORG + "/goals/{goal_id}/targets"): lambda w: Call(
        f"/goals/{w.goal.pk}/targets", {"name": "Trips", "baseline": 1, "target": 5}, w.goal
    ),
    ("patch", ORG + "/targets/{target_id}"): lambda w: Call(f"/targets/{w.target.pk}", {"target": 9}, w.goal),
    ("delete", ORG + "/targets/{target_id}"): lambda w: Call(f"/targets/{w.target.pk}", None, w.goal),
    ("patch", ORG + "/measures/{measure_id}"): lambda w: Call(
        f"/measures/{w.measure.pk}", {"unit": "hours"}, w.measure
    ),
    ("post", ORG + "/measures/{measure_id}/archive"): lambda w: Call(
        f"/measures/{w.measure.pk}/archive", None, w.measure
    ),
    ("post", ORG + "/measures/{measure_id}/restore"): lambda w: Call(
        f"/measures/{w.archived_measure.pk}/restore", None, w.archived_measure
    ),
    ("patch", ORG + "/data-sources/{source_id}"): lambda w: Call(
        f"/data-sources/{w.source.pk}", {"name": "Warehouse"}, w.source
    ),
    ("patch", ORG + "/hypotheses/{hypothesis_id}"): lambda w: Call(
        f"/hypotheses/{w.draft.pk}", {"who": "hikers"}, w.draft
    ),
    ("post", ORG + "/hypotheses/{hypothesis_id}/move"): lambda w: Call(
        f"/hypotheses/{w.draft.pk}/move", {"state": "ready"}, w.draft
    ),
    ("post", ORG + "/hypotheses/{hypothesis_id}/conclude"): lambda w: Call(
        f"/hypotheses/{w.testing.pk}/conclude",
        {"outcome": "inconclusive", "decision": "pivot", "learning": "Too few hikers."},
        w.testing,
    ),
    ("patch", ORG + "/experiments/{experiment_id}"): lambda w: Call(
        f"/experiments/{w.experiment.pk}", {"power": 0.9}, w.experiment
    ),
    ("post", ORG + "/experiments/{experiment_id}/plan"): lambda w: Call(
        f"/experiments/{w.experiment.pk}/plan", {"baseline_rate": 0.1, "mde": 0.1}, w.experiment
    ),
    ("put", ORG + "/experiments/{experiment_id}/evidence"): lambda w: Call(
        f"/experiments/{w.experiment.pk}/evidence",
        {
            "experiment_key": "one-tap",
            "metric_definitions": [
                {
                    "name": "download_rate",
                    "aggregation": "proportion",
                    "events": ["download"],
                    "window_days": 7,
                }
            ],
        },
        w.experiment,
    ),
    ("patch", ORG + "/stakeholders/{stakeholder_id}"): lambda w: Call(
        f"/stakeholders/{w.stakeholder.pk}", {"influence": 5}, w.stakeholder
    ),
    ("post", ORG + "/stakeholders/{stakeholder_id}/archive"): lambda w: Call(
        f"/stakeholders/{w.stakeholder.pk}/archive", None, w.stakeholder
    ),
    ("post", ORG + "/stakeholders/{stakeholder_id}/restore"): lambda w: Call(
        f"/stakeholders/{w.archived_stakeholder.pk}/restore", None, w.archived_stakeholder
    ),
    ("patch", ORG + "/pulses/{pulse_id}"): lambda w: Call(f"/pulses/{w.pulse.pk}", {"open_days": 3}, w.pulse),
    ("delete", ORG + "/pulses/{pulse_id}"): lambda w: Call(
        f"/pulses/{w.pulse.pk}", None, w.pulse, deletes=True
    ),
    ("put", ORG + "/notification-settings"): lambda w: Call(
        "/notification-settings", {"digest_weekday": 4}, w.notification_settings
    ),
    ("patch", ORG + "/webhooks/{webhook_id}"): lambda w: Call(
        f"/webhooks/{w.webhook.pk}", {"name": "Ops alerts"}, w.webhook
    ),
    ("post", ORG + "/webhooks/{webhook_id}/rotate-secret"): lambda w: Call(
        f"/webhooks/{w.webhook.pk}/rotate-secret", {}, w.webhook
    ),
    ("patch", ORG + "/delivery/sources/{source_id}"): lambda w: Call(
        f"/delivery/sources/{w.delivery_source.pk}", {"production_environment": "prod"}, w.delivery_source
    ),
    ("post", ORG + "/delivery/sources/{source_id}/archive"): lambda w: Call(
        f"/delivery/sources/{w.delivery_source.pk}/archive", {"archived": True}, w.delivery_source
    ),
    ("put", ORG + "/delivery/sources/{source_id}/github"): lambda w: Call(
        f"/delivery/sources/{w.github_connection.source_id}/github",
        {"repository": "trail/app2"},
        w.github_connection,
    ),
    ("delete", ORG + "/delivery/sources/{source_id}/github"): lambda w: Call(
        f"/delivery/sources/{w.github_connection.source_id}/github", None, w.github_connection, deletes=True
    ),
    ("patch", ORG + "/delivery/changes/{change_id}"): lambda w: Call(
        f"/delivery/changes/{w.process_change.pk}", {"title": "WIP limit of 3"}, w.process_change
    ),
    ("delete", ORG + "/delivery/changes/{change_id}"): lambda w: Call(
        f"/delivery/changes/{w.process_change.pk}", None, w.process_change, deletes=True
    ),
}


@pytest.fixture
def world(owner: Persona) -> World:
    m, user = owner.membership, owner.user
    assert m is not None
    product = strategy.create_product(m, user, name="Trail App")
    archived_product = strategy.archive_product(m, user, strategy.create_product(m, user, name="Old app").pk)
    goal = strategy.create_goal(
        m,
        user,
        title="Grow",
        product_id=product.pk,
        targets=[{"name": "Conversion", "baseline": 1, "target": 2}],
    )
    strategy.create_goal(m, user, title="Keep hikers", product_id=product.pk)  # a sibling to move past
    old_goal = strategy.create_goal(m, user, title="Old goal", product_id=product.pk)
    archived_goal = strategy.archive_goal(m, user, old_goal.pk)
    measure = measures.create_measure(m, user, name="Revenue", kva="current_value")
    old_measure = measures.create_measure(m, user, name="Old revenue", kva="current_value")
    archived_measure = measures.archive_measure(m, user, old_measure.pk)
    source = DataSource.objects.create(
        organisation=m.organisation,
        name="Files",
        kind=DataSourceKind.DUCKDB,
        config_encrypted=encrypt_config({"path": "events.duckdb"}),
    )
    measurable = {"metric_name": "Download rate", "baseline": 0.1, "target": 0.2}
    draft = hypotheses.create_hypothesis(m, user, product.pk, title="One-tap download", **measurable)
    testing = hypotheses.create_hypothesis(m, user, product.pk, title="Offline maps", **measurable)
    experiment = hypotheses.create_experiment(m, user, testing.pk, **AB)
    hypotheses.move_hypothesis(m, user, testing.pk, "ready")
    hypotheses.move_hypothesis(m, user, testing.pk, "testing")
    sql_measure = measures.create_measure(
        m,
        user,
        name="Sign-ups",
        kva="current_value",
        source="sql",
        data_source_id=source.pk,
        query="SELECT 1, 2",
    )
    stakeholder = engagement_stakeholders.create_stakeholder(
        m, user, name="Dana Finance", influence=4, interest=2
    )
    archived_stakeholder = engagement_stakeholders.archive_stakeholder(
        m, user, engagement_stakeholders.create_stakeholder(m, user, name="Old sponsor").pk
    )
    pulse = engagement_pulses.create_pulse(m, user, product_id=product.pk, title="Trail pulse", open_days=5)
    notification_settings = engagement_mail.update_settings(m, digest_weekday=2)  # saved: it has a row
    webhook, _ = engagement_webhooks.create_webhook(
        m, user, name="Ops", url="https://hooks.example.com/x", active=False
    )
    delivery_source = delivery_sources.create_source(
        m, user, name="Trail board", kind="jira", product_id=product.pk, state_mapping={"done": ["Done"]}
    )
    github_source = delivery_sources.create_source(
        m, user, name="Trail repo", kind="github", product_id=product.pk
    )
    github_connection = delivery_github.connect(
        m, user, github_source.pk, repository="trail/app", token="ghp_x1"
    )
    process_change = delivery_process.create_change(
        m, user, product_id=product.pk, title="WIP limit", changed_on="2026-05-04"
    )
    return World(
        delivery_source=delivery_source,
        github_connection=github_connection,
        process_change=process_change,
        stakeholder=stakeholder,
        archived_stakeholder=archived_stakeholder,
        pulse=pulse,
        notification_settings=notification_settings,
        webhook=webhook,
        sql_measure=sql_measure,
        org=m.organisation,
        product=product,
        archived_product=archived_product,
        goal=goal,
        archived_goal=archived_goal,
        target=goal.targets.get(),
        measure=measure,
        archived_measure=archived_measure,
        source=source,
        draft=draft,
        testing=testing,
        experiment=experiment,
    )


def _version_of(obj: Model) -> int:
    version = type(obj)._default_manager.filter(pk=obj.pk).values_list("version", flat=True).get()
    assert isinstance(version, int)
    return version


def _state(obj: Model) -> tuple[Any, ...]:
    """The versioned object as stored, and the rows an update could add or remove around it."""
    row = type(obj)._default_manager.filter(pk=obj.pk).values().get()
    return (row, HistoryEntry.objects.count(), TargetMeasure.objects.count(), Decision.objects.count())


def _send(client: Client, method: str, url: str, call: Call, version: int | None) -> Any:
    if call.body is None:
        query = "" if version is None else f"?version={version}"
        return getattr(client, method)(url + query)
    body = dict(call.body) if version is None else {**call.body, "version": version}
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


def _fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize(("method", "path"), sorted(CASES), ids=lambda v: str(v).replace(ORG, ""))
def test_every_update_of_a_versioned_object_needs_the_current_version(
    owner: Persona, world: World, method: str, path: str
) -> None:
    call = CASES[(method, path)](world)
    url = ORG.format(slug="alpha") + call.url
    client = owner.api()
    current = _version_of(call.versioned)

    missing = _send(client, method, url, call, None)
    assert missing.status_code == 422, missing.content
    assert _fields(missing) == ["version"]

    # Someone else saves first: the version this client read is now stale.
    type(call.versioned)._default_manager.filter(pk=call.versioned.pk).update(version=F("version") + 1)
    before = _state(call.versioned)
    stale = _send(client, method, url, call, current)
    assert stale.status_code == 409, stale.content
    assert _fields(stale) == ["version"]
    assert _state(call.versioned) == before, "a stale write changed something"

    saved = _send(client, method, url, call, current + 1)
    assert saved.status_code in (200, 201, 204), saved.content
    if call.deletes:
        assert not type(call.versioned)._default_manager.filter(pk=call.versioned.pk).exists()
    else:
        assert _version_of(call.versioned) == current + 2


def _versioned_operations() -> set[tuple[str, str]]:
    """Every API operation whose input has a `version`, from the OpenAPI schema; each must require it."""
    schema = api.get_openapi_schema()
    components = schema["components"]["schemas"]
    found: set[tuple[str, str]] = set()
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            for param in op.get("parameters", []):
                if param["name"] == "version" and param["in"] == "query":
                    assert param.get("required"), f"{method.upper()} {path}: ?version= must be required"
                    found.add((method, path))
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body is None:
                continue
            if "$ref" in body:
                body = components[body["$ref"].rsplit("/", 1)[-1]]
            if "version" in body.get("properties", {}):
                assert "version" in body.get("required", []), (
                    f"{method.upper()} {path}: version must be required"
                )
                found.add((method, path))
    return found


def test_the_walk_covers_every_operation_that_takes_a_version() -> None:
    assert _versioned_operations() == set(CASES)


# --- web forms -----------------------------------------------------------------------------------


@dataclass
class WebForm:
    """A web form that changes a versioned object: where it is shown, where it posts, what it sends."""

    page: str  # the page that shows the form
    action: str  # where it posts
    data: dict[str, str]  # everything but the version
    versioned: Model


def _u(name: str, **kwargs: int) -> str:
    return reverse(name, kwargs={"org_slug": "alpha", **kwargs})


WEB_FORMS: dict[str, Callable[[World], WebForm]] = {
    "organisation settings": lambda w: WebForm(
        _u("orgs:settings"), _u("orgs:settings"), {"name": "Alpha Renamed", "slug": "alpha"}, w.org
    ),
    "product edit": lambda w: WebForm(
        _u("strategy:product_edit", product_id=w.product.pk),
        _u("strategy:product_edit", product_id=w.product.pk),
        {"name": "Trail App", "vision": "Joy"},
        w.product,
    ),
    "product archive": lambda w: WebForm(
        _u("strategy:product", product_id=w.product.pk),
        _u("strategy:product_archive", product_id=w.product.pk),
        {},
        w.product,
    ),
    "goal edit": lambda w: WebForm(
        _u("strategy:goal_edit", goal_id=w.goal.pk),
        _u("strategy:goal_edit", goal_id=w.goal.pk),
        {
            "title": "Grow more",
            "level": "strategic",
            "status": "proposed",
            "weight": "1",
            "checkin_cadence_days": "7",
        },
        w.goal,
    ),
    "goal move": lambda w: WebForm(
        _u("strategy:goal_edit", goal_id=w.goal.pk),
        _u("strategy:goal_move", goal_id=w.goal.pk),
        {"parent": "", "position": "1"},
        w.goal,
    ),
    "goal archive": lambda w: WebForm(
        _u("strategy:goal_edit", goal_id=w.goal.pk),
        _u("strategy:goal_archive", goal_id=w.goal.pk),
        {},
        w.goal,
    ),
    "target add": lambda w: WebForm(
        _u("strategy:goal", goal_id=w.goal.pk),
        _u("strategy:target_add", goal_id=w.goal.pk),
        {"name": "Trips", "baseline": "1", "target": "5", "direction": "increase"},
        w.goal,
    ),
    "target edit": lambda w: WebForm(
        _u("strategy:goal", goal_id=w.goal.pk),
        _u("strategy:target_edit", goal_id=w.goal.pk, target_id=w.target.pk),
        {"name": "Trips", "baseline": "1", "target": "6", "direction": "increase", "measure": ""},
        w.goal,
    ),
    "target remove": lambda w: WebForm(
        _u("strategy:goal", goal_id=w.goal.pk),
        _u("strategy:target_remove", goal_id=w.goal.pk, target_id=w.target.pk),
        {},
        w.goal,
    ),
    "hypothesis edit": lambda w: WebForm(
        _u("hypotheses:edit", hypothesis_id=w.draft.pk),
        _u("hypotheses:edit", hypothesis_id=w.draft.pk),
        {"title": "One-tap download", "who": "hikers", "metric_name": "Download rate", "baseline": "0.1"},
        w.draft,
    ),
    "hypothesis conclude": lambda w: WebForm(
        _u("hypotheses:hypothesis", hypothesis_id=w.testing.pk),
        _u("hypotheses:conclude", hypothesis_id=w.testing.pk),
        {"outcome": "inconclusive", "decision": "pivot", "learning": "Too few hikers."},
        w.testing,
    ),
    "experiment edit": lambda w: WebForm(
        _u("hypotheses:experiment_edit", experiment_id=w.experiment.pk),
        _u("hypotheses:experiment_edit", experiment_id=w.experiment.pk),
        {
            "name": "Download button",
            "kind": "ab",
            "state": "planned",
            "variations": "control: 0.5\none_tap: 0.5",
            "primary_metric": "Download rate",
            "alpha": "0.05",
            "power": "0.9",
        },
        w.experiment,
    ),
    "experiment plan": lambda w: WebForm(
        _u("hypotheses:plan", experiment_id=w.experiment.pk),
        _u("hypotheses:plan", experiment_id=w.experiment.pk),
        {
            "metric_kind": "proportion",
            "baseline_rate": "0.1",
            "mde": "0.1",
            "relative": "true",
            "alpha": "0.05",
            "power": "0.8",
            "variations": "2",
            "apply": "1",
        },
        w.experiment,
    ),
    "experiment evidence settings": lambda w: WebForm(
        _u("hypotheses:results", experiment_id=w.experiment.pk),
        _u("hypotheses:evidence_settings", experiment_id=w.experiment.pk),
        {
            "data_source": "",
            "evidence_key": "one-tap",
            "metric_definitions": json.dumps(
                [
                    {
                        "name": "download_rate",
                        "aggregation": "proportion",
                        "events": ["download"],
                        "window_days": 7,
                    }
                ]
            ),
        },
        w.experiment,
    ),
    "data source edit": lambda w: WebForm(
        _u("measures:source", source_id=w.source.pk),
        _u("measures:source", source_id=w.source.pk),
        {"name": "Warehouse", "path": "events.duckdb", "files": "", "timeout_seconds": "30"},
        w.source,
    ),
    "measure query": lambda w: WebForm(
        _u("measures:measure", measure_id=w.sql_measure.pk),  # type: ignore[union-attr]
        _u("measures:query", measure_id=w.sql_measure.pk),  # type: ignore[union-attr]
        {"data_source": str(w.source.pk), "query": "SELECT 2, 3", "action": "save"},
        w.sql_measure,  # type: ignore[arg-type]
    ),
    "process change edit": lambda w: WebForm(
        _u("delivery:change_edit", change_id=w.process_change.pk),
        _u("delivery:change_edit", change_id=w.process_change.pk),
        {
            "title": "WIP limit of 3",
            "description": "",
            "product_id": str(w.process_change.product_id),
            "team_id": "",
            "changed_on": "2026-05-04",
            "before_days": "42",
            "after_days": "42",
        },
        w.process_change,
    ),
    "github connection": lambda w: WebForm(
        _u("delivery:source_github", source_id=w.github_connection.source_id),
        _u("delivery:source_github", source_id=w.github_connection.source_id),
        {"repository": "trail/app2", "api_url": "https://api.github.com", "token": ""},
        w.github_connection,
    ),
    "hypothesis board move": lambda w: WebForm(
        _u("hypotheses:board", product_id=w.product.pk),
        _u("hypotheses:move", hypothesis_id=w.draft.pk),
        {"state": "ready"},
        w.draft,
    ),
}


def _forms_posting_to(page: str, action: str, here: str) -> list[str]:
    """The <form> elements of a page that post to `action` (a form without an action posts to its page)."""
    found = []
    for attributes, inner in re.findall(r"<form\b([^>]*)>(.*?)</form>", page, flags=re.S):
        target = re.search(r'action="([^"]*)"', attributes)
        if (target.group(1) if target else here) == action:
            found.append(inner)
    return found


@pytest.mark.parametrize("name", sorted(WEB_FORMS))
def test_every_web_form_sends_the_version_and_is_refused_without_it(
    owner: Persona, world: World, name: str
) -> None:
    form = WEB_FORMS[name](world)
    current = _version_of(form.versioned)
    page = owner.client.get(form.page).content.decode()
    if name == "hypothesis board move":  # drag and drop and the move buttons send the card's version
        assert f'data-version="{current}"' in page and f'"version": "{current}"' in page
    else:
        sent = _forms_posting_to(page, form.action, form.page)
        assert sent, f"{form.page} has no form posting to {form.action}"
        assert all(re.search(rf'name="version" value="{current}"', inner) for inner in sent), sent

    before = _state(form.versioned)
    missing = owner.client.post(form.action, form.data, follow=True)
    assert missing.status_code in (200, 422)
    assert html.unescape(missing.content.decode()).count(MISSING_VERSION) >= 1
    assert _state(form.versioned) == before, "a form without its version changed something"

    saved = owner.client.post(form.action, {**form.data, "version": str(current)}, follow=True)
    assert saved.status_code == 200
    assert _version_of(form.versioned) == current + 1
