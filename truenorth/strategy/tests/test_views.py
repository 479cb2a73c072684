"""Vision pages through the web UI: products, goal trees, goals, co-authoring, alignment, overdue
check-ins and notifications, as an owner and as a stakeholder."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from django.urls import reverse
from django.utils import timezone

from truenorth.notifications.models import Notification
from truenorth.strategy import services
from truenorth.strategy.models import ChangeProposal, CheckIn, Comment, Endorsement, Goal, Product, WorkItem


@dataclass
class World:
    product: Product
    strategic: Goal
    child: Goal


@pytest.fixture
def world(owner, stakeholder) -> World:
    m = owner.membership
    product = services.create_product(
        m, owner.user, name="Trail App", vision="Every hiker home safe.", owner_id=owner.user.pk
    )
    strategic = services.create_goal(
        m,
        owner.user,
        title="Hikers trust our routes",
        product_id=product.pk,
        outcome="Hikers plan every trip with us because our routes are right.",
        owner_id=owner.user.pk,
        target_date="2027-06-30",
        status=Goal.Status.ACTIVE,
        targets=[{"name": "Route accuracy", "baseline": 80, "target": 95, "unit": "%"}],
    )
    child = services.create_goal(
        m, owner.user, title="Fix the top 100 routes", product_id=product.pk, parent_id=strategic.pk
    )
    return World(product, strategic, child)


def url(name: str, **kwargs: int) -> str:
    return reverse(f"strategy:{name}", kwargs={"org_slug": "alpha", **kwargs})


def page_urls(w: World) -> list[str]:
    return [
        url("products"),
        url("product", product_id=w.product.pk),
        url("goal", goal_id=w.strategic.pk),
        url("goal", goal_id=w.child.pk),
        url("alignment"),
        url("overdue"),
        reverse("notifications:notifications", kwargs={"org_slug": "alpha"}),
        reverse("home:dashboard", kwargs={"org_slug": "alpha"}),
    ]


def edit_urls(w: World) -> list[str]:
    return [
        url("product_edit", product_id=w.product.pk),
        url("goal_create", product_id=w.product.pk),
        url("goal_edit", goal_id=w.strategic.pk),
    ]


# --- every page renders -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["owner", "member", "stakeholder"])
def test_every_page_renders_for_every_role(request, world, who):
    persona = request.getfixturevalue(who)
    for path in page_urls(world):
        response = persona.client.get(path)
        assert response.status_code == 200, path


@pytest.mark.django_db
def test_product_page_shows_vision_tree_lint_and_history(owner, world):
    response = owner.client.get(url("product", product_id=world.product.pk))
    html = response.content.decode()
    assert "Every hiker home safe." in html
    tree = html.split('id="tree-heading"')[1].split('id="lint-heading"')[0]
    assert "Hikers trust our routes" in tree  # a root of the tree
    assert "Fix the top 100 routes" not in tree  # children load lazily
    assert 'aria-expanded="false"' in html
    assert "No owner: someone must be accountable" in html  # lint of the child
    assert "History (newest first" in html


@pytest.mark.django_db
def test_goal_page_shows_targets_parent_children_and_history(owner, world):
    html = owner.client.get(url("goal", goal_id=world.child.pk)).content.decode()
    assert "Hikers trust our routes" in html  # breadcrumb to the parent
    assert "Trail App" in html  # and to the product
    html = owner.client.get(url("goal", goal_id=world.strategic.pk)).content.decode()
    assert "Route accuracy" in html
    assert "80 → 95 %" in html
    assert "Fix the top 100 routes" in html  # a child
    assert "Check in" in html  # the owner of an active goal
    assert "Created" in html


@pytest.mark.django_db
def test_stakeholder_sees_no_edit_buttons(stakeholder, world):
    html = stakeholder.client.get(url("goal", goal_id=world.strategic.pk)).content.decode()
    assert "Edit goal" not in html
    assert "Add sub-goal" not in html
    assert "Check in" not in html
    assert "Add a target measure" not in html
    assert "Propose a change" in html
    assert "Raise a concern" in html
    html = stakeholder.client.get(url("product", product_id=world.product.pk)).content.decode()
    assert "Edit product" not in html
    assert "New strategic goal" not in html
    html = stakeholder.client.get(url("products")).content.decode()
    assert "Create product" not in html


@pytest.mark.django_db
def test_a_goal_of_another_organisation_is_not_found(outsider, world):
    assert outsider.client.get(url("goal", goal_id=world.strategic.pk)).status_code == 404
    other = reverse("strategy:goal", kwargs={"org_slug": "bravo-secret", "goal_id": world.strategic.pk})
    assert outsider.client.get(other).status_code == 404


# --- products -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_product_through_the_form(owner):
    response = owner.client.post(
        url("products"), {"name": "Maps", "vision": "Never lost.", "owner": str(owner.user.pk)}
    )
    product = Product.objects.get(name="Maps")
    assert response.status_code == 302
    assert response["Location"] == url("product", product_id=product.pk)
    assert product.owner == owner.user


@pytest.mark.django_db
def test_create_product_with_a_taken_name_shows_the_error_on_name(owner, world):
    response = owner.client.post(url("products"), {"name": "trail app"})
    assert response.status_code == 200
    assert "already exists" in str(response.context["form"].errors["name"])


@pytest.mark.django_db
def test_editing_a_product_with_a_stale_version_keeps_the_text(owner, world):
    services.update_product(owner.membership, owner.user, world.product.pk, vision="Changed meanwhile.")
    response = owner.client.post(
        url("product_edit", product_id=world.product.pk),
        {"name": "Trail App", "vision": "My careful rewrite.", "version": "1"},
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert "changed by someone else" in " ".join(form.non_field_errors())
    assert "My careful rewrite." in response.content.decode()
    product = Product.objects.get(pk=world.product.pk)
    assert product.vision == "Changed meanwhile."
    # Saving again (the form now carries the current version) applies the edit.
    response = owner.client.post(
        url("product_edit", product_id=world.product.pk),
        {"name": "Trail App", "vision": "My careful rewrite.", "version": str(product.version)},
    )
    assert response.status_code == 302
    assert Product.objects.get(pk=world.product.pk).vision == "My careful rewrite."


def _version(goal_id: int) -> str:
    """The goal's version as a form sends it (hidden field)."""
    return str(Goal.objects.get(pk=goal_id).version)

