"""Every edit form round-trips: saving it unchanged changes nothing (issue 9, item 1).

Dates used to render in the en-gb locale (`31/03/2027`) inside `<input type="date">`; browsers reject
that value and show the field empty, so saving an edit that changed only the outcome erased the goal's
target date. This walk loads each edit form for a fully filled object, reads the page the way a browser
submits it (hidden fields, checked boxes, selected options, textareas with CRLF line breaks; a date
input's value only when it is a valid ISO date), posts it unchanged, and asserts that the object and
everything around it is unchanged and no history entry was written.

A new edit form cannot be left out: every URL whose name ends in `edit` or `settings`, and the other
pages listed in PREFILLED, needs a case in CASES.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest
from django.db.models import Model
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from conftest import Persona
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
from truenorth.hypotheses import results as evidence
from truenorth.hypotheses import services as hypotheses
from truenorth.hypotheses.models import Experiment, Hypothesis
from truenorth.measures import services as measures
from truenorth.measures.models import DataSource, DataSourceKind, Measure
from truenorth.measures.sources import encrypt_config
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy import services as strategy
from truenorth.strategy.models import ChangeProposal, Goal, Product

# --- a browser's form submission, from the HTML ---------------------------------------------------

SKIPPED_INPUTS = {"submit", "button", "image", "reset", "file"}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]]


class FormParser(HTMLParser):
    """Collects each <form> and the name/value pairs a browser would send for it, unchanged."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: tuple[str, bool, list[tuple[str, bool]]] | None = None  # name, multiple, options
        self._option: tuple[str | None, bool, list[str]] | None = None
        self._textarea: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get").lower(), [])
        elif self._form is None or "disabled" in a:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            value = a.get("value", "")
            if kind in SKIPPED_INPUTS:
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form.fields.append((a["name"], a.get("value", "on")))
                return
            # A browser shows (and sends) a date input empty when its value is not an ISO date.
            if kind == "date" and not DATE.match(value):
                value = ""
            if kind == "datetime-local" and not DATETIME.match(value):
                value = ""
            if kind != "textarea":
                value = value.replace("\r", "").replace("\n", "")
            self._form.fields.append((a["name"], value))
        elif tag == "select" and a.get("name"):
            self._select = (a["name"], "multiple" in a, [])
        elif tag == "option" and self._select is not None:
            self._option = (a.get("value"), "selected" in a, [])
        elif tag == "textarea" and a.get("name"):
            self._textarea = (a["name"], [])

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option[2].append(data)
        if self._textarea is not None:
            self._textarea[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "option" and self._option is not None and self._select is not None:
            value, selected, label = self._option
            self._select[2].append((value if value is not None else "".join(label).strip(), selected))
            self._option = None
        elif tag == "select" and self._select is not None and self._form is not None:
            if self._option is not None:
                self.handle_endtag("option")
            name, multiple, options = self._select
            chosen = [v for v, selected in options if selected]
            if not multiple and not chosen and options:
                chosen = [options[0][0]]  # a single select sends its first option when none is selected
            self._form.fields.extend((name, v) for v in (chosen if multiple else chosen[-1:]))
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            name, parts = self._textarea
            joined = "".join(parts)
            text = joined[1:] if joined.startswith("\n") else joined  # the parser drops the first newline
            # Browsers normalise line breaks in a textarea's value to CRLF when they submit it.
            self._form.fields.append((name, text.replace("\r\n", "\n").replace("\n", "\r\n")))
            self._textarea = None
        elif tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None


def forms_of(html: str) -> list[Form]:
    parser = FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def as_post(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return data


def test_the_parser_reads_a_form_as_a_browser_submits_it() -> None:
    html = """<form method="post" action="/x/"><input type="hidden" name="version" value="3">
      <input name="title" value="Fish &amp; chips"><input type="date" name="d" value="31/03/2027">
      <input type="date" name="e" value="2027-03-31"><input type="checkbox" name="c" checked>
      <input type="checkbox" name="u" value="x"><input type="submit" name="go" value="Save">
      <select name="s"><option value="a">A</option><option value="b" selected>B</option></select>
      <select name="f"><option value="">none</option><option value="1">one</option></select>
      <select name="m" multiple><option value="1" selected>1</option><option value="2">2</option>
      <option value="3" selected>3</option></select><input name="off" value="x" disabled>
      <textarea name="t">\nline 1\nline 2</textarea></form><input name="outside" value="1">"""
    (form,) = forms_of(html)
    assert (form.action, form.method) == ("/x/", "post")
    assert form.fields == [
        ("version", "3"),
        ("title", "Fish & chips"),
        ("d", ""),
        ("e", "2027-03-31"),
        ("c", "on"),
        ("s", "b"),
        ("f", ""),
        ("m", "1"),
        ("m", "3"),
        ("t", "line 1\r\nline 2"),
    ]


# --- a fully filled organisation ------------------------------------------------------------------


@dataclass
class World:
    org: Organisation
    product: Product
    goal: Goal
    measure: Measure
    sql_measure: Measure
    source: DataSource
    postgres: DataSource
    hypothesis: Hypothesis
    experiment: Experiment
    colleague: Membership
    stakeholder: Stakeholder
    pulse: Pulse
    notification_settings: NotificationSettings
    webhook: Webhook
    delivery_source: DeliverySource
    process_change: ProcessChange
    github_connection: GitHubConnection


TARGET_DATE = dt.date(2027, 3, 31)


@pytest.fixture
def world(owner: Persona, member: Persona) -> World:
    m, user = owner.membership, owner.user
    assert m is not None and member.membership is not None
    team = strategy.create_team(m, user, "Checkout Squad")
    product = strategy.create_product(
        m,
        user,
        name="Trail App",
        vision="Every hiker finds their way.\nOffline, too.",
        product_goal="Offline maps & routes",
        owner_id=user.pk,
        team_ids=[team.pk],
    )
    parent = strategy.create_goal(m, user, title="Be the hikers' app", product_id=product.pk)
    goal = strategy.create_goal(
        m,
        user,
        title="Grow weekly hikers",
        product_id=product.pk,
        parent_id=parent.pk,
        outcome="Hikers plan trips with us <every> week.\nNot only in summer.",
        owner_id=member.user.pk,
        target_date=TARGET_DATE,
        status=Goal.Status.ACTIVE,
        weight=0.5,
        checkin_cadence_days=14,
        targets=[{"name": "Weekly hikers", "unit": "k", "baseline": 1.5, "target": 2.25}],
    )
    measure = measures.create_measure(
        m, user, name="Download rate", kva="current_value", product_id=product.pk, unit="%", cadence_days=7
    )
    measures.set_value_measure(m, user, product.pk, measure.pk)
    source = DataSource.objects.create(
        organisation=m.organisation,
        name="Files",
        kind=DataSourceKind.DUCKDB,
        config_encrypted=encrypt_config({"path": "events.duckdb"}),
        timeout_seconds=45,
    )
    postgres = DataSource.objects.create(
        organisation=m.organisation,
        name="Warehouse",
        kind=DataSourceKind.POSTGRES,
        config_encrypted=encrypt_config({"dsn": "postgresql://reader:s3cret@warehouse.example:5432/shop"}),
    )
    sql_measure = measures.create_measure(
        m,
        user,
        name="Weekly downloads",
        kva="current_value",
        product_id=product.pk,
        source="sql",
        data_source_id=source.pk,
        query="select count(*) as value\nfrom downloads",
    )
    hypothesis = hypotheses.create_hypothesis(
        m,
        user,
        product.pk,
        title="One-tap download",
        goal_id=goal.pk,
        owner_id=member.user.pk,
        capability="a one-tap download\nof the offline map",
        who="hikers without signal",
        outcome="more offline trips",
        measure_id=measure.pk,
        baseline=0.1,
        target=0.125,
        by_date=dt.date(2027, 6, 30),
        **{f: 3 for f in hypotheses.SCORE_FIELDS},
    )
    experiment = hypotheses.create_experiment(
        m,
        user,
        hypothesis.pk,
        name="Download button",
        kind="ab",
        variations=[{"name": "control", "allocation": 0.4}, {"name": "one_tap", "allocation": 0.6}],
        metrics=[
            {"role": "primary", "name": "Download rate", "measure_id": measure.pk},
            {"role": "secondary", "name": "Trips"},
            {"role": "guardrail", "name": "Crashes"},
        ],
        minimum_detectable_effect=0.05,
        alpha=0.01,
        power=0.9,
        planned_sample_size=12000,
        start_date=dt.date(2027, 1, 4),
        stop_date=dt.date(2027, 2, 1),
    )
    evidence.configure_evidence(
        m,
        user,
        experiment.pk,
        data_source_id=source.pk,
        evidence_key="one-tap",
        metric_definitions=[
            {"name": "download_rate", "aggregation": "proportion", "events": ["download"], "window_days": 7}
        ],
    )
    stakeholder = engagement_stakeholders.create_stakeholder(
        m,
        user,
        name="Dana O'Neil",
        email="dana@customer.example",
        title="VP Finance",
        company="Customer & Co",
        department="finance",
        influence=4,
        interest=2,
        current_engagement="resistant",
        desired_engagement="supportive",
        relationship_owner=member.user.pk,
        user=member.user.pk,
        goals=[goal.pk],
        products=[product.pk],
        notes="Cares about <cost>.\nMeets us monthly.",
    )
    pulse = engagement_pulses.create_pulse(
        m,
        user,
        product_id=product.pk,
        title="Trail pulse",
        cadence_days=14,
        open_days=5,
        next_run_at=dt.datetime(2027, 1, 4, 9, 30, tzinfo=dt.UTC),
        active=False,
        all_members=False,
        member_ids=[user.pk, member.user.pk],
        include_stakeholders=True,
        min_group_size=7,
    )
    notification_settings = engagement_mail.update_settings(
        m, checkin_reminders=False, weekly_digest=True, digest_weekday=3
    )
    webhook, _ = engagement_webhooks.create_webhook(
        m,
        user,
        name="Ops",
        url="https://hooks.example.com/x?token=a&b=1",
        format="slack",
        events=["goal.created", "goal.updated"],
        active=False,
    )
    delivery_source = delivery_sources.create_source(
        m,
        user,
        name="Checkout board",
        kind="jira",
        product_id=product.pk,
        team_id=team.pk,
        state_mapping={
            "started": ["In Progress", "In Review"],
            "done": ["Done", "Won't Do"],
            "waiting": ["Blocked", "Ready for QA"],
        },
        production_environment="prod-eu",
    )
    process_change = delivery_process.create_change(
        m,
        user,
        product_id=product.pk,
        team_id=team.pk,
        title="WIP limit lowered from 5 to 3",
        description="Agreed at the retro; reviews first.",
        changed_on="2026-05-04",
        before_days=28,
        after_days=35,
    )
    github_source = delivery_sources.create_source(
        m, user, name="Checkout repo", kind="github", product_id=product.pk
    )
    github_connection = delivery_github.connect(
        m,
        user,
        github_source.pk,
        repository="acme/checkout",
        api_url="https://github.example.com/api/v3",
        token="ghp_x",
    )
    for obj in (product, goal, hypothesis, experiment):
        obj.refresh_from_db()
    return World(
        m.organisation,
        product,
        goal,
        measure,
        sql_measure,
        source,
        postgres,
        hypothesis,
        experiment,
        member.membership,
        stakeholder,
        pulse,
        notification_settings,
        webhook,
        delivery_source,
        process_change,
        github_connection,
    )


# --- the edit forms --------------------------------------------------------------------------------


@dataclass
class Case:
    page: str  # the page that shows the form
    action: str  # where it posts
    watched: list[Model]  # objects whose stored rows (and related rows) must not change


def _u(name: str, **kwargs: int) -> str:
    return reverse(name, kwargs={"org_slug": "alpha", **kwargs})


# URL name -> the page showing its form, filled from the world.
CASES: dict[str, Callable[[World], Case]] = {
    "orgs:settings": lambda w: Case(_u("orgs:settings"), _u("orgs:settings"), [w.org]),
    "orgs:change_role": lambda w: Case(
        _u("orgs:members"), _u("orgs:change_role", member_id=w.colleague.pk), [w.colleague]
    ),
    "strategy:product_edit": lambda w: Case(
        _u("strategy:product_edit", product_id=w.product.pk),
        _u("strategy:product_edit", product_id=w.product.pk),
        [w.product],
    ),
    "strategy:goal_edit": lambda w: Case(
        _u("strategy:goal_edit", goal_id=w.goal.pk), _u("strategy:goal_edit", goal_id=w.goal.pk), [w.goal]
    ),
    "strategy:goal_move": lambda w: Case(
        _u("strategy:goal_edit", goal_id=w.goal.pk), _u("strategy:goal_move", goal_id=w.goal.pk), [w.goal]
    ),
    "strategy:target_edit": lambda w: Case(
        _u("strategy:goal", goal_id=w.goal.pk),
        _u("strategy:target_edit", goal_id=w.goal.pk, target_id=w.goal.targets.get().pk),
        [w.goal],
    ),
    # The proposal form starts from the goal's current wording and date: unchanged, it proposes nothing.
    "strategy:propose": lambda w: Case(
        _u("strategy:goal", goal_id=w.goal.pk), _u("strategy:propose", goal_id=w.goal.pk), [w.goal]
    ),
    "measures:value_measure": lambda w: Case(
        _u("measures:investments", product_id=w.product.pk),
        _u("measures:value_measure", product_id=w.product.pk),
        [w.product],
    ),
    "measures:source": lambda w: Case(
        _u("measures:source", source_id=w.source.pk), _u("measures:source", source_id=w.source.pk), [w.source]
    ),
    "measures:source (PostgreSQL, password not shown)": lambda w: Case(
        _u("measures:source", source_id=w.postgres.pk),
        _u("measures:source", source_id=w.postgres.pk),
        [w.postgres],
    ),
    "measures:query": lambda w: Case(
        _u("measures:measure", measure_id=w.sql_measure.pk),
        _u("measures:query", measure_id=w.sql_measure.pk),
        [w.sql_measure],
    ),
    "hypotheses:edit": lambda w: Case(
        _u("hypotheses:edit", hypothesis_id=w.hypothesis.pk),
        _u("hypotheses:edit", hypothesis_id=w.hypothesis.pk),
        [w.hypothesis],
    ),
    "hypotheses:experiment_edit": lambda w: Case(
        _u("hypotheses:experiment_edit", experiment_id=w.experiment.pk),
        _u("hypotheses:experiment_edit", experiment_id=w.experiment.pk),
        [w.experiment],
    ),
    "hypotheses:evidence_settings": lambda w: Case(
        _u("hypotheses:results", experiment_id=w.experiment.pk),
        _u("hypotheses:evidence_settings", experiment_id=w.experiment.pk),
        [w.experiment],
    ),
    "engagement:stakeholder_edit": lambda w: Case(
        _u("engagement:stakeholder_edit", stakeholder_id=w.stakeholder.pk),
        _u("engagement:stakeholder_edit", stakeholder_id=w.stakeholder.pk),
        [w.stakeholder],
    ),
    "engagement:pulse-edit": lambda w: Case(
        _u("engagement:pulse-edit", pulse_id=w.pulse.pk),
        _u("engagement:pulse-edit", pulse_id=w.pulse.pk),
        [w.pulse],
    ),
    "engagement:notification_settings": lambda w: Case(
        _u("engagement:notification_settings"),
        _u("engagement:notification_settings"),
        [w.notification_settings],
    ),
    "engagement:webhook": lambda w: Case(
        _u("engagement:webhook", webhook_id=w.webhook.pk),
        _u("engagement:webhook", webhook_id=w.webhook.pk),
        [w.webhook],
    ),
    "delivery:change_edit": lambda w: Case(
        _u("delivery:change_edit", change_id=w.process_change.pk),
        _u("delivery:change_edit", change_id=w.process_change.pk),
        [w.process_change],
    ),
    "delivery:source_github": lambda w: Case(
        _u("delivery:source_github", source_id=w.github_connection.source_id),
        _u("delivery:source_github", source_id=w.github_connection.source_id),
        [w.github_connection],
    ),
    "delivery:source_edit": lambda w: Case(
        _u("delivery:source_edit", source_id=w.delivery_source.pk),
        _u("delivery:source_edit", source_id=w.delivery_source.pk),
        [w.delivery_source],
    ),
}

# Forms that are not named `…edit`/`…settings` but are filled from what they change.
PREFILLED = {
    "orgs:change_role",
    "strategy:goal_move",
    "strategy:propose",
    "measures:value_measure",
    "measures:source",  # a data source's page is its edit form
    "measures:query",  # a SQL measure's query editor
    "strategy:target_edit",
    "engagement:webhook",  # a webhook's page is its edit form (admins)
}


@dataclass
class ApiCase:
    url: str  # read with GET, written back unchanged with `method`
    method: str
    watched: list[Model]


# (read URL name, write URL name) of the API -> the object both work on.
API_CASES: dict[tuple[str, str], Callable[[World], ApiCase]] = {
    ("api:get_notification_settings", "api:update_notification_settings"): lambda w: ApiCase(
        "/api/v1/orgs/alpha/notification-settings", "put", [w.notification_settings]
    ),
}


def _url_names(resolver: URLResolver | None = None, namespace: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= _url_names(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(namespace + pattern.name)
    return names


def test_every_edit_form_has_a_round_trip_case() -> None:
    edit_forms = {n for n in _url_names() if re.search(r"(edit|settings)$", n.rsplit(":", 1)[-1])}
    covered = {name.split(" ", 1)[0] for name in CASES} | {name for pair in API_CASES for name in pair}
    missing = sorted((edit_forms | PREFILLED) - covered)
    assert not missing, f"add a case to tests/test_edit_forms.py CASES for {missing}"
    assert covered <= _url_names()


def _rows(obj: Model) -> Any:
    """The object's stored row and the rows that hang off it (targets, variations, metrics, teams, …)."""
    row = type(obj)._default_manager.filter(pk=obj.pk).values().get()
    related: dict[str, Any] = {}
    for rel in type(obj)._meta.related_objects:
        if rel.related_model in (HistoryEntry,) or not (rel.one_to_many or rel.many_to_many):
            continue
        accessor = rel.get_accessor_name()
        assert accessor is not None
        manager = getattr(type(obj)._default_manager.get(pk=obj.pk), accessor)
        related[accessor] = sorted(json.dumps(r, default=str, sort_keys=True) for r in manager.values())
    for field in type(obj)._meta.many_to_many:
        related[field.name] = sorted(
            getattr(type(obj)._default_manager.get(pk=obj.pk), field.name).values_list("pk", flat=True)
        )
    return row, related


def _state(case: Case) -> Any:
    return (
        [_rows(obj) for obj in case.watched],
        HistoryEntry.objects.count(),
        ChangeProposal.objects.count(),
    )


def _form_posting_to(html: str, action: str, page: str) -> Form:
    found = [f for f in forms_of(html) if f.method == "post" and (f.action or page) == action]
    assert len(found) == 1, f"{page}: expected one form posting to {action}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_saving_an_edit_form_unchanged_changes_nothing(owner: Persona, world: World, name: str) -> None:
    case = CASES[name](world)
    page = owner.client.get(case.page)
    assert page.status_code == 200
    form = _form_posting_to(page.content.decode(), case.action, case.page)
    before = _state(case)

    response = owner.client.post(case.action, as_post(form.fields))

    assert response.status_code in (200, 302, 422), response.status_code
    assert _state(case) == before, f"{name}: posting the form unchanged changed something"


@pytest.mark.parametrize("names", sorted(API_CASES), ids=" ".join)
def test_writing_back_an_api_read_unchanged_changes_nothing(
    owner: Persona, world: World, names: tuple[str, str]
) -> None:
    case = API_CASES[names](world)
    client = owner.api()
    read = client.get(case.url)
    assert read.status_code == 200, read.content
    before = _state(Case(case.url, case.url, case.watched))

    written = getattr(client, case.method)(case.url, read.content, content_type="application/json")

    assert written.status_code == 200, written.content
    assert written.json() == read.json()
    after = _state(Case(case.url, case.url, case.watched))
    assert after == before, f"{names}: writing back changed something"


def test_the_goal_edit_form_shows_the_target_date_as_a_browser_date(owner: Persona, world: World) -> None:
    page = owner.client.get(_u("strategy:goal_edit", goal_id=world.goal.pk)).content.decode()
    form = _form_posting_to(page, _u("strategy:goal_edit", goal_id=world.goal.pk), "")
    assert ("target_date", "2027-03-31") in form.fields


def test_editing_only_the_outcome_keeps_the_target_date(owner: Persona, world: World) -> None:
    url = _u("strategy:goal_edit", goal_id=world.goal.pk)
    form = _form_posting_to(owner.client.get(url).content.decode(), url, url)
    data = as_post(form.fields)
    data["outcome"] = ["Hikers plan every trip with us."]

    assert owner.client.post(url, data).status_code == 302

    world.goal.refresh_from_db()
    assert world.goal.outcome == "Hikers plan every trip with us."
    assert world.goal.target_date == TARGET_DATE


def test_a_title_only_proposal_carries_only_the_title_and_accepting_it_keeps_the_date(
    owner: Persona, stakeholder: Persona, world: World
) -> None:
    goal_url = _u("strategy:goal", goal_id=world.goal.pk)
    propose_url = _u("strategy:propose", goal_id=world.goal.pk)
    form = _form_posting_to(stakeholder.client.get(goal_url).content.decode(), propose_url, goal_url)
    data = as_post(form.fields)
    data["title"] = ["Grow weekly hikers all year"]

    assert stakeholder.client.post(propose_url, data).status_code == 302

    proposal = ChangeProposal.objects.get()
    assert proposal.changes == {"title": "Grow weekly hikers all year"}
    decide_url = _u("strategy:decide", goal_id=world.goal.pk, proposal_id=proposal.pk)
    assert owner.client.post(decide_url, {"decision": "accept"}).status_code == 302
    world.goal.refresh_from_db()
    assert world.goal.title == "Grow weekly hikers all year"
    assert world.goal.target_date == TARGET_DATE
    assert world.goal.outcome == "Hikers plan trips with us <every> week.\nNot only in summer."


def test_a_proposal_that_changes_nothing_is_a_form_error(stakeholder: Persona, world: World) -> None:
    goal_url = _u("strategy:goal", goal_id=world.goal.pk)
    propose_url = _u("strategy:propose", goal_id=world.goal.pk)
    form = _form_posting_to(stakeholder.client.get(goal_url).content.decode(), propose_url, goal_url)

    response = stakeholder.client.post(propose_url, as_post(form.fields))

    assert response.status_code != 302
    assert "nothing to change" in response.content.decode()
    assert not ChangeProposal.objects.exists()


def test_a_proposal_through_the_api_drops_the_fields_it_does_not_change(
    stakeholder: Persona, world: World
) -> None:
    m = stakeholder.membership
    assert m is not None
    proposal = strategy.propose_change(
        m,
        stakeholder.user,
        world.goal.pk,
        {"title": "Grow weekly hikers all year", "outcome": world.goal.outcome, "target_date": "2027-03-31"},
    )
    assert proposal.changes == {"title": "Grow weekly hikers all year"}
