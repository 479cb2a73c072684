"""Goal tree exchange: export, JSON/YAML text, import (validated, all or nothing) and the Markdown archive."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from django.utils import timezone

from truenorth.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from truenorth.history.models import HistoryEntry
from truenorth.strategy import exchange, services
from truenorth.strategy.models import Goal, GoalLink, Product, TargetMeasure, TargetObservation, Team


@pytest.fixture
def tree(owner, member):
    """A product with a 3-level tree, targets with observations, links in and out, archived goals."""
    m, actor = owner.membership, owner.user
    org_goal = services.create_goal(
        m,
        actor,
        title="Be the brand people trust",
        outcome="Customers recommend us to friends for every trip they plan.",
        owner_id=actor.pk,
        targets=[{"name": "NPS", "baseline": 30, "target": 50}],
    )
    other = services.create_product(m, actor, name="Other product")
    other_goal = services.create_goal(m, actor, title="Other strategic goal", product_id=other.pk)
    team = services.create_team(m, actor, "Trail team")
    product = services.create_product(
        m,
        actor,
        name="Trail",
        vision="Every hiker finds the right trail.",
        product_goal="Weekly planners double.",
        owner_id=member.user.pk,
        team_ids=[team.pk],
    )
    root = services.create_goal(
        m,
        actor,
        title="Hikers plan every trip with us",
        product_id=product.pk,
        outcome="Hikers plan their weekend trips in the app instead of on paper maps.",
        owner_id=member.user.pk,
        target_date="2030-12-31",
        status=Goal.Status.ACTIVE,
        weight=2.5,
        checkin_cadence_days=14,
        targets=[
            {"name": "Weekly planners", "unit": "people", "baseline": 1200, "target": 2400},
            {"name": "Time to plan", "unit": "min", "baseline": 30.5, "target": 10, "direction": "decrease"},
        ],
    )
    first = services.create_goal(m, actor, title="Offline maps", product_id=product.pk, parent_id=root.pk)
    second = services.create_goal(
        m, actor, title="Route sharing", product_id=product.pk, parent_id=root.pk, status="achieved"
    )
    leaf = services.create_goal(
        m, actor, title="Share a route link", product_id=product.pk, parent_id=second.pk, level="tactical"
    )
    gone = services.create_goal(
        m, actor, title="Old idea", product_id=product.pk, parent_id=root.pk, status="abandoned"
    )
    archived_parent = services.create_goal(
        m, actor, title="Archived branch", product_id=product.pk, parent_id=root.pk
    )
    services.create_goal(
        m, actor, title="Archived leaf", product_id=product.pk, parent_id=archived_parent.pk, level="sprint"
    )
    # Reorder so positions are not creation order: "Route sharing" first.
    services.move_goal(m, actor, second.pk, parent_id=root.pk, position=0)
    planners = root.targets.get(name="Weekly planners")
    when = timezone.now().replace(microsecond=123456) - dt.timedelta(days=21)
    services.record_observation(m, actor, planners.pk, 1300, observed_at=when, note="after launch")
    services.record_observation(m, actor, planners.pk, 1450.25, observed_at=when + dt.timedelta(days=7))
    services.link_goals(m, actor, root.pk, org_goal.pk, "aligns")
    services.link_goals(m, actor, first.pk, leaf.pk, "relates")
    services.link_goals(m, actor, leaf.pk, other_goal.pk, "relates")
    services.archive_goal(m, actor, archived_parent.children.get().pk)
    services.archive_goal(m, actor, archived_parent.pk)
    services.archive_goal(m, actor, gone.pk)
    return product


def _without_name(doc):
    doc = copy.deepcopy(doc)
    doc["product"].pop("name")
    return doc


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_round_trip_is_lossless(owner, tree, fmt):
    m = owner.membership
    doc = exchange.export_tree(m, tree.pk)
    text = exchange.dump(doc, fmt)
    loaded = exchange.load(text, fmt)
    assert loaded == doc
    copy_product = exchange.import_tree(m, owner.user, loaded, name="Trail copy")
    again = exchange.export_tree(m, copy_product.pk)
    assert again["product"]["name"] == "Trail copy"
    assert _without_name(again) == _without_name(doc)
    # A second round trip of the copy gives the copy again.
    assert exchange.load(exchange.dump(again, fmt), fmt) == again


def test_export_document_shape(owner, tree):
    doc = exchange.export_tree(owner.membership, tree.pk)
    assert doc["format"] == "truenorth.goal-tree"
    assert doc["version"] == 1
    assert doc["product"] == {
        "name": "Trail",
        "vision": "Every hiker finds the right trail.",
        "product_goal": "Weekly planners double.",
        "owner": "member@a.example",
        "teams": ["Trail team"],
    }
    [root] = doc["goals"]
    assert root["key"] == "g1"
    assert root["weight"] == 2.5
    assert root["checkin_cadence_days"] == 14
    assert root["target_date"] == "2030-12-31"
    assert [c["title"] for c in root["children"]] == [
        "Route sharing",
        "Offline maps",
        "Old idea",
        "Archived branch",
    ]
    assert [c["archived"] for c in root["children"]] == [False, False, True, True]
    assert root["children"][3]["children"][0]["archived"] is True
    assert root["links"] == [
        {"kind": "aligns", "target": {"external": "Be the brand people trust", "product": None}}
    ]
    offline = root["children"][1]
    leaf = root["children"][0]["children"][0]
    assert offline["links"] == [{"kind": "relates", "target": leaf["key"]}]
    assert leaf["links"] == [
        {"kind": "relates", "target": {"external": "Other strategic goal", "product": "Other product"}}
    ]
    planners = root["targets"][0]
    assert [o["value"] for o in planners["observations"]] == [1300.0, 1450.25]
    assert planners["observations"][0]["note"] == "after launch"
    assert dt.datetime.fromisoformat(planners["observations"][0]["observed_at"]).microsecond == 123456
    keys = []

    def walk(goals):
        for g in goals:
            keys.append(g["key"])
            walk(g["children"])

    walk(doc["goals"])
    assert keys == [f"g{i}" for i in range(1, 8)]


def test_import_writes_history_and_links(owner, tree):
    m = owner.membership
    before = HistoryEntry.objects.count()
    product = exchange.import_tree(m, owner.user, exchange.export_tree(m, tree.pk), name="Copy")
    assert HistoryEntry.objects.count() > before
    goals = Goal.objects.filter(product=product)
    assert goals.count() == 7
    assert goals.filter(archived_at__isnull=False).count() == 3
    root = goals.get(parent__isnull=True)
    assert GoalLink.objects.filter(
        source=root, target__title="Be the brand people trust", kind="aligns"
    ).exists()
    # The copy's goals roll up into the organisation goal like the original's.
    assert root.owner is not None
    assert root.owner.email == "member@a.example"


def _doc(**goal):
    base = {
        "key": "g1",
        "title": "Hikers plan every trip with us",
        "owner": "owner@a.example",
        "targets": [{"name": "Weekly planners", "baseline": 10, "target": 20}],
    }
    return {
        "format": "truenorth.goal-tree",
        "version": 1,
        "product": {"name": "Imported", "owner": "owner@a.example", "teams": ["New team"]},
        "goals": [base | goal],
    }


def _nothing_created():
    assert not Product.objects.exists()
    assert not Goal.objects.exists()
    assert not TargetMeasure.objects.exists()
    assert not TargetObservation.objects.exists()
    assert not Team.objects.exists()


def test_minimal_document_imports(owner):
    product = exchange.import_tree(owner.membership, owner.user, _doc())
    assert product.name == "Imported"
    assert [t.name for t in product.teams.all()] == ["New team"]
    goal = Goal.objects.get(product=product)
    assert goal.level == "strategic"
    assert goal.status == "proposed"


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (
            _doc(
                children=[
                    {"key": "g2", "title": "Child"},
                    {
                        "key": "g3",
                        "title": "Child two",
                        "targets": [{"name": "Errors", "baseline": 10, "target": 5}],
                    },
                ]
            ),
            "goals[0].children[1].targets[0].target",
        ),
        (_doc(owner="nobody@a.example"), "goals[0].owner"),
        (_doc(owner="stakeholder@a.example"), "goals[0].owner"),
        (_doc(children=[{"key": "g1", "title": "Same key"}]), "goals[0].children[0].key"),
        (_doc(links=[{"kind": "relates", "target": "g9"}]), "goals[0].links[0].target"),
        (
            _doc(links=[{"kind": "aligns", "target": {"external": "No such goal", "product": None}}]),
            "goals[0].links[0].target",
        ),
        (_doc(links=[{"kind": "sideways", "target": "g1"}]), "goals[0].links[0].kind"),
        (_doc(targets=[{"name": "X", "baseline": "ten", "target": 20}]), "goals[0].targets[0].baseline"),
        (_doc(targets=[{"name": "X", "target": 20}]), "goals[0].targets[0].baseline"),
        (
            _doc(targets=[{"name": "X", "baseline": 1, "target": 2, "observations": [{"value": 1}]}]),
            "goals[0].targets[0].observations[0].observed_at",
        ),
        (
            _doc(
                targets=[
                    {
                        "name": "X",
                        "baseline": 1,
                        "target": 2,
                        "observations": [{"value": 1, "observed_at": "2999-01-01T00:00:00+00:00"}],
                    }
                ]
            ),
            "goals[0].targets[0].observations[0].observed_at",
        ),
        (_doc(level="galactic"), "goals[0].level"),
        (_doc(target_date="next year"), "goals[0].target_date"),
        (_doc(title=""), "goals[0].title"),
        (_doc(colour="blue"), "goals[0].colour"),
        (_doc(children=[{"key": "g2", "title": "Up", "level": "strategic"}]), "goals[0].children[0].level"),
        (_doc(archived="yes"), "goals[0].archived"),
        ({**_doc(), "format": "something-else"}, "format"),
        ({**_doc(), "version": 2}, "version"),
        ({**_doc(), "goals": "none"}, "goals"),
        ({**_doc(), "product": {"name": "X", "owner": "nobody@a.example"}}, "product.owner"),
    ],
)
def test_bad_document_names_the_path_and_creates_nothing(owner, doc, field):
    with pytest.raises(ValidationFailed) as excinfo:
        exchange.import_tree(owner.membership, owner.user, doc)
    assert excinfo.value.field == field, excinfo.value.message
    assert excinfo.value.message
    _nothing_created()


def test_failure_late_in_the_document_rolls_everything_back(owner):
    doc = _doc(
        children=[{"key": f"g{i}", "title": f"Child {i}"} for i in range(2, 6)],
        links=[{"kind": "aligns", "target": {"external": "Missing", "product": None}}],
    )
    history = HistoryEntry.objects.count()
    with pytest.raises(ValidationFailed):
        exchange.import_tree(owner.membership, owner.user, doc)
    _nothing_created()
    assert HistoryEntry.objects.count() == history


def test_name_clash_is_a_conflict_naming_name(owner, tree):
    doc = exchange.export_tree(owner.membership, tree.pk)
    with pytest.raises(Conflict) as excinfo:
        exchange.import_tree(owner.membership, owner.user, doc)
    assert excinfo.value.field == "name"
    with pytest.raises(Conflict) as excinfo:
        exchange.import_tree(owner.membership, owner.user, doc, name="trail")
    assert excinfo.value.field == "name"
    assert Product.objects.count() == 2


def test_stakeholder_cannot_import(stakeholder):
    with pytest.raises(Forbidden):
        exchange.import_tree(stakeholder.membership, stakeholder.user, _doc())


def test_export_of_another_organisation_is_not_found(outsider, tree):
    membership = outsider.membership
    with pytest.raises(NotFound):
        exchange.export_tree(membership, tree.pk)
    with pytest.raises(NotFound):
        exchange.to_markdown(membership, tree.pk)


@pytest.mark.parametrize(
    ("fmt", "text", "line"),
    [
        ("json", '{\n  "format": "truenorth.goal-tree",\n  "version": 1,\n  oops\n}', 4),
        ("yaml", "format: truenorth.goal-tree\nversion: 1\nproduct: {name: [x\ngoals: []\n", 4),
        ("yaml", "format: truenorth.goal-tree\n  version: 1\n", 2),
    ],
)
def test_malformed_text_names_the_line(fmt, text, line):
    with pytest.raises(ValidationFailed) as excinfo:
        exchange.load(text, fmt)
    assert f"line {line}" in excinfo.value.message
    assert excinfo.value.field == "document"


@pytest.mark.parametrize(("fmt", "text"), [("json", "[1, 2]"), ("yaml", "- a\n- b\n"), ("yaml", "")])
def test_a_document_must_be_a_mapping(fmt, text):
    with pytest.raises(ValidationFailed) as excinfo:
        exchange.load(text, fmt)
    assert excinfo.value.field == "document"


def test_unknown_format():
    with pytest.raises(ValidationFailed) as excinfo:
        exchange.load("{}", "xml")
    assert excinfo.value.field == "format"
    with pytest.raises(ValidationFailed):
        exchange.dump({}, "xml")


def test_hand_written_yaml_with_bare_dates_imports(owner):
    text = """