@pytest.mark.django_db
def test_archive_and_restore_a_product(owner, world):
    owner.client.post(url("product_archive", product_id=world.product.pk), {"version": "1"})
    assert Product.objects.get(pk=world.product.pk).archived_at is not None
    owner.client.post(url("product_archive", product_id=world.product.pk), {"restore": "1", "version": "2"})
    assert Product.objects.get(pk=world.product.pk).archived_at is None


@pytest.mark.django_db
def test_orphan_work_share_is_shown(owner, world):
    m = owner.membership
    services.create_work_item(m, owner.user, world.product.pk, title="Linked", goal_id=world.child.pk)
    services.create_work_item(m, owner.user, world.product.pk, title="Stray ticket")
    html = owner.client.get(url("product", product_id=world.product.pk)).content.decode()
    assert "1 of 2 work items serve no goal (50 % orphan work)" in html
    assert "Stray ticket" in html


# --- goals: create, edit ------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_goal_through_the_form_with_a_target(owner, world):
    response = owner.client.post(
        url("goal_create", product_id=world.product.pk),
        {
            "title": "Offline maps everywhere",
            "outcome": "Hikers keep their map when the signal drops.",
            "parent": str(world.strategic.pk),
            "level": "",
            "owner": str(owner.user.pk),
            "target_date": "2027-03-31",
            "status": "proposed",
            "target_name": "Offline sessions",
            "target_baseline": "10",
            "target_target": "60",
            "target_direction": "increase",
        },
    )
    goal = Goal.objects.get(title="Offline maps everywhere")
    assert response.status_code == 302
    assert response["Location"] == url("goal", goal_id=goal.pk)
    assert goal.parent == world.strategic
    assert goal.level == Goal.Level.INTERMEDIATE
    assert goal.target_date == dt.date(2027, 3, 31)
    assert [(t.name, t.baseline, t.target) for t in goal.targets.all()] == [("Offline sessions", 10, 60)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        ({"title": ""}, "title", "required"),
        ({"title": "Dated", "target_date": "next tuesday"}, "target_date", "valid date"),
        ({"title": "Dated", "target_date": "2027-02-30"}, "target_date", "valid date"),
        (
            {"title": "Backwards", "target_name": "NPS", "target_baseline": "50", "target_target": "20"},
            "target_target",
            "must not be below the baseline",
        ),
        ({"title": "Top", "parent": str(10**15)}, "parent", "valid choice"),
        ({"title": "Top", "level": "strategic", "parent": "PARENT"}, "level", "has no parent"),
    ],
)
def test_goal_form_errors_name_the_field(owner, world, data, field, fragment):
    data = {"status": "proposed", **data}
    if data.get("parent") == "PARENT":
        data["parent"] = str(world.strategic.pk)
    before = Goal.objects.count()
    response = owner.client.post(url("goal_create", product_id=world.product.pk), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert fragment in str(errors[field])
    assert Goal.objects.count() == before


@pytest.mark.django_db
def test_edit_goal_with_a_stale_version_shows_an_error_and_keeps_the_edit(owner, world):
    services.update_goal(owner.membership, owner.user, world.strategic.pk, title="Renamed meanwhile")
    data = {
        "title": "My better title",
        "outcome": "My better outcome statement for hikers everywhere.",
        "level": "strategic",
        "status": "active",
        "owner": str(owner.user.pk),
        "target_date": "2027-06-30",
        "weight": "1",
        "checkin_cadence_days": "7",
        "version": "1",
    }
    response = owner.client.post(url("goal_edit", goal_id=world.strategic.pk), data)
    assert response.status_code == 200
    assert "changed by someone else" in " ".join(response.context["form"].non_field_errors())
    html = response.content.decode()
    assert "My better title" in html and "My better outcome statement" in html
    assert Goal.objects.get(pk=world.strategic.pk).title == "Renamed meanwhile"


@pytest.mark.django_db
def test_edit_goal_saves_and_redirects(owner, world):
    data = {
        "title": "Hikers trust every route",
        "outcome": "x",
        "level": "strategic",
        "status": "active",
        "owner": "",
        "target_date": "",
        "weight": "2",
        "checkin_cadence_days": "14",
        "version": str(world.strategic.version),
    }
    response = owner.client.post(url("goal_edit", goal_id=world.strategic.pk), data)
    assert response.status_code == 302
    goal = Goal.objects.get(pk=world.strategic.pk)
    assert (goal.title, goal.owner, goal.target_date, goal.weight) == (
        "Hikers trust every route",
        None,
        None,
        2,
    )


@pytest.mark.django_db
def test_move_goal_to_the_top_of_the_tree_is_refused_for_a_strategic_parent(owner, world):
    intermediate = services.create_goal(
        owner.membership,
        owner.user,
        title="Second",
        product_id=world.product.pk,
        parent_id=world.strategic.pk,
    )
    response = owner.client.post(
        url("goal_move", goal_id=world.child.pk),
        {"parent": str(intermediate.pk), "position": "0", "version": str(world.child.version)},
    )
    assert response.status_code == 302
    assert Goal.objects.get(pk=world.child.pk).parent_id == intermediate.pk
    # A parent of the wrong level is refused on the parent field.
    response = owner.client.post(
        url("goal_move", goal_id=world.strategic.pk),
        {"parent": str(intermediate.pk), "position": "", "version": str(world.strategic.version)},
    )
    assert response.status_code == 200
    assert "parent" in response.context["move_form"].errors


@pytest.mark.django_db
def test_archive_goal_with_live_children_is_refused_with_a_message(owner, world):
    response = owner.client.post(
        url("goal_archive", goal_id=world.strategic.pk), {"version": str(world.strategic.version)}, follow=True
    )
    assert "Archive or move its sub-goals first." in response.content.decode()
    assert Goal.objects.get(pk=world.strategic.pk).archived_at is None
    owner.client.post(url("goal_archive", goal_id=world.child.pk), {"version": str(world.child.version)})
    assert Goal.objects.get(pk=world.child.pk).archived_at is not None


@pytest.mark.django_db
def test_nonsense_input_never_gives_a_server_error(owner, world):
    junk = {
        "title": "x" * 5000,
        "weight": "nan",
        "confidence": "lots",
        "target": "9" * 40,
        "kind": "??",
        "parent": "-1",
        "position": "-5",
        "version": "zz",
        "item": "9" * 40,
        "value": "inf",
    }
    gid = world.strategic.pk
    for path in [
        url("goal_edit", goal_id=gid),
        url("goal_move", goal_id=gid),
        url("checkin", goal_id=gid),
        url("propose", goal_id=gid),
        url("link_add", goal_id=gid),
        url("target_add", goal_id=gid),
        url("work_link", goal_id=gid),
        url("goal_create", product_id=world.product.pk),
        url("products"),
        url("alignment"),
    ]:
        assert owner.client.post(path, junk).status_code in (200, 302), path
    assert owner.client.get(url("overdue") + "?product=zz&owner=-1").status_code == 200


# --- permissions ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_stakeholder_cannot_create_edit_or_check_in(stakeholder, world):
    before = (Goal.objects.count(), Goal.objects.get(pk=world.strategic.pk).version, CheckIn.objects.count())
    gid = world.strategic.pk
    posts = {
        url("products"): {"name": "Sneaky"},
        url("product_edit", product_id=world.product.pk): {"name": "Renamed", "version": "1"},
        url("product_archive", product_id=world.product.pk): {},
        url("goal_create", product_id=world.product.pk): {"title": "Sneaky", "status": "proposed"},
        url("goal_edit", goal_id=gid): {
            "title": "Renamed",
            "level": "strategic",
            "status": "active",
            "weight": "1",
            "checkin_cadence_days": "7",
        },
        url("goal_move", goal_id=world.child.pk): {"parent": ""},
        url("goal_archive", goal_id=world.child.pk): {},
        url("checkin", goal_id=gid): {"status": "on_track", "confidence": "7"},
        url("target_add", goal_id=gid): {
            "name": "X",
            "baseline": "1",
            "target": "2",
            "direction": "increase",
        },
        url("link_add", goal_id=gid): {"target": str(world.child.pk), "kind": "relates"},
        url("alignment"): {"title": "Sneaky org goal", "status": "proposed"},
    }
    for path, data in posts.items():
        assert stakeholder.client.post(path, data).status_code == 403, path
    for path in edit_urls(world):
        assert stakeholder.client.get(path).status_code == 403, path
    after = (Goal.objects.count(), Goal.objects.get(pk=world.strategic.pk).version, CheckIn.objects.count())
    assert after == before
    assert not Product.objects.filter(name="Sneaky").exists()
    assert Product.objects.get(pk=world.product.pk).archived_at is None


@pytest.mark.django_db
def test_stakeholder_can_comment_propose_endorse_and_raise_a_concern(stakeholder, owner, world):
    gid = world.strategic.pk
    client = stakeholder.client
    response = client.post(url("comment", goal_id=gid), {"body": "Looks right to me, @owner@a.example."})
    assert response.status_code == 302
    assert response["Location"].endswith("#comments")
    response = client.post(
        url("propose", goal_id=gid),
        {
            "title": "Hikers trust our routes",
            "outcome": world.strategic.outcome,
            "target_date": "2027-06-30",
            "reason": "95 is not ambitious",
            f"target_{world.strategic.targets.get().pk}": "98",
        },
    )
    assert response.status_code == 302
    assert client.post(url("endorse", goal_id=gid), {"note": "Yes!"}).status_code == 302
    assert client.post(url("raise_concern", goal_id=gid), {"note": "Data is old."}).status_code == 302
    assert Comment.objects.filter(goal_id=gid, author=stakeholder.user).exists()
    proposal = ChangeProposal.objects.get(goal_id=gid)
    assert proposal.changes == {"targets": {str(world.strategic.targets.get().pk): {"target": 98.0}}}
    assert Endorsement.objects.filter(goal_id=gid, user=stakeholder.user).count() == 2
    # The owner is told (mention and proposal and concern).
    assert Notification.objects.filter(user=owner.user).count() >= 3
    # Withdrawing the endorsement works too; a second withdrawal says why it cannot.
    assert client.post(url("withdraw_endorsement", goal_id=gid)).status_code == 302
    response = client.post(url("withdraw_endorsement", goal_id=gid), follow=True)
    assert "You have not endorsed this goal." in response.content.decode()


@pytest.mark.django_db
def test_proposing_nothing_new_shows_an_error(stakeholder, world):
    g = world.strategic
    response = stakeholder.client.post(
        url("propose", goal_id=g.pk), {"title": g.title, "outcome": g.outcome, "target_date": "2027-06-30"}
    )
    assert response.status_code == 200
    assert "Propose at least one change." in " ".join(response.context["proposal_form"].non_field_errors())
    assert not ChangeProposal.objects.exists()


@pytest.mark.django_db
def test_owner_accepts_a_proposal_from_the_page_and_the_goal_changes(owner, stakeholder, world):
    g = world.strategic
    proposal = services.propose_change(
        stakeholder.membership, stakeholder.user, g.pk, {"title": "Hikers trust every route we publish"}
    )
    html = owner.client.get(url("goal", goal_id=g.pk)).content.decode()
    assert "Hikers trust every route we publish" in html and "Accept" in html
    html = stakeholder.client.get(url("goal", goal_id=g.pk)).content.decode()
    assert 'value="accept"' not in html  # the proposer cannot decide
    assert (
        stakeholder.client.post(
            url("decide", goal_id=g.pk, proposal_id=proposal.pk), {"decision": "accept"}
        ).status_code
        == 403
    )
    response = owner.client.post(url("decide", goal_id=g.pk, proposal_id=proposal.pk), {"decision": "accept"})
    assert response.status_code == 302
    assert Goal.objects.get(pk=g.pk).title == "Hikers trust every route we publish"
    assert ChangeProposal.objects.get(pk=proposal.pk).state == ChangeProposal.State.ACCEPTED
    html = owner.client.get(url("goal", goal_id=g.pk)).content.decode()
    assert "Accepted" in html


@pytest.mark.django_db
def test_rejecting_without_a_reason_shows_the_error_on_reason(owner, stakeholder, world):
    g = world.strategic
    proposal = services.propose_change(stakeholder.membership, stakeholder.user, g.pk, {"title": "Other"})
    response = owner.client.post(url("decide", goal_id=g.pk, proposal_id=proposal.pk), {"decision": "reject"})
    assert response.status_code == 200
    assert "Say why the proposal is rejected." in response.content.decode()
    assert ChangeProposal.objects.get(pk=proposal.pk).state == ChangeProposal.State.OPEN
    owner.client.post(
        url("decide", goal_id=g.pk, proposal_id=proposal.pk), {"decision": "reject", "reason": "Too vague."}
    )
    assert ChangeProposal.objects.get(pk=proposal.pk).state == ChangeProposal.State.REJECTED


@pytest.mark.django_db
def test_owner_checks_in_with_a_new_value_and_progress_shows(owner, world):
    g = world.strategic
    target = g.targets.get()
    response = owner.client.post(
        url("checkin", goal_id=g.pk),
        {
            "status": "on_track",
            "confidence": "8",
            "narrative": "Good week.",
            "target": str(target.pk),
            "value": "87.5",
        },
    )
    assert response.status_code == 302
    html = owner.client.get(url("goal", goal_id=g.pk)).content.decode()
    assert "On track</strong>, confidence 8/10" in html
    assert "50 %" in html  # (87.5 - 80) / (95 - 80)


@pytest.mark.django_db
def test_check_in_errors_name_the_field(owner, world):
    response = owner.client.post(
        url("checkin", goal_id=world.strategic.pk), {"status": "on_track", "confidence": "11"}
    )
    assert "confidence" in response.context["checkin_form"].errors
    response = owner.client.post(
        url("checkin", goal_id=world.child.pk), {"status": "on_track", "confidence": "5"}
    )
    assert "Check-ins are for active goals" in response.content.decode()


@pytest.mark.django_db
def test_links_targets_and_work_items_from_the_goal_page(owner, world):
    m = owner.membership
    other = services.create_product(m, owner.user, name="Shop")
    elsewhere = services.create_goal(m, owner.user, title="Sell more maps", product_id=other.pk)
    gid = world.strategic.pk
    assert (
        owner.client.post(
            url("link_add", goal_id=gid), {"target": str(elsewhere.pk), "kind": "aligns"}
        ).status_code
        == 302
    )
    link = services.links_of(m, world.strategic)["out"][0]
    assert owner.client.post(url("link_remove", goal_id=gid, link_id=link.pk)).status_code == 302
    response = owner.client.post(url("link_add", goal_id=gid), {"target": str(gid), "kind": "relates"})
    assert "cannot link to itself" in str(response.context["link_form"].errors["target"])

    response = owner.client.post(
        url("target_add", goal_id=gid),
        {"name": "Trips", "baseline": "5", "target": "1", "direction": "increase", "version": _version(gid)},
    )
    assert "target" in response.context["target_form"].errors
    owner.client.post(
        url("target_add", goal_id=gid),
        {"name": "Trips", "baseline": "1", "target": "5", "direction": "increase", "version": _version(gid)},
    )
    trips = world.strategic.targets.get(name="Trips")
    owner.client.post(url("target_remove", goal_id=gid, target_id=trips.pk), {"version": _version(gid)})
    assert not world.strategic.targets.filter(name="Trips").exists()

    item = services.create_work_item(m, owner.user, world.product.pk, title="Route checker")
    assert owner.client.post(url("work_link", goal_id=gid), {"item": str(item.pk)}).status_code == 302
    assert WorkItem.objects.get(pk=item.pk).goal_id == gid
    owner.client.post(url("work_unlink", goal_id=gid, item_id=item.pk))
    assert WorkItem.objects.get(pk=item.pk).goal_id is None


# --- the tree -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_subtree_endpoint_returns_the_children_rows(owner, world):
    path = url("goal_children", goal_id=world.strategic.pk)
    response = owner.client.get(path, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Fix the top 100 routes" in html
    assert "<html" not in html  # a fragment
    assert "Hikers trust our routes" not in html
    # Without htmx it sends you to the goal page, which lists the children.
    response = owner.client.get(path)
    assert response.status_code == 302


# --- alignment, overdue, notifications, dashboard ------------------------------------------------


@pytest.mark.django_db
def test_alignment_creates_an_org_goal_and_shows_who_serves_it(owner, world):
    response = owner.client.post(
        url("alignment"), {"title": "Be the hikers' first choice", "status": "active"}
    )
    assert response.status_code == 302
    org_goal = Goal.objects.get(title="Be the hikers' first choice")
    assert org_goal.product is None
    html = owner.client.get(url("alignment")).content.decode()
    assert "Hikers trust our routes" in html  # serves none yet
    services.link_goals(owner.membership, owner.user, world.strategic.pk, org_goal.pk, "aligns")
    response = owner.client.get(url("alignment"))
    ((goal, _, served),) = response.context["org_goals"]
    assert goal == org_goal and served == [world.strategic]
    assert response.context["unaligned"] == []


@pytest.mark.django_db
def test_overdue_checkins_can_be_filtered(owner, world, member):
    Goal.objects.filter(pk=world.strategic.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    html = owner.client.get(url("overdue")).content.decode()
    assert "Hikers trust our routes" in html
    html = owner.client.get(url("overdue") + f"?owner={member.user.pk}").content.decode()
    assert "Hikers trust our routes" not in html
    html = owner.client.get(url("overdue") + f"?product={world.product.pk}").content.decode()
    assert "Hikers trust our routes" in html
    dashboard = owner.client.get(reverse("home:dashboard", kwargs={"org_slug": "alpha"})).content.decode()
    assert "days overdue" in dashboard


@pytest.mark.django_db
def test_notifications_are_listed_counted_and_marked_read(owner, stakeholder, world):
    services.add_comment(stakeholder.membership, stakeholder.user, world.strategic.pk, "Hi @owner@a.example")
    services.raise_concern(stakeholder.membership, stakeholder.user, world.strategic.pk, "Hmm")
    notifications = reverse("notifications:notifications", kwargs={"org_slug": "alpha"})
    html = owner.client.get(notifications).content.decode()
    assert "mentioned you" in html
    assert 'badge badge-count">2<' in html
    first = Notification.objects.filter(user=owner.user).first()
    assert first is not None
    mark = reverse("notifications:mark_read", kwargs={"org_slug": "alpha"})
    assert owner.client.post(mark, {"id": str(first.pk)}).status_code == 302
    assert Notification.objects.filter(user=owner.user, read_at__isnull=True).count() == 1
    owner.client.post(mark)
    assert not Notification.objects.filter(user=owner.user, read_at__isnull=True).exists()
    # Someone else's notification cannot be marked through this page.
    services.add_comment(owner.membership, owner.user, world.strategic.pk, "@stakeholder@a.example see")
    theirs = Notification.objects.get(user=stakeholder.user)
    owner.client.post(mark, {"id": str(theirs.pk)})
    assert Notification.objects.get(pk=theirs.pk).read_at is None


@pytest.mark.django_db
def test_dashboard_lists_products_with_goal_counts(owner, world):
    html = owner.client.get(reverse("home:dashboard", kwargs={"org_slug": "alpha"})).content.decode()
    assert "Trail App" in html
    assert "2 goals" in html


@pytest.mark.django_db
def test_deciding_an_already_decided_proposal_says_so(owner, stakeholder, world):
    g = world.strategic
    proposal = services.propose_change(stakeholder.membership, stakeholder.user, g.pk, {"title": "Other"})
    path = url("decide", goal_id=g.pk, proposal_id=proposal.pk)
    owner.client.post(path, {"decision": "accept"})
    response = owner.client.post(path, {"decision": "reject", "reason": "Too late."}, follow=True)
    assert "This proposal is already accepted." in response.content.decode()
    assert ChangeProposal.objects.get(pk=proposal.pk).state == ChangeProposal.State.ACCEPTED


@pytest.mark.django_db
def test_accepting_a_proposal_over_newer_edits_asks_first(owner, stakeholder, world):
    g = world.strategic
    proposal = services.propose_change(
        stakeholder.membership, stakeholder.user, g.pk, {"title": "Routes you can trust"}
    )
    services.update_goal(owner.membership, owner.user, g.pk, target_date="2027-09-30")
    decide = url("decide", goal_id=g.pk, proposal_id=proposal.pk)
    html = owner.client.get(url("goal", goal_id=g.pk)).content.decode()
    assert 'name="over_newer_edits"' in html
    response = owner.client.post(decide, {"decision": "accept"})
    assert response.status_code == 200
    assert "has changed since this proposal was made" in response.content.decode()
    assert Goal.objects.get(pk=g.pk).title == "Hikers trust our routes"
    response = owner.client.post(decide, {"decision": "accept", "over_newer_edits": "on"})
    assert response.status_code == 302
    goal = Goal.objects.get(pk=g.pk)
    assert (goal.title, str(goal.target_date)) == ("Routes you can trust", "2027-09-30")
