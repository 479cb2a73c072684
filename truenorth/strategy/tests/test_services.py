"""The Vision pillar's rules, through its service layer: products, goal trees, alignment, progress,
check-ins, lint, co-authoring, work items, history and isolation between organisations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from django.utils import timezone

from truenorth.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from truenorth.history.models import HistoryEntry
from truenorth.history.services import entries_for
from truenorth.notifications.models import Notification
from truenorth.orgs.models import Membership, Role
from truenorth.strategy import services as s
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
    WorkItem,
)

# --- fixtures -------------------------------------------------------------------------------------


@dataclass
class Tree:
    """Product "Atlas" owned by the member:  S (strategic) ── I1 ── T,  S ── I2.  All active, owned by
    the member; every goal has one target measure from 0 up to 10."""

    product: Product
    s: Goal
    i1: Goal
    i2: Goal
    t: Goal


def _target(name: str = "score", baseline: float = 0, target: float = 10) -> dict[str, object]:
    return {"name": name, "baseline": baseline, "target": target}


@pytest.fixture
def tree(owner, admin, member, stakeholder) -> Tree:
    m, actor = owner.membership, owner.user
    product = s.create_product(
        m, actor, name="Atlas", vision="Plans everyone trusts", owner_id=member.user.pk
    )

    def goal(title: str, parent: Goal | None = None) -> Goal:
        return s.create_goal(
            m,
            actor,
            product_id=product.pk,
            parent_id=parent.pk if parent else None,
            title=title,
            outcome="Customers plan their week without a single status meeting.",
            owner_id=member.user.pk,
            status=Goal.Status.ACTIVE,
            target_date="2030-12-31",
            targets=[_target(f"{title} score")],
        )

    strategic = goal("Win small teams")
    i1 = goal("Self-serve onboarding", strategic)
    i2 = goal("Referrals", strategic)
    t = goal("Guided setup", i1)
    return Tree(product, strategic, i1, i2, t)


def _reload(obj):
    obj.refresh_from_db()
    return obj


def _target_of(goal: Goal) -> TargetMeasure:
    return goal.targets.get()


def _observe(owner, goal: Goal, value: float, when: dt.datetime | None = None) -> TargetObservation:
    return s.record_observation(owner.membership, owner.user, _target_of(goal).pk, value, observed_at=when)


def _org_goal(owner, title: str = "Be the planning tool of choice", **kw) -> Goal:
    return s.create_goal(owner.membership, owner.user, title=title, status=Goal.Status.ACTIVE, **kw)


def _other_product(owner, name: str = "Beacon") -> Product:
    return s.create_product(owner.membership, owner.user, name=name)


def _field(exc: pytest.ExceptionInfo[ValidationFailed] | pytest.ExceptionInfo[Conflict]) -> str | None:
    return exc.value.field


# --- products -------------------------------------------------------------------------------------


def test_create_product_records_history(owner, member):
    product = s.create_product(owner.membership, owner.user, name="  Atlas ", owner_id=member.user.pk)
    assert product.name == "Atlas"
    assert product.owner == member.user
    entry = entries_for(owner.membership.organisation, product).get()
    assert entry.action == HistoryEntry.Action.CREATED
    assert entry.actor == owner.user
    assert entry.changes["name"] == {"old": None, "new": "Atlas"}


def test_duplicate_product_name_is_a_conflict(owner):
    s.create_product(owner.membership, owner.user, name="Atlas")
    with pytest.raises(Conflict) as exc:
        s.create_product(owner.membership, owner.user, name="atlas")
    assert _field(exc) == "name"
    assert Product.objects.count() == 1


def test_product_name_is_required(owner):
    with pytest.raises(ValidationFailed) as exc:
        s.create_product(owner.membership, owner.user, name="   ")
    assert _field(exc) == "name"


def test_update_product_bumps_version_and_records_old_and_new(owner, member):
    product = s.create_product(owner.membership, owner.user, name="Atlas", vision="old")
    updated = s.update_product(owner.membership, member.user, product.pk, version=1, vision="new")
    assert updated.version == 2
    assert _reload(product).vision == "new"
    entry = entries_for(owner.membership.organisation, product).filter(action="updated").get()
    assert entry.actor == member.user
    assert entry.changes == {"vision": {"old": "old", "new": "new"}}


def test_update_product_with_a_stale_version_is_refused_and_loses_nothing(owner, member):
    product = s.create_product(owner.membership, owner.user, name="Atlas", vision="first")
    s.update_product(owner.membership, owner.user, product.pk, version=1, vision="second")
    with pytest.raises(Conflict) as exc:
        s.update_product(member.membership, member.user, product.pk, version=1, vision="third")
    assert _field(exc) == "version"
    product.refresh_from_db()
    assert (product.vision, product.version) == ("second", 2)


def test_update_product_to_a_taken_name_is_a_conflict(owner):
    s.create_product(owner.membership, owner.user, name="Atlas")
    beacon = s.create_product(owner.membership, owner.user, name="Beacon")
    with pytest.raises(Conflict):
        s.update_product(owner.membership, owner.user, beacon.pk, name="ATLAS")
    # renaming to itself in another case is fine
    assert s.update_product(owner.membership, owner.user, beacon.pk, name="BEACON").name == "BEACON"


def test_update_product_that_changes_nothing_records_nothing(owner):
    product = s.create_product(owner.membership, owner.user, name="Atlas", vision="v")
    s.update_product(owner.membership, owner.user, product.pk, version=1, name="Atlas", vision="v")
    assert _reload(product).version == 1
    assert entries_for(owner.membership.organisation, product).count() == 1  # the creation only


def test_archive_and_restore_product(owner):
    product = s.create_product(owner.membership, owner.user, name="Atlas")
    s.archive_product(owner.membership, owner.user, product.pk)
    assert _reload(product).archived_at is not None
    assert list(s.products_of(owner.membership)) == []
    assert list(s.products_of(owner.membership, include_archived=True)) == [product]
    with pytest.raises(ValidationFailed) as exc:
        s.create_goal(owner.membership, owner.user, product_id=product.pk, title="Too late")
    assert _field(exc) == "product"
    s.archive_product(owner.membership, owner.user, product.pk, archived=False)
    assert _reload(product).archived_at is None
    assert list(s.products_of(owner.membership)) == [product]


def test_product_owner_must_be_a_writing_member(owner, stakeholder, outsider):
    with pytest.raises(ValidationFailed) as exc:
        s.create_product(owner.membership, owner.user, name="Atlas", owner_id=outsider.user.pk)
    assert _field(exc) == "owner"
    assert "Bravo" not in exc.value.message
    with pytest.raises(ValidationFailed) as exc:
        s.create_product(owner.membership, owner.user, name="Atlas", owner_id=stakeholder.user.pk)
    assert _field(exc) == "owner"
    product = s.create_product(owner.membership, owner.user, name="Atlas")
    with pytest.raises(ValidationFailed):
        s.update_product(owner.membership, owner.user, product.pk, owner_id=stakeholder.user.pk)
    assert Product.objects.count() == 1


# --- goals: levels, parents, validation -----------------------------------------------------------


def test_default_level_is_one_below_the_parent(tree, owner):
    assert tree.s.level == Goal.Level.STRATEGIC
    assert tree.i1.level == Goal.Level.INTERMEDIATE
    assert tree.t.level == Goal.Level.TACTICAL
    sprint = s.create_goal(
        owner.membership, owner.user, product_id=tree.product.pk, parent_id=tree.t.pk, title="x"
    )
    assert sprint.level == Goal.Level.SPRINT
    finer = s.create_goal(
        owner.membership, owner.user, product_id=tree.product.pk, parent_id=sprint.pk, title="y"
    )
    assert finer.level == Goal.Level.SPRINT


def test_a_strategic_goal_cannot_have_a_parent(tree, owner):
    with pytest.raises(ValidationFailed) as exc:
        s.create_goal(
            owner.membership,
            owner.user,
            product_id=tree.product.pk,
            parent_id=tree.s.pk,
            level="strategic",
            title="x",
        )
    assert _field(exc) == "level"


def test_a_child_cannot_sit_above_its_parent(tree, owner):
    with pytest.raises(ValidationFailed) as exc:
        s.create_goal(
            owner.membership,
            owner.user,
            product_id=tree.product.pk,
            parent_id=tree.t.pk,
            level="intermediate",
            title="x",
        )
    assert _field(exc) == "level"
    # the same level as the parent is allowed
    same = s.create_goal(
        owner.membership,
        owner.user,
        product_id=tree.product.pk,
        parent_id=tree.i1.pk,
        level="intermediate",
        title="y",
    )
    assert same.parent == tree.i1


def test_unknown_level_is_refused(tree, owner):
    with pytest.raises(ValidationFailed) as exc:
        s.create_goal(owner.membership, owner.user, product_id=tree.product.pk, level="epic", title="x")
    assert _field(exc) == "level"


def test_parent_must_be_in_the_same_product_tree(tree, owner):
    other = _other_product(owner)
    with pytest.raises(ValidationFailed) as exc:
        s.create_goal(owner.membership, owner.user, product_id=other.pk, parent_id=tree.s.pk, title="x")
    assert _field(exc) == "parent"
    with pytest.raises(ValidationFailed) as exc:
        s.create_goal(owner.membership, owner.user, parent_id=tree.s.pk, title="org-level child")
    assert _field(exc) == "parent"


def test_org_level_goals_form_their_own_tree(owner):
    top = _org_goal(owner)
    child = s.create_goal(owner.membership, owner.user, parent_id=top.pk, title="Org milestone")
    assert child.product is None
    assert child.level == Goal.Level.INTERMEDIATE


def test_target_validation_names_the_field(tree, owner):
    def create(*targets: dict[str, object]) -> None:
        s.create_goal(owner.membership, owner.user, product_id=tree.product.pk, title="x", targets=targets)

    cases = [
        ((_target(), _target(baseline=10, target=5)), "targets.1.target"),
        (
            (_target(), {"name": "down", "baseline": 5, "target": 9, "direction": "decrease"}),
            "targets.1.target",
        ),
        (({"name": "x", "baseline": "lots", "target": 5},), "targets.0.baseline"),
        (({"name": "x", "baseline": 1, "target": float("nan")},), "targets.0.target"),
        (({"name": "x", "baseline": 1, "target": float("inf")},), "targets.0.target"),
        (({"name": "x", "baseline": 1, "target": None},), "targets.0.target"),
        (({"name": "", "baseline": 1, "target": 2},), "targets.0.name"),
        (({"name": "x", "baseline": 1, "target": 2, "direction": "up"},), "targets.0.direction"),
    ]
    before = Goal.objects.count()
    for targets, field in cases:
        with pytest.raises(ValidationFailed) as exc:
            create(*targets)
        assert _field(exc) == field, targets
    assert Goal.objects.count() == before  # nothing half-created


def test_decreasing_target_is_stored(tree, owner):
    goal = s.create_goal(
        owner.membership,
        owner.user,
        product_id=tree.product.pk,
        title="Faster answers",
        targets=[{"name": "reply time", "unit": "h", "baseline": 24, "target": 4, "direction": "decrease"}],
    )
    t = _target_of(goal)
    assert (t.baseline, t.target, t.direction, t.unit) == (24, 4, "decrease", "h")


@pytest.mark.parametrize("bad", ["31/12/2030", "2030-02-30", "soon"])
def test_bad_date_is_refused(tree, owner, bad):
    with pytest.raises(ValidationFailed) as exc:
        s.create_goal(owner.membership, owner.user, product_id=tree.product.pk, title="x", target_date=bad)
    assert _field(exc) == "target_date"


@pytest.mark.parametrize("bad", [0, -1, 1000.5, "heavy", float("nan"), float("inf")])
def test_weight_bounds(tree, owner, bad):
    with pytest.raises(ValidationFailed) as exc:
        s.create_goal(owner.membership, owner.user, product_id=tree.product.pk, title="x", weight=bad)
    assert _field(exc) == "weight"


def test_weight_edges_are_accepted(tree, owner):
    for w in (0.001, 1000):
        goal = s.create_goal(
            owner.membership, owner.user, product_id=tree.product.pk, title=f"w{w}", weight=w
        )
        assert goal.weight == w


@pytest.mark.parametrize("bad", [0, 367, -3, "weekly", None])
def test_cadence_bounds(tree, owner, bad):
    with pytest.raises(ValidationFailed) as exc:
        s.create_goal(
            owner.membership, owner.user, product_id=tree.product.pk, title="x", checkin_cadence_days=bad
        )
    assert _field(exc) == "checkin_cadence_days"
    with pytest.raises(ValidationFailed) as exc:
        s.update_goal(owner.membership, owner.user, tree.s.pk, checkin_cadence_days=bad)
    assert _field(exc) == "checkin_cadence_days"


def test_cadence_edges_are_accepted(tree, owner):
    assert (
        s.update_goal(owner.membership, owner.user, tree.s.pk, checkin_cadence_days=1).checkin_cadence_days
        == 1
    )
    assert (
        s.update_goal(owner.membership, owner.user, tree.s.pk, checkin_cadence_days=366).checkin_cadence_days
        == 366
    )


def test_goal_owner_must_be_a_writing_member(tree, owner, stakeholder, outsider):
    for bad in (stakeholder.user.pk, outsider.user.pk):
        with pytest.raises(ValidationFailed) as exc:
            s.create_goal(owner.membership, owner.user, product_id=tree.product.pk, title="x", owner_id=bad)
        assert _field(exc) == "owner"
        with pytest.raises(ValidationFailed):
            s.update_goal(owner.membership, owner.user, tree.s.pk, owner_id=bad)


def test_update_goal_refuses_unknown_fields_and_stale_versions(tree, owner, member):
    with pytest.raises(ValidationFailed) as exc:
        s.update_goal(owner.membership, owner.user, tree.s.pk, organisation_id=99)
    assert _field(exc) == "organisation_id"
    s.update_goal(owner.membership, owner.user, tree.s.pk, version=1, title="Win small teams, fast")
    with pytest.raises(Conflict):
        s.update_goal(member.membership, member.user, tree.s.pk, version=1, title="Mine")
    assert _reload(tree.s).title == "Win small teams, fast"


def test_level_change_cannot_put_a_child_above_its_parent(tree, owner):
    with pytest.raises(ValidationFailed) as exc:
        s.update_goal(owner.membership, owner.user, tree.i1.pk, level="sprint")  # its child T is tactical
    assert _field(exc) == "level"
    with pytest.raises(ValidationFailed):
        s.update_goal(owner.membership, owner.user, tree.i1.pk, level="strategic")  # it has a parent
    assert s.update_goal(owner.membership, owner.user, tree.i1.pk, level="tactical").level == "tactical"


def test_new_goals_go_last_among_their_siblings(tree, owner):
    third = s.create_goal(
        owner.membership, owner.user, product_id=tree.product.pk, parent_id=tree.s.pk, title="3rd"
    )
    positions = list(
        Goal.objects.filter(parent=tree.s).order_by("position", "id").values_list("title", flat=True)
    )
    assert positions == ["Self-serve onboarding", "Referrals", "3rd"]
    assert third.position > _reload(tree.i2).position


# --- moving goals ---------------------------------------------------------------------------------


def _children(parent: Goal) -> list[tuple[str, int]]:
    return list(
        Goal.objects.filter(parent=parent, archived_at__isnull=True)
        .order_by("position", "id")
        .values_list("title", "position")
    )


def test_reorder_keeps_positions_contiguous(tree, owner):
    i3 = s.create_goal(
        owner.membership, owner.user, product_id=tree.product.pk, parent_id=tree.s.pk, title="I3"
    )
    s.move_goal(owner.membership, owner.user, i3.pk, parent_id=tree.s.pk, position=0)
    assert _children(tree.s) == [("I3", 0), ("Self-serve onboarding", 1), ("Referrals", 2)]
    s.move_goal(owner.membership, owner.user, i3.pk, parent_id=tree.s.pk, position=99)  # clamped to the end
    assert _children(tree.s) == [("Self-serve onboarding", 0), ("Referrals", 1), ("I3", 2)]
    s.move_goal(owner.membership, owner.user, i3.pk, parent_id=tree.s.pk, position=-5)  # clamped to the start
    assert _children(tree.s) == [("I3", 0), ("Self-serve onboarding", 1), ("Referrals", 2)]


def test_reparent_records_history(tree, owner):
    moved = s.move_goal(owner.membership, owner.user, tree.t.pk, parent_id=tree.i2.pk, position=0)
    assert moved.parent == tree.i2
    assert _children(tree.i2) == [("Guided setup", 0)]
    assert _children(tree.i1) == []
    entry = entries_for(owner.membership.organisation, tree.t).filter(action="updated").first()
    assert entry is not None
    assert entry.changes["parent"] == {"old": tree.i1.pk, "new": tree.i2.pk}
    assert _reload(tree.t).version == 2


def test_move_to_the_root(tree, owner):
    moved = s.move_goal(owner.membership, owner.user, tree.t.pk, parent_id=None)
    assert moved.parent is None
    assert moved.product == tree.product


def test_moving_a_goal_under_its_own_descendant_is_refused(tree, owner):
    deeper = s.create_goal(
        owner.membership,
        owner.user,
        product_id=tree.product.pk,
        parent_id=tree.i1.pk,
        level="intermediate",
        title="Deeper",
    )
    with pytest.raises(ValidationFailed) as exc:
        s.move_goal(owner.membership, owner.user, tree.i1.pk, parent_id=deeper.pk)
    assert _field(exc) == "parent"
    with pytest.raises(ValidationFailed):
        s.move_goal(owner.membership, owner.user, tree.i1.pk, parent_id=tree.i1.pk)
    assert _reload(tree.i1).parent == tree.s


def test_move_respects_levels_and_products(tree, owner):
    second_root = s.create_goal(owner.membership, owner.user, product_id=tree.product.pk, title="Second root")
    with pytest.raises(ValidationFailed) as exc:
        s.move_goal(owner.membership, owner.user, second_root.pk, parent_id=tree.i2.pk)
    assert _field(exc) == "level"
    s.move_goal(owner.membership, owner.user, tree.t.pk, parent_id=tree.s.pk, position=0)
    s.update_goal(owner.membership, owner.user, tree.t.pk, level="intermediate")
    s.move_goal(owner.membership, owner.user, tree.t.pk, parent_id=tree.i2.pk)  # fine: same level
    with pytest.raises(ValidationFailed) as exc:
        s.move_goal(owner.membership, owner.user, tree.i2.pk, parent_id=tree.t.pk)  # a cycle
    assert _field(exc) == "parent"
    other = _other_product(owner)
    foreign = s.create_goal(owner.membership, owner.user, product_id=other.pk, title="Beacon goal")
    with pytest.raises(ValidationFailed) as exc:
        s.move_goal(owner.membership, owner.user, tree.t.pk, parent_id=foreign.pk)
    assert _field(exc) == "parent"


def test_cycle_across_parent_and_alignment_edges_is_refused(tree, owner):
    org_goal = _org_goal(owner)
    s.link_goals(owner.membership, owner.user, tree.s.pk, org_goal.pk, "aligns")  # S counts toward O
    with pytest.raises(ValidationFailed) as exc:
        s.link_goals(owner.membership, owner.user, org_goal.pk, tree.t.pk, "aligns")  # O toward T under S
    assert _field(exc) == "target"
    assert not GoalLink.objects.filter(source=org_goal).exists()


def test_cycle_through_an_org_tree_by_moving_is_refused(tree, owner):
    org_top = _org_goal(owner, level="intermediate")
    org_child = s.create_goal(owner.membership, owner.user, parent_id=org_top.pk, title="Org milestone")
    other = s.create_goal(owner.membership, owner.user, title="Another org goal", level="intermediate")
    # Atlas S counts toward the org milestone; "other" counts toward S
    s.link_goals(owner.membership, owner.user, tree.s.pk, org_child.pk, "aligns")
    s.link_goals(owner.membership, owner.user, other.pk, tree.s.pk, "aligns")
    # putting the org top under "other" would make: other -> S -> milestone -> top -> other
    with pytest.raises(ValidationFailed) as exc:
        s.move_goal(owner.membership, owner.user, org_top.pk, parent_id=other.pk)
    assert _field(exc) == "parent"
    assert "cycle" in exc.value.message
    assert _reload(org_top).parent is None


# --- links ----------------------------------------------------------------------------------------


def test_aligning_within_the_same_product_is_refused(tree, owner):
    with pytest.raises(ValidationFailed) as exc:
        s.link_goals(owner.membership, owner.user, tree.t.pk, tree.i2.pk, "aligns")
    assert _field(exc) == "target"


def test_duplicate_link_is_a_conflict(tree, owner):
    org_goal = _org_goal(owner)
    s.link_goals(owner.membership, owner.user, tree.s.pk, org_goal.pk, "aligns")
    with pytest.raises(Conflict):
        s.link_goals(owner.membership, owner.user, tree.s.pk, org_goal.pk, "aligns")
    s.link_goals(owner.membership, owner.user, tree.s.pk, org_goal.pk, "relates")  # another kind is fine
    assert GoalLink.objects.filter(source=tree.s).count() == 2


def test_self_link_is_refused(tree, owner):
    for kind in ("aligns", "relates"):
        with pytest.raises(ValidationFailed) as exc:
            s.link_goals(owner.membership, owner.user, tree.s.pk, tree.s.pk, kind)
        assert _field(exc) == "target"


def test_unknown_link_kind_is_refused(tree, owner):
    org_goal = _org_goal(owner)
    with pytest.raises(ValidationFailed) as exc:
        s.link_goals(owner.membership, owner.user, tree.s.pk, org_goal.pk, "blocks")
    assert _field(exc) == "kind"


def test_relates_is_allowed_anywhere(tree, owner):
    link = s.link_goals(owner.membership, owner.user, tree.t.pk, tree.i2.pk, "relates")
    assert link.kind == "relates"
    other = _other_product(owner)
    foreign = s.create_goal(owner.membership, owner.user, product_id=other.pk, title="Beacon goal")
    s.link_goals(owner.membership, owner.user, foreign.pk, tree.t.pk, "relates")
    links = s.links_of(owner.membership, tree.t)
    assert [lk.target for lk in links["out"]] == [tree.i2]
    assert [lk.source for lk in links["in"]] == [foreign]


def test_aligning_to_a_goal_it_already_counts_toward_is_refused(tree, owner):
    org_goal = _org_goal(owner)
    s.link_goals(owner.membership, owner.user, tree.s.pk, org_goal.pk, "aligns")
    with pytest.raises(ValidationFailed):
        s.link_goals(owner.membership, owner.user, tree.t.pk, org_goal.pk, "aligns")


def test_unlink_records_history(tree, owner, member):
    org_goal = _org_goal(owner)
    link = s.link_goals(owner.membership, owner.user, tree.s.pk, org_goal.pk, "aligns")
    s.unlink_goals(member.membership, member.user, link.pk)
    assert not GoalLink.objects.exists()
    changes = [e.changes for e in entries_for(owner.membership.organisation, tree.s)]
    assert {"link:aligns": {"old": f"#{org_goal.pk} {org_goal.title}", "new": None}} in changes
    assert {"link:aligns": {"old": None, "new": f"#{org_goal.pk} {org_goal.title}"}} in changes
    with pytest.raises(NotFound):
        s.unlink_goals(member.membership, member.user, link.pk)


# --- archive --------------------------------------------------------------------------------------


def test_archive_is_refused_while_the_goal_has_live_children(tree, owner):
    with pytest.raises(ValidationFailed) as exc:
        s.archive_goal(owner.membership, owner.user, tree.i1.pk)
    assert _field(exc) == "archived"
    s.archive_goal(owner.membership, owner.user, tree.t.pk)
    s.archive_goal(owner.membership, owner.user, tree.i1.pk)
    assert _reload(tree.i1).archived_at is not None
    assert [r.goal for r in s.whole_tree(owner.membership, tree.product.pk)] == [tree.s, tree.i2]


def test_restore_an_archived_goal(tree, owner):
    s.archive_goal(owner.membership, owner.user, tree.t.pk)
    restored = s.archive_goal(owner.membership, owner.user, tree.t.pk, archived=False)
    assert restored.archived_at is None
    entries = entries_for(owner.membership.organisation, tree.t).filter(action="updated")
    assert entries.count() == 2
    assert all("archived_at" in e.changes for e in entries)


# --- progress -------------------------------------------------------------------------------------


def test_progress_rolls_up_through_children_with_weights(tree, owner):
    s.update_goal(owner.membership, owner.user, tree.i2.pk, weight=3)
    _observe(owner, tree.t, 5)  # T: 0.5 -> I1 (no own observation) rolls up to 0.5
    _observe(owner, tree.i2, 10)  # I2: 1.0
    progress = s.progress_for_org(owner.membership.organisation_id)
    assert progress[tree.t.pk].value == pytest.approx(0.5)
    assert progress[tree.i1.pk].measured is None
    assert progress[tree.i1.pk].value == pytest.approx(0.5)
    assert progress[tree.s.pk].value == pytest.approx((0.5 * 1 + 1.0 * 3) / 4)


def test_abandoned_and_archived_goals_do_not_count(tree, owner):
    _observe(owner, tree.t, 5)
    _observe(owner, tree.i2, 10)
    s.update_goal(owner.membership, owner.user, tree.i2.pk, status="abandoned")
    assert s.progress_for_org(owner.membership.organisation_id)[tree.s.pk].value == pytest.approx(0.5)
    s.update_goal(owner.membership, owner.user, tree.i2.pk, status="active")
    s.archive_goal(owner.membership, owner.user, tree.i2.pk)
    progress = s.progress_for_org(owner.membership.organisation_id)
    assert progress[tree.s.pk].value == pytest.approx(0.5)
    assert tree.i2.pk not in progress


def test_measured_progress_wins_over_the_rollup(tree, owner):
    _observe(owner, tree.t, 10)
    _observe(owner, tree.i1, 2)
    assert s.progress_for_org(owner.membership.organisation_id)[tree.i1.pk].value == pytest.approx(0.2)


def test_latest_observation_by_observed_at_wins(tree, owner):
    now = timezone.now()
    _observe(owner, tree.t, 8, now - dt.timedelta(days=1))
    _observe(owner, tree.t, 2, now - dt.timedelta(days=10))  # recorded later, observed earlier
    assert s.progress_for_org(owner.membership.organisation_id)[tree.t.pk].value == pytest.approx(0.8)


def test_observation_in_the_future_is_refused(tree, owner):
    with pytest.raises(ValidationFailed) as exc:
        _observe(owner, tree.t, 8, timezone.now() + dt.timedelta(days=1))
    assert _field(exc) == "observed_at"


def test_progress_rolls_up_through_aligned_goals_of_another_product(tree, owner):
    org_goal = _org_goal(owner)
    other = _other_product(owner)
    beacon = s.create_goal(
        owner.membership, owner.user, product_id=other.pk, title="Beacon goal", targets=[_target()], weight=3
    )
    s.link_goals(owner.membership, owner.user, tree.s.pk, org_goal.pk, "aligns")
    s.link_goals(owner.membership, owner.user, beacon.pk, org_goal.pk, "aligns")
    _observe(owner, tree.i2, 10)  # S = mean(I1 unknown, I2 1.0) = 1.0
    _observe(owner, beacon, 0)  # Beacon 0.0, weight 3
    progress = s.progress_for_org(owner.membership.organisation_id)
    assert progress[tree.s.pk].value == pytest.approx(1.0)
    assert progress[org_goal.pk].value == pytest.approx((1.0 * 1 + 0.0 * 3) / 4)


def test_related_goals_do_not_roll_up(tree, owner):
    org_goal = _org_goal(owner)
    s.link_goals(owner.membership, owner.user, tree.s.pk, org_goal.pk, "relates")
    _observe(owner, tree.i2, 10)
    assert s.progress_for_org(owner.membership.organisation_id)[org_goal.pk].value is None


def test_progress_of_a_decreasing_target(tree, owner):
    goal = s.create_goal(
        owner.membership,
        owner.user,
        product_id=tree.product.pk,
        title="Faster answers",
        targets=[{"name": "reply time", "baseline": 24, "target": 4, "direction": "decrease"}],
    )
    _observe(owner, goal, 14)
    assert s.progress_for_org(owner.membership.organisation_id)[goal.pk].value == pytest.approx(0.5)


# --- check-ins ------------------------------------------------------------------------------------


def test_goal_owner_checks_in_with_a_value(tree, member):
    target = _target_of(tree.t)
    checkin = s.check_in(
        member.membership,
        member.user,
        tree.t.pk,
        status="on_track",
        confidence=7,
        narrative="Going well",
        target_id=target.pk,
        value="6",
    )
    assert (checkin.status, checkin.confidence, checkin.author) == ("on_track", 7, member.user)
    assert checkin.observation is not None
    assert checkin.observation.value == 6
    assert checkin.observation.target_measure == target
    assert s.progress_for_org(member.membership.organisation_id)[tree.t.pk].value == pytest.approx(0.6)
    changes = [e.changes for e in entries_for(member.membership.organisation, tree.t)]
    assert any("check-in" in c for c in changes)


def test_admin_may_check_in_for_the_owner(tree, admin, owner):
    assert (
        s.check_in(admin.membership, admin.user, tree.t.pk, status="at_risk", confidence=3).author
        == admin.user
    )
    assert s.check_in(owner.membership, owner.user, tree.t.pk, status="at_risk", confidence=3)


def test_another_member_may_not_check_in(tree, owner, admin, member):
    s.update_goal(owner.membership, owner.user, tree.t.pk, owner_id=admin.user.pk)
    with pytest.raises(Forbidden):
        s.check_in(member.membership, member.user, tree.t.pk, status="on_track", confidence=5)
    assert not CheckIn.objects.exists()


def test_stakeholder_may_not_check_in(tree, stakeholder):
    with pytest.raises(Forbidden):
        s.check_in(stakeholder.membership, stakeholder.user, tree.t.pk, status="on_track", confidence=5)


@pytest.mark.parametrize("status", ["proposed", "achieved", "missed", "abandoned"])
def test_check_ins_are_only_for_active_goals(tree, owner, member, status):
    s.update_goal(owner.membership, owner.user, tree.t.pk, status=status)
    with pytest.raises(ValidationFailed) as exc:
        s.check_in(member.membership, member.user, tree.t.pk, status="on_track", confidence=5)
    assert _field(exc) == "status"


@pytest.mark.parametrize("bad", [-1, 11, "high", None])
def test_confidence_is_zero_to_ten(tree, member, bad):
    with pytest.raises(ValidationFailed) as exc:
        s.check_in(member.membership, member.user, tree.t.pk, status="on_track", confidence=bad)
    assert _field(exc) == "confidence"


def test_confidence_edges_and_status_choice(tree, member):
    s.check_in(member.membership, member.user, tree.t.pk, status="on_track", confidence=0)
    s.check_in(member.membership, member.user, tree.t.pk, status="off_track", confidence=10)
    with pytest.raises(ValidationFailed) as exc:
        s.check_in(member.membership, member.user, tree.t.pk, status="fine", confidence=5)
    assert _field(exc) == "status"


def test_check_in_value_must_be_for_one_of_the_goals_own_targets(tree, member, outsider):
    foreign_target = _target_of(tree.i2)
    with pytest.raises(ValidationFailed) as exc:
        s.check_in(
            member.membership,
            member.user,
            tree.t.pk,
            status="on_track",
            confidence=5,
            target_id=foreign_target.pk,
            value=3,
        )
    assert _field(exc) == "target"
    with pytest.raises(ValidationFailed) as exc:
        s.check_in(member.membership, member.user, tree.t.pk, status="on_track", confidence=5, value=3)
    assert _field(exc) == "target"
    with pytest.raises(ValidationFailed) as exc:
        s.check_in(
            member.membership,
            member.user,
            tree.t.pk,
            status="on_track",
            confidence=5,
            target_id=_target_of(tree.t).pk,
        )
    assert _field(exc) == "value"
    assert not TargetObservation.objects.exists()
    assert not CheckIn.objects.exists()


# --- overdue check-ins ----------------------------------------------------------------------------


def test_overdue_is_counted_from_creation_then_from_the_last_check_in(tree, owner, member):
    t0 = timezone.now() - dt.timedelta(days=30)
    Goal.objects.filter(organisation_id=owner.membership.organisation_id).update(created_at=t0)
    due = {o.goal.pk: o for o in s.overdue_checkins(owner.membership, now=t0 + dt.timedelta(days=8))}
    assert set(due) == {tree.s.pk, tree.i1.pk, tree.i2.pk, tree.t.pk}
    assert due[tree.t.pk].last_checkin is None
    assert due[tree.t.pk].due == t0 + dt.timedelta(days=7)
    assert due[tree.t.pk].days_overdue == 1
    assert s.overdue_checkins(owner.membership, now=t0 + dt.timedelta(days=6)) == []

    checkin = s.check_in(member.membership, member.user, tree.t.pk, status="on_track", confidence=5)
    CheckIn.objects.filter(pk=checkin.pk).update(created_at=t0 + dt.timedelta(days=5))
    due_ids = {o.goal.pk for o in s.overdue_checkins(owner.membership, now=t0 + dt.timedelta(days=8))}
    assert tree.t.pk not in due_ids
    later = s.overdue_checkins(owner.membership, now=t0 + dt.timedelta(days=13))
    t_row = next(o for o in later if o.goal.pk == tree.t.pk)
    assert t_row.last_checkin == t0 + dt.timedelta(days=5)


def test_overdue_respects_each_goals_cadence_and_status(tree, owner):
    t0 = timezone.now() - dt.timedelta(days=30)
    Goal.objects.filter(organisation_id=owner.membership.organisation_id).update(created_at=t0)
    s.update_goal(owner.membership, owner.user, tree.s.pk, checkin_cadence_days=30)
    s.update_goal(owner.membership, owner.user, tree.i2.pk, status="achieved")
    due_ids = {o.goal.pk for o in s.overdue_checkins(owner.membership, now=t0 + dt.timedelta(days=8))}
    assert due_ids == {tree.i1.pk, tree.t.pk}


def test_overdue_filters_by_product_and_owner(tree, owner, admin):
    other = _other_product(owner)
    beacon = s.create_goal(
        owner.membership,
        owner.user,
        product_id=other.pk,
        title="Beacon goal",
        status="active",
        owner_id=admin.user.pk,
    )
    t0 = timezone.now() - dt.timedelta(days=30)
    Goal.objects.filter(organisation_id=owner.membership.organisation_id).update(created_at=t0)
    now = t0 + dt.timedelta(days=8)
    by_product = {o.goal.pk for o in s.overdue_checkins(owner.membership, product_id=other.pk, now=now)}
    assert by_product == {beacon.pk}
    by_owner = {o.goal.pk for o in s.overdue_checkins(owner.membership, owner_id=admin.user.pk, now=now)}
    assert by_owner == {beacon.pk}
    assert len(s.overdue_checkins(owner.membership, now=now)) == 5


def test_overdue_of_another_organisation_is_not_listed(tree, outsider):
    now = timezone.now() + dt.timedelta(days=100)
    assert s.overdue_checkins(outsider.membership, now=now) == []
    assert s.overdue_checkins(outsider.membership, product_id=tree.product.pk, now=now) == []


# --- lint through the services --------------------------------------------------------------------


def test_lint_scopes_and_skips(tree, owner):
    bare = s.create_goal(owner.membership, owner.user, product_id=tree.product.pk, title="Bare")
    org_goal = _org_goal(owner)
    rules_by_goal: dict[int, set[str]] = {}
    for goal, finding in s.lint(owner.membership, product_id=tree.product.pk, today=dt.date(2026, 1, 1)):
        rules_by_goal.setdefault(goal.pk, set()).add(finding.rule)
    assert set(rules_by_goal) == {bare.pk}
    assert rules_by_goal[bare.pk] == {"no-measure", "no-owner", "no-date", "vague-outcome"}

    assert {g.pk for g, _ in s.lint(owner.membership, goal_id=org_goal.pk)} == {org_goal.pk}
    assert {g.pk for g, _ in s.lint(owner.membership, org_level=True)} == {org_goal.pk}
    assert {g.pk for g, _ in s.lint(owner.membership)} == {bare.pk, org_goal.pk}

    s.update_goal(owner.membership, owner.user, bare.pk, status="abandoned")
    s.archive_goal(owner.membership, owner.user, org_goal.pk)
    assert s.lint(owner.membership) == []


def test_lint_sees_past_dates_and_dates_after_the_parent(tree, owner):
    s.update_goal(owner.membership, owner.user, tree.t.pk, target_date="2031-06-30")
    found = {(g.pk, f.rule) for g, f in s.lint(owner.membership, today=dt.date(2031, 1, 1))}
    assert (tree.t.pk, "date-after-parent") in found
    assert (tree.s.pk, "past-date") in found
    assert (tree.t.pk, "past-date") not in found


def test_lint_of_another_organisation_finds_nothing_here(tree, owner, outsider):
    s.create_goal(owner.membership, owner.user, product_id=tree.product.pk, title="Bare")
    assert s.lint(outsider.membership, product_id=tree.product.pk) == []
    assert s.lint(outsider.membership, goal_id=tree.s.pk) == []


# --- comments and mentions ------------------------------------------------------------------------


def _notes(persona) -> list[str]:
    return list(Notification.objects.filter(user=persona.user).values_list("text", flat=True))


def test_stakeholder_may_comment_and_the_owner_is_notified(tree, stakeholder, member):
    comment = s.add_comment(stakeholder.membership, stakeholder.user, tree.t.pk, "  Love this.  ")
    assert comment.body == "Love this."
    assert list(s.comments_of(member.membership, tree.t)) == [comment]
    assert _notes(member) == ["Stakeholder A commented on your goal “Guided setup”"]


def test_empty_comment_is_refused(tree, member):
    with pytest.raises(ValidationFailed) as exc:
        s.add_comment(member.membership, member.user, tree.t.pk, "   ")
    assert _field(exc) == "body"


def test_mention_notifies_a_member_once(tree, stakeholder, admin, member):
    s.add_comment(
        stakeholder.membership, stakeholder.user, tree.t.pk, "@admin@a.example and again @ADMIN@a.example."
    )
    assert len(_notes(admin)) == 1
    assert "mentioned you" in _notes(admin)[0]
    assert len(_notes(member)) == 1  # the goal owner, once


def test_mentioning_the_owner_notifies_them_once(tree, stakeholder, member):
    s.add_comment(stakeholder.membership, stakeholder.user, tree.t.pk, "@member@a.example what do you think?")
    assert len(_notes(member)) == 1


def test_mentioning_an_outsider_notifies_nobody_and_reveals_nothing(tree, stakeholder, outsider, member):
    comment = s.add_comment(stakeholder.membership, stakeholder.user, tree.t.pk, "cc @outsider@b.example")
    assert comment.pk
    assert Notification.objects.filter(user=outsider.user).count() == 0
    assert Notification.objects.exclude(user=member.user).count() == 0


def test_the_actor_never_notifies_themself(tree, member):
    s.add_comment(member.membership, member.user, tree.t.pk, "Note to self @member@a.example")
    assert Notification.objects.count() == 0


def test_outsider_cannot_comment(tree, outsider):
    with pytest.raises(NotFound):
        s.add_comment(outsider.membership, outsider.user, tree.t.pk, "hello")
    assert not Comment.objects.exists()


# --- change proposals -----------------------------------------------------------------------------


def test_stakeholder_proposes_and_the_owner_is_notified(tree, stakeholder, member):
    proposal = s.propose_change(
        stakeholder.membership, stakeholder.user, tree.t.pk, {"title": "Guided setup in 5 minutes"}, "clearer"
    )
    assert proposal.state == "open"
    assert proposal.changes == {"title": "Guided setup in 5 minutes"}
    assert proposal.goal_version == 1
    assert _reload(tree.t).title == "Guided setup"  # nothing applied yet
    assert any("proposed a change" in n for n in _notes(member))
    assert entries_for(stakeholder.membership.organisation, proposal).get().action == "created"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({}, "changes"),
        ({"level": "sprint"}, "level"),
        ({"owner": 1}, "owner"),
        ({"title": "Guided setup"}, "changes"),
        ({"target_date": "2030-12-31"}, "changes"),
        ({"title": ""}, "title"),
        ({"target_date": "someday"}, "target_date"),
        ({"targets": "more"}, "targets"),
        ({"targets": {"abc": {"target": 3}}}, "targets"),
    ],
)
def test_bad_proposals_are_refused(tree, stakeholder, changes, field):
    with pytest.raises(ValidationFailed) as exc:
        s.propose_change(stakeholder.membership, stakeholder.user, tree.t.pk, changes)
    assert _field(exc) == field
    assert not ChangeProposal.objects.exists()


def test_proposing_the_current_target_is_a_no_op(tree, stakeholder):
    target = _target_of(tree.t)
    with pytest.raises(ValidationFailed) as exc:
        s.propose_change(
            stakeholder.membership, stakeholder.user, tree.t.pk, {"targets": {str(target.pk): {"target": 10}}}
        )
    assert _field(exc) == "changes"


def test_proposing_a_target_of_another_goal_is_refused(tree, stakeholder):
    foreign = _target_of(tree.i2)
    with pytest.raises(ValidationFailed) as exc:
        s.propose_change(
            stakeholder.membership,
            stakeholder.user,
            tree.t.pk,
            {"targets": {str(foreign.pk): {"target": 20}}},
        )
    assert _field(exc) == "targets"


def test_proposing_a_target_in_the_wrong_direction_is_refused(tree, stakeholder):
    target = _target_of(tree.t)
    with pytest.raises(ValidationFailed):
        s.propose_change(
            stakeholder.membership, stakeholder.user, tree.t.pk, {"targets": {str(target.pk): {"target": -5}}}
        )


def test_owner_accepts_and_the_change_is_applied(tree, stakeholder, member):
    target = _target_of(tree.t)
    proposal = s.propose_change(
        stakeholder.membership,
        stakeholder.user,
        tree.t.pk,
        {
            "title": "Setup in 5 minutes",
            "target_date": "2030-06-30",
            "targets": {str(target.pk): {"target": 20}},
        },
    )
    decided = s.decide_proposal(member.membership, member.user, proposal.pk, accept=True)
    assert (decided.state, decided.decided_by) == ("accepted", member.user)
    assert decided.decided_at is not None
    goal = _reload(tree.t)
    assert (goal.title, goal.target_date) == ("Setup in 5 minutes", dt.date(2030, 6, 30))
    assert _reload(target).target == 20
    assert goal.version > 1
    changes = [e.changes for e in entries_for(member.membership.organisation, goal).filter(action="updated")]
    assert any(c.get("title") == {"old": "Guided setup", "new": "Setup in 5 minutes"} for c in changes)
    assert any("targets" in c and "20" in c["targets"]["new"] for c in changes)
    assert all(
        e.actor == member.user
        for e in entries_for(member.membership.organisation, goal).filter(action="updated")
    )
    assert any("accepted your proposal" in n for n in _notes(stakeholder))


def test_reject_needs_a_reason(tree, stakeholder, member):
    proposal = s.propose_change(stakeholder.membership, stakeholder.user, tree.t.pk, {"title": "Other"})
    with pytest.raises(ValidationFailed) as exc:
        s.decide_proposal(member.membership, member.user, proposal.pk, accept=False, reason="  ")
    assert _field(exc) == "reason"
    assert _reload(proposal).state == "open"
    decided = s.decide_proposal(member.membership, member.user, proposal.pk, accept=False, reason="Too vague")
    assert (decided.state, decided.decision_reason) == ("rejected", "Too vague")
    assert _reload(tree.t).title == "Guided setup"
    assert _reload(tree.t).version == 1


def test_only_the_goal_owner_or_an_admin_decides(tree, owner, admin, member, stakeholder):
    s.update_goal(owner.membership, owner.user, tree.t.pk, owner_id=admin.user.pk)
    proposal = s.propose_change(stakeholder.membership, stakeholder.user, tree.t.pk, {"title": "Other"})
    for persona in (member, stakeholder):
        with pytest.raises(Forbidden):
            s.decide_proposal(persona.membership, persona.user, proposal.pk, accept=True)
    assert _reload(tree.t).title == "Guided setup"
    s.decide_proposal(owner.membership, owner.user, proposal.pk, accept=True)  # the org owner is an admin
    assert _reload(tree.t).title == "Other"


def test_deciding_twice_is_a_conflict(tree, stakeholder, member):
    proposal = s.propose_change(stakeholder.membership, stakeholder.user, tree.t.pk, {"title": "Other"})
    s.decide_proposal(member.membership, member.user, proposal.pk, accept=True)
    with pytest.raises(Conflict):
        s.decide_proposal(member.membership, member.user, proposal.pk, accept=False, reason="changed my mind")
    assert _reload(proposal).state == "accepted"


def test_withdraw_by_the_author_only(tree, stakeholder, member, admin):
    proposal = s.propose_change(stakeholder.membership, stakeholder.user, tree.t.pk, {"title": "Other"})
    for persona in (member, admin):
        with pytest.raises(Forbidden):
            s.withdraw_proposal(persona.membership, persona.user, proposal.pk)
    assert s.withdraw_proposal(stakeholder.membership, stakeholder.user, proposal.pk).state == "withdrawn"
    with pytest.raises(Conflict):
        s.withdraw_proposal(stakeholder.membership, stakeholder.user, proposal.pk)
    with pytest.raises(Conflict):
        s.decide_proposal(member.membership, member.user, proposal.pk, accept=True)
    assert _reload(tree.t).title == "Guided setup"


def test_no_proposals_on_archived_goals(tree, owner, stakeholder):
    s.archive_goal(owner.membership, owner.user, tree.t.pk)
    with pytest.raises(ValidationFailed):
        s.propose_change(stakeholder.membership, stakeholder.user, tree.t.pk, {"title": "Other"})


# --- endorsements and concerns --------------------------------------------------------------------


def test_one_standing_endorsement_per_person(tree, stakeholder):
    first = s.endorse(stakeholder.membership, stakeholder.user, tree.t.pk, "yes")
    again = s.endorse(stakeholder.membership, stakeholder.user, tree.t.pk, "yes, absolutely")
    assert first.pk == again.pk
    assert Endorsement.objects.get().note == "yes, absolutely"


def test_withdraw_endorsement_and_endorse_again(tree, stakeholder):
    s.endorse(stakeholder.membership, stakeholder.user, tree.t.pk)
    s.withdraw_endorsement(stakeholder.membership, stakeholder.user, tree.t.pk)
    assert Endorsement.objects.get().resolved_at is not None
    with pytest.raises(NotFound):
        s.withdraw_endorsement(stakeholder.membership, stakeholder.user, tree.t.pk)
    s.endorse(stakeholder.membership, stakeholder.user, tree.t.pk)
    assert Endorsement.objects.filter(resolved_at__isnull=True).count() == 1
    assert Endorsement.objects.count() == 2


def test_concern_needs_a_note_and_notifies_the_owner(tree, stakeholder, member):
    with pytest.raises(ValidationFailed) as exc:
        s.raise_concern(stakeholder.membership, stakeholder.user, tree.t.pk, "  ")
    assert _field(exc) == "note"
    s.raise_concern(stakeholder.membership, stakeholder.user, tree.t.pk, "Too ambitious")
    s.raise_concern(
        stakeholder.membership, stakeholder.user, tree.t.pk, "And too late"
    )  # concerns may be many
    assert Endorsement.objects.filter(kind="concern").count() == 2
    assert sum("raised a concern" in n for n in _notes(member)) == 2


@pytest.mark.parametrize("who", ["stakeholder", "member", "admin"])
def test_concern_is_resolved_by_its_author_the_goal_owner_or_an_admin(tree, request, stakeholder, who):
    concern = s.raise_concern(stakeholder.membership, stakeholder.user, tree.t.pk, "Too ambitious")
    persona = request.getfixturevalue(who)
    resolved = s.resolve_concern(persona.membership, persona.user, concern.pk, "Talked it through")
    assert (resolved.resolved_by, resolved.resolution) == (persona.user, "Talked it through")
    with pytest.raises(Conflict):
        s.resolve_concern(persona.membership, persona.user, concern.pk, "again")


def test_another_person_cannot_resolve_a_concern(tree, owner, stakeholder, admin, member):
    s.update_goal(owner.membership, owner.user, tree.t.pk, owner_id=admin.user.pk)
    concern = s.raise_concern(stakeholder.membership, stakeholder.user, tree.t.pk, "Too ambitious")
    with pytest.raises(Forbidden):
        s.resolve_concern(member.membership, member.user, concern.pk, "no")
    with pytest.raises(ValidationFailed) as exc:
        s.resolve_concern(stakeholder.membership, stakeholder.user, concern.pk, " ")
    assert _field(exc) == "resolution"
    assert _reload(concern).resolved_at is None


def test_an_endorsement_is_not_a_concern_to_resolve(tree, stakeholder):
    endorsement = s.endorse(stakeholder.membership, stakeholder.user, tree.t.pk)
    with pytest.raises(NotFound):
        s.resolve_concern(stakeholder.membership, stakeholder.user, endorsement.pk, "done")


# --- work items and orphan work -------------------------------------------------------------------


def test_work_item_keys_are_unique_per_product(tree, owner, member):
    s.create_work_item(member.membership, member.user, tree.product.pk, title="Wizard", external_key="AT-1")
    with pytest.raises(Conflict) as exc:
        s.create_work_item(
            member.membership, member.user, tree.product.pk, title="Again", external_key="AT-1"
        )
    assert _field(exc) == "external_key"
    other = _other_product(owner)
    s.create_work_item(
        member.membership, member.user, other.pk, title="Same key elsewhere", external_key="AT-1"
    )
    s.create_work_item(member.membership, member.user, tree.product.pk, title="No key 1")
    s.create_work_item(member.membership, member.user, tree.product.pk, title="No key 2")
    assert WorkItem.objects.count() == 4


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://example.com/x", "example.com"])
def test_work_item_url_must_be_http(tree, member, url):
    with pytest.raises(ValidationFailed) as exc:
        s.create_work_item(member.membership, member.user, tree.product.pk, title="x", url=url)
    assert _field(exc) == "url"


def test_work_item_goal_must_be_in_the_organisation(tree, member, outsider):
    theirs = s.create_goal(outsider.membership, outsider.user, title="Bravo goal")
    with pytest.raises(ValidationFailed) as exc:
        s.create_work_item(member.membership, member.user, tree.product.pk, title="x", goal_id=theirs.pk)
    assert _field(exc) == "goal"
    assert "Bravo" not in exc.value.message


def test_link_and_unlink_work_item_and_orphan_report(tree, member):
    linked = s.create_work_item(
        member.membership, member.user, tree.product.pk, title="Wizard", goal_id=tree.t.pk
    )
    loose = s.create_work_item(member.membership, member.user, tree.product.pk, title="Refactor")
    s.create_work_item(member.membership, member.user, tree.product.pk, title="Spike")
    report = s.orphan_report(member.membership, tree.product.pk)
    assert (report.total, report.linked, report.orphans) == (3, 1, 2)
    assert report.orphan_share == pytest.approx(2 / 3)
    assert list(s.work_items_of(member.membership, orphans=True).order_by("id")) == list(
        WorkItem.objects.filter(goal__isnull=True).order_by("id")
    )

    s.link_work_item(member.membership, member.user, loose.pk, tree.i2.pk)
    s.link_work_item(member.membership, member.user, linked.pk, None)
    report = s.orphan_report(member.membership, tree.product.pk)
    assert (report.total, report.linked, report.orphans) == (3, 1, 2)
    assert _reload(loose).goal == tree.i2
    assert _reload(linked).goal is None
    t_changes = [e.changes for e in entries_for(member.membership.organisation, tree.t)]
    assert {"work item": {"old": "Wizard", "new": None}} in t_changes
    i2_changes = [e.changes for e in entries_for(member.membership.organisation, tree.i2)]
    assert {"work item": {"old": None, "new": "Refactor"}} in i2_changes


def test_orphan_report_of_an_empty_product(tree, member):
    report = s.orphan_report(member.membership, tree.product.pk)
    assert (report.total, report.linked, report.orphans, report.orphan_share) == (0, 0, 0, None)


# --- alignment ------------------------------------------------------------------------------------


def test_alignment_lists_serving_goals_and_unaligned_roots(tree, owner):
    org_a = _org_goal(owner, "Org A")
    org_b = _org_goal(owner, "Org B")
    other = _other_product(owner)
    beacon_root = s.create_goal(owner.membership, owner.user, product_id=other.pk, title="Beacon root")
    beacon_child = s.create_goal(
        owner.membership, owner.user, product_id=other.pk, parent_id=beacon_root.pk, title="Beacon child"
    )
    lonely = _other_product(owner, "Comet")
    comet_root = s.create_goal(owner.membership, owner.user, product_id=lonely.pk, title="Comet root")
    s.link_goals(owner.membership, owner.user, tree.s.pk, org_a.pk, "aligns")
    s.link_goals(owner.membership, owner.user, beacon_root.pk, org_a.pk, "aligns")
    s.link_goals(owner.membership, owner.user, beacon_child.pk, org_b.pk, "relates")  # does not serve

    result = s.alignment(owner.membership)
    served = {g.title: [x.title for x in goals] for g, goals in result.org_goals}
    assert served == {"Org A": ["Win small teams", "Beacon root"], "Org B": []}
    assert [g.pk for g in result.unaligned] == [comet_root.pk]


def test_alignment_of_another_organisation_is_empty(tree, owner, outsider):
    _org_goal(owner)
    result = s.alignment(outsider.membership)
    assert result.org_goals == [] and result.unaligned == []


# --- history --------------------------------------------------------------------------------------


def test_goal_creation_and_update_are_recorded_with_actor_and_values(tree, owner, member):
    org = owner.membership.organisation
    created = entries_for(org, tree.t).get()
    assert (created.action, created.actor) == ("created", owner.user)
    assert created.changes["title"] == {"old": None, "new": "Guided setup"}
    assert created.changes["owner"] == {"old": None, "new": member.user.email}
    assert created.changes["parent"] == {"old": None, "new": tree.i1.pk}
    assert created.changes["targets"]["new"] == ["Guided setup score: 0 → 10 (↑)"]

    s.update_goal(
        member.membership, member.user, tree.t.pk, title="Guided setup v2", weight=2, target_date=None
    )
    updated = entries_for(org, tree.t).filter(action="updated").get()
    assert updated.actor == member.user
    assert updated.changes == {
        "title": {"old": "Guided setup", "new": "Guided setup v2"},
        "weight": {"old": 1.0, "new": 2.0},
        "target_date": {"old": "2030-12-31", "new": None},
    }


def test_goal_update_that_changes_nothing_records_nothing(tree, owner):
    s.update_goal(
        owner.membership, owner.user, tree.t.pk, title="Guided setup", weight=1, target_date="2030-12-31"
    )
    assert entries_for(owner.membership.organisation, tree.t).count() == 1
    assert _reload(tree.t).version == 1
    s.move_goal(owner.membership, owner.user, tree.t.pk, parent_id=tree.i1.pk, position=0)
    assert entries_for(owner.membership.organisation, tree.t).count() == 1


def test_target_changes_are_recorded_on_the_goal(tree, owner):
    target = _target_of(tree.t)
    s.update_target(owner.membership, owner.user, target.pk, {"target": 12})
    added = s.add_target(owner.membership, owner.user, tree.t.pk, _target("second", 1, 2))
    s.remove_target(owner.membership, owner.user, added.pk)
    changes = [
        e.changes["targets"]
        for e in entries_for(owner.membership.organisation, tree.t).filter(action="updated")
    ]
    assert {"old": "Guided setup score: 0 → 10 (↑)", "new": "Guided setup score: 0 → 12 (↑)"} in changes
    assert {"old": None, "new": "second: 1 → 2 (↑)"} in changes
    assert {"old": "second: 1 → 2 (↑)", "new": "archived: second: 1 → 2 (↑) (0 observed values kept)"} in changes


# --- isolation between organisations --------------------------------------------------------------


def test_outsider_cannot_reach_anything_of_another_organisation(tree, owner, outsider):
    m, u = outsider.membership, outsider.user
    proposal = s.propose_change(owner.membership, owner.user, tree.t.pk, {"title": "Other"})
    concern = s.raise_concern(owner.membership, owner.user, tree.t.pk, "worry")
    item = s.create_work_item(owner.membership, owner.user, tree.product.pk, title="Wizard")
    org_goal = _org_goal(owner)
    link = s.link_goals(owner.membership, owner.user, tree.s.pk, org_goal.pk, "aligns")

    attempts = [
        lambda: s.get_product(m, tree.product.pk),
        lambda: s.update_product(m, u, tree.product.pk, name="Hacked"),
        lambda: s.archive_product(m, u, tree.product.pk),
        lambda: s.get_goal(m, tree.t.pk),
        lambda: s.update_goal(m, u, tree.t.pk, title="Hacked"),
        lambda: s.move_goal(m, u, tree.t.pk, parent_id=None),
        lambda: s.archive_goal(m, u, tree.t.pk),
        lambda: s.create_goal(m, u, product_id=tree.product.pk, title="Sneaky"),
        lambda: s.link_goals(m, u, tree.t.pk, org_goal.pk, "relates"),
        lambda: s.unlink_goals(m, u, link.pk),
        lambda: s.propose_change(m, u, tree.t.pk, {"title": "Hacked"}),
        lambda: s.decide_proposal(m, u, proposal.pk, accept=True),
        lambda: s.withdraw_proposal(m, u, proposal.pk),
        lambda: s.add_comment(m, u, tree.t.pk, "hi"),
        lambda: s.endorse(m, u, tree.t.pk),
        lambda: s.raise_concern(m, u, tree.t.pk, "hm"),
        lambda: s.resolve_concern(m, u, concern.pk, "ok"),
        lambda: s.check_in(m, u, tree.t.pk, status="on_track", confidence=5),
        lambda: s.record_observation(m, u, _target_of(tree.t).pk, 5),
        lambda: s.update_target(m, u, _target_of(tree.t).pk, {"target": 50}),
        lambda: s.create_work_item(m, u, tree.product.pk, title="x"),
        lambda: s.link_work_item(m, u, item.pk, None),
        lambda: s.orphan_report(m, tree.product.pk),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound) as exc:
            attempt()
        assert "Atlas" not in exc.value.message and "Guided" not in exc.value.message

    assert _reload(tree.t).title == "Guided setup"
    assert _reload(tree.product).name == "Atlas"
    assert _reload(proposal).state == "open"
    assert GoalLink.objects.filter(pk=link.pk).exists()
    assert _reload(item).goal is None


def test_linking_to_a_goal_of_another_organisation_reveals_nothing(tree, outsider):
    theirs = s.create_goal(outsider.membership, outsider.user, title="Bravo goal", status="active")
    for kind in ("aligns", "relates"):
        with pytest.raises((ValidationFailed, NotFound)) as exc:
            s.link_goals(outsider.membership, outsider.user, theirs.pk, tree.s.pk, kind)
        assert "Win small teams" not in exc.value.message
    with pytest.raises(ValidationFailed) as exc:
        s.create_goal(outsider.membership, outsider.user, parent_id=tree.s.pk, title="Child")
    assert _field(exc) == "parent"
    assert "Win small teams" not in exc.value.message
    with pytest.raises(NotFound):
        s.check_in(
            outsider.membership,
            outsider.user,
            theirs.pk,
            status="on_track",
            confidence=5,
            target_id=_target_of(tree.t).pk,
        )
    assert not GoalLink.objects.exists()


def test_outsider_lists_are_empty(tree, outsider):
    m = outsider.membership
    assert list(s.products_of(m, include_archived=True)) == []
    assert list(s.goals_of(m)) == []
    assert s.whole_tree(m, tree.product.pk) == []
    assert s.tree_level(m, product_id=tree.product.pk, parent_id=None) == []
    assert list(s.work_items_of(m)) == []
    assert list(s.comments_of(m, tree.t)) == []
    assert list(s.proposals_of(m, tree.t)) == []
    assert list(s.endorsements_of(m, tree.t)) == []
    assert s.links_of(m, tree.t) == {"out": [], "in": []}
    assert tree.s.pk not in s.progress_for_org(m.organisation_id)


# --- stakeholders read and co-author, but do not write --------------------------------------------


def test_stakeholder_writes_are_forbidden(tree, stakeholder):
    m, u = stakeholder.membership, stakeholder.user
    attempts = [
        lambda: s.create_product(m, u, name="Mine"),
        lambda: s.update_product(m, u, tree.product.pk, name="Mine"),
        lambda: s.archive_product(m, u, tree.product.pk),
        lambda: s.create_goal(m, u, product_id=tree.product.pk, title="Mine"),
        lambda: s.update_goal(m, u, tree.t.pk, title="Mine"),
        lambda: s.move_goal(m, u, tree.t.pk, parent_id=None),
        lambda: s.archive_goal(m, u, tree.t.pk),
        lambda: s.link_goals(m, u, tree.t.pk, tree.i2.pk, "relates"),
        lambda: s.add_target(m, u, tree.t.pk, _target()),
        lambda: s.record_observation(m, u, _target_of(tree.t).pk, 5),
        lambda: s.check_in(m, u, tree.t.pk, status="on_track", confidence=5),
        lambda: s.create_work_item(m, u, tree.product.pk, title="Mine"),
        lambda: s.create_team(m, u, "Mine"),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden):
            attempt()
    assert _reload(tree.t).title == "Guided setup"
    assert not WorkItem.objects.exists()
    assert Goal.objects.count() == 4


def test_a_demoted_goal_owner_can_no_longer_check_in(tree, member):
    Membership.objects.filter(pk=member.membership.pk).update(role=Role.STAKEHOLDER)
    member.membership.refresh_from_db()
    with pytest.raises(Forbidden):
        s.check_in(member.membership, member.user, tree.t.pk, status="on_track", confidence=5)


# --- regressions of fixes made while writing these tests ------------------------------------------


def test_reparenting_closes_the_gap_among_former_siblings(tree, owner):
    t2 = s.create_goal(
        owner.membership, owner.user, product_id=tree.product.pk, parent_id=tree.i1.pk, title="T2"
    )
    t3 = s.create_goal(
        owner.membership, owner.user, product_id=tree.product.pk, parent_id=tree.i1.pk, title="T3"
    )
    s.move_goal(owner.membership, owner.user, tree.t.pk, parent_id=tree.i2.pk)
    assert _children(tree.i1) == [("T2", 0), ("T3", 1)]
    s.move_goal(owner.membership, owner.user, t2.pk, parent_id=tree.i2.pk, position=0)
    assert _children(tree.i2) == [("T2", 0), ("Guided setup", 1)]
    assert _children(tree.i1) == [("T3", 0)]
    assert _reload(t3).position == 0


def test_archiving_twice_changes_and_records_nothing(tree, owner):
    s.archive_goal(owner.membership, owner.user, tree.t.pk)
    first = _reload(tree.t)
    s.archive_goal(owner.membership, owner.user, tree.t.pk)
    again = _reload(tree.t)
    assert (again.archived_at, again.version) == (first.archived_at, first.version)
    s.archive_goal(owner.membership, owner.user, tree.i2.pk, archived=False)  # not archived: no-op
    assert _reload(tree.i2).version == 1
    assert entries_for(owner.membership.organisation, tree.i2).count() == 1

    product = tree.product
    s.archive_product(owner.membership, owner.user, product.pk)
    first_p = _reload(product)
    s.archive_product(owner.membership, owner.user, product.pk)
    assert (_reload(product).archived_at, product.version) == (first_p.archived_at, first_p.version)
    other = _other_product(owner)
    s.archive_product(owner.membership, owner.user, other.pk, archived=False)
    assert (_reload(other).version, entries_for(owner.membership.organisation, other).count()) == (1, 1)


def test_a_goal_cannot_be_restored_under_an_archived_parent(tree, owner):
    s.archive_goal(owner.membership, owner.user, tree.t.pk)
    s.archive_goal(owner.membership, owner.user, tree.i1.pk)
    with pytest.raises(ValidationFailed) as exc:
        s.archive_goal(owner.membership, owner.user, tree.t.pk, archived=False)
    assert _field(exc) == "archived"
    s.archive_goal(owner.membership, owner.user, tree.i1.pk, archived=False)
    s.archive_goal(owner.membership, owner.user, tree.t.pk, archived=False)
    assert [r.goal.title for r in s.whole_tree(owner.membership, tree.product.pk)] == [
        "Win small teams",
        "Self-serve onboarding",
        "Guided setup",
        "Referrals",
    ]


def test_proposal_with_one_unchanged_target_keeps_only_the_real_change(tree, owner, stakeholder):
    second = s.add_target(owner.membership, owner.user, tree.t.pk, _target("second", 0, 5))
    first = _target_of_first(tree.t)
    proposal = s.propose_change(
        stakeholder.membership,
        stakeholder.user,
        tree.t.pk,
        {"targets": {str(first.pk): {"target": 10}, str(second.pk): {"target": 8}}},
    )
    assert proposal.changes == {"targets": {str(second.pk): {"target": 8.0}}}


def _target_of_first(goal: Goal) -> TargetMeasure:
    return goal.targets.order_by("position", "id").first()  # type: ignore[return-value]


# --- rules added after review: no double counting, one tree per alignment, whole numbers ------------


def test_aligning_a_goal_whose_child_already_counts_toward_the_target_is_refused(owner, tree):
    org = _org_goal(owner)
    other = _other_product(owner)
    beacon = s.create_goal(owner.membership, owner.user, product_id=other.pk, title="Beacon root")
    s.link_goals(owner.membership, owner.user, tree.t.pk, org.pk, GoalLink.Kind.ALIGNS)
    # T already counts toward O; S (T's ancestor) aligning to O would count T twice.
    with pytest.raises(ValidationFailed) as exc:
        s.link_goals(owner.membership, owner.user, tree.s.pk, org.pk, GoalLink.Kind.ALIGNS)
    assert exc.value.field == "target"
    assert "counted twice" in exc.value.message and "Guided setup" in exc.value.message
    # The other order is refused too: S counts toward O, then T (under S) aligning to O.
    s.unlink_goals(owner.membership, owner.user, GoalLink.objects.get(source=tree.t).pk)
    s.link_goals(owner.membership, owner.user, tree.s.pk, org.pk, GoalLink.Kind.ALIGNS)
    with pytest.raises(ValidationFailed, match="already counts toward"):
        s.link_goals(owner.membership, owner.user, tree.t.pk, org.pk, GoalLink.Kind.ALIGNS)
    # A goal of another product may still align to O.
    s.link_goals(owner.membership, owner.user, beacon.pk, org.pk, GoalLink.Kind.ALIGNS)
    progress = s.progress_for_org(owner.membership.organisation_id)
    assert org.pk in progress


def test_moving_a_goal_under_a_goal_it_already_counts_toward_through_an_alignment_is_refused(owner, tree):
    org = _org_goal(owner)
    other = _other_product(owner)
    root = s.create_goal(owner.membership, owner.user, product_id=other.pk, title="Beacon root")
    s.link_goals(owner.membership, owner.user, root.pk, org.pk, GoalLink.Kind.ALIGNS)
    child = s.create_goal(owner.membership, owner.user, product_id=other.pk, title="Beacon child")
    s.link_goals(owner.membership, owner.user, child.pk, org.pk, GoalLink.Kind.ALIGNS)
    with pytest.raises(ValidationFailed) as exc:
        s.move_goal(owner.membership, owner.user, child.pk, parent_id=root.pk)
    assert exc.value.field == "parent"
    assert _reload(child).parent_id is None


def test_organisation_goals_do_not_align_to_each_other_they_nest(owner):
    a = _org_goal(owner, "Org A")
    b = _org_goal(owner, "Org B")
    with pytest.raises(ValidationFailed, match="same tree") as exc:
        s.link_goals(owner.membership, owner.user, a.pk, b.pk, GoalLink.Kind.ALIGNS)
    assert exc.value.field == "target"
    s.link_goals(owner.membership, owner.user, a.pk, b.pk, GoalLink.Kind.RELATES)


@pytest.mark.parametrize("status", [Goal.Status.ABANDONED, "archived"])
def test_nothing_aligns_to_an_archived_or_abandoned_goal(owner, tree, status):
    org = _org_goal(owner)
    if status == "archived":
        s.archive_goal(owner.membership, owner.user, org.pk)
    else:
        s.update_goal(owner.membership, owner.user, org.pk, status=status)
    with pytest.raises(ValidationFailed, match="archived or abandoned"):
        s.link_goals(owner.membership, owner.user, tree.s.pk, org.pk, GoalLink.Kind.ALIGNS)


def test_no_check_in_on_an_archived_goal(owner, member, tree):
    s.archive_goal(owner.membership, owner.user, tree.t.pk)
    with pytest.raises(ValidationFailed, match="archived") as exc:
        s.check_in(member.membership, member.user, tree.t.pk, status="on_track", confidence=5)
    assert exc.value.field == "status"


@pytest.mark.parametrize("value", [7.9, "7.5", "nan", "inf"])
def test_fractions_are_refused_not_cut(owner, member, tree, value):
    with pytest.raises(ValidationFailed) as exc:
        s.check_in(member.membership, member.user, tree.s.pk, status="on_track", confidence=value)
    assert exc.value.field == "confidence"
    with pytest.raises(ValidationFailed) as exc:
        s.update_goal(owner.membership, owner.user, tree.s.pk, checkin_cadence_days=value)
    assert exc.value.field == "checkin_cadence_days"
    assert (
        s.check_in(member.membership, member.user, tree.s.pk, status="on_track", confidence=7.0).confidence
        == 7
    )


def test_work_serves_a_goal_of_its_own_product_or_of_the_organisation(owner, tree):
    other = _other_product(owner)
    foreign = s.create_goal(owner.membership, owner.user, product_id=other.pk, title="Beacon root")
    org = _org_goal(owner)
    with pytest.raises(ValidationFailed, match="another product") as exc:
        s.create_work_item(owner.membership, owner.user, tree.product.pk, title="Fix it", goal_id=foreign.pk)
    assert exc.value.field == "goal"
    item = s.create_work_item(owner.membership, owner.user, tree.product.pk, title="Fix it", goal_id=org.pk)
    with pytest.raises(ValidationFailed):
        s.link_work_item(owner.membership, owner.user, item.pk, foreign.pk)
    assert s.link_work_item(owner.membership, owner.user, item.pk, tree.t.pk).goal == tree.t


def test_alignment_leaves_out_archived_products_and_abandoned_roots(owner, tree):
    other = _other_product(owner)
    abandoned = s.create_goal(
        owner.membership, owner.user, product_id=other.pk, title="Dropped", status=Goal.Status.ABANDONED
    )
    unaligned = {g.pk for g in s.alignment(owner.membership).unaligned}
    assert tree.s.pk in unaligned and abandoned.pk not in unaligned
    s.archive_product(owner.membership, owner.user, tree.product.pk)
    assert tree.s.pk not in {g.pk for g in s.alignment(owner.membership).unaligned}


def test_a_proposal_is_not_applied_silently_over_newer_edits(owner, member, stakeholder, tree):
    proposal = s.propose_change(
        stakeholder.membership, stakeholder.user, tree.s.pk, {"title": "Win every small team"}
    )
    s.update_goal(member.membership, member.user, tree.s.pk, target_date="2031-06-30")
    with pytest.raises(Conflict) as exc:
        s.decide_proposal(member.membership, member.user, proposal.pk, accept=True)
    assert exc.value.field == "over_newer_edits"
    assert _reload(proposal).state == ChangeProposal.State.OPEN
    assert _reload(tree.s).title == "Win small teams"
    # Rejecting needs no such care; accepting over the newer edits keeps them.
    s.decide_proposal(member.membership, member.user, proposal.pk, accept=True, over_newer_edits=True)
    goal = _reload(tree.s)
    assert (goal.title, goal.target_date) == ("Win every small team", dt.date(2031, 6, 30))