format: truenorth.goal-tree
version: 1
product:
  name: Hand written
goals:
  - key: a
    title: Hikers plan every trip with us
    target_date: 2031-06-30
    targets:
      - name: Weekly planners
        baseline: 10
        target: 20
        observations:
          - {value: 12, observed_at: 2025-01-06 09:00:00}
          - {value: 13, observed_at: 2025-01-13}
"""
    product = exchange.import_tree(owner.membership, owner.user, exchange.load(text, "yaml"))
    goal = Goal.objects.get(product=product)
    assert goal.target_date == dt.date(2031, 6, 30)
    values = list(TargetObservation.objects.filter(target_measure__goal=goal).values_list("value", flat=True))
    assert sorted(values) == [12.0, 13.0]


def test_yaml_dump_is_readable_unicode(owner, tree):
    services.update_product(owner.membership, owner.user, tree.pk, vision="Wanderlust für alle — überall")
    text = exchange.dump(exchange.export_tree(owner.membership, tree.pk), "yaml")
    assert text.startswith("format: truenorth.goal-tree\nversion: 1\nproduct:\n")
    assert "für alle — überall" in text


def test_markdown_contains_the_tree(owner, member, stakeholder, tree):
    m = owner.membership
    root = Goal.objects.get(product=tree, parent__isnull=True)
    services.check_in(m, owner.user, root.pk, status="at_risk", confidence=6, narrative="Slow start.")
    proposal = services.propose_change(
        stakeholder.membership,
        stakeholder.user,
        root.pk,
        {"title": "Hikers plan all trips with us"},
        "Shorter",
    )
    services.decide_proposal(m, owner.user, proposal.pk, accept=True)
    services.raise_concern(stakeholder.membership, stakeholder.user, root.pk, "Is 2400 realistic?")
    text = exchange.to_markdown(m, tree.pk)
    assert text.startswith("# Trail\n")
    assert "Every hiker finds the right trail." in text
    assert "Trail team" in text
    assert "### Hikers plan all trips with us" in text
    assert "#### Route sharing" in text
    assert "##### Share a route link" in text
    assert "Archived branch (archived)" in text
    assert "Weekly planners: 1200 → 2400 people" in text
    assert "latest 1450.25 people" in text
    assert "At risk, confidence 6/10" in text
    assert "Slow start." in text
    assert "Accepted proposals" in text
    assert "Is 2400 realistic?" in text
    assert "Lint" in text
    assert "no-measure" in text  # children without targets
    assert text.index("Route sharing") < text.index("Offline maps")


def test_yaml_aliases_are_refused():
    bomb = (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b]\n"
    )
    with pytest.raises(ValidationFailed) as excinfo:
        exchange.load(bomb, "yaml")
    assert "line 2" in excinfo.value.message
    assert "aliases" in excinfo.value.message


def test_deeply_nested_documents_are_refused(owner):
    goal: dict = {"key": "deep", "title": "Deepest"}
    for i in range(exchange.MAX_DEPTH + 5):
        goal = {"key": f"k{i}", "title": f"Level {i}", "level": "sprint", "children": [goal]}
    doc = {"format": "truenorth.goal-tree", "version": 1, "product": {"name": "Deep"}, "goals": [goal]}
    with pytest.raises(ValidationFailed) as excinfo:
        exchange.import_tree(owner.membership, owner.user, doc)
    assert (excinfo.value.field or "").startswith("goals[0].children[0].children[0]")
    _nothing_created()
    with pytest.raises(ValidationFailed) as excinfo:
        exchange.load("[" * 100_000 + "]" * 100_000, "json")
    assert excinfo.value.field == "document"
