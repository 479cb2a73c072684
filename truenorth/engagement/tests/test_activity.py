"""Activity feed: filters (kind, action, person, goal, product), keyset pages, links to objects that
still exist, the Atom feed and its tokens, the API and the CLI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

import pytest
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.test import Client
from typer.testing import CliRunner

from truenorth.cli import app
from truenorth.engagement.models import FeedToken
from truenorth.engagement.services import activity as services
from truenorth.measures import services as measures
from truenorth.orgs.services import remove_member
from truenorth.strategy import services as strategy

if TYPE_CHECKING:
    from conftest import Persona

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(autouse=True)
def _fresh_throttle() -> None:
    cache.clear()


@pytest.fixture
def world(owner: Persona, member: Persona) -> dict[str, Any]:
    """Two products of organisation A: Kayaks (a goal with a proposal, a measure) and Tents (a goal)."""
    m = owner.membership
    assert m is not None and member.membership is not None
    kayaks = strategy.create_product(m, owner.user, name="Kayaks")
    tents = strategy.create_product(m, owner.user, name="Tents")
    paddle = strategy.create_goal(m, owner.user, title="Paddle further", product_id=kayaks.pk)
    pitch = strategy.create_goal(m, owner.user, title="Pitch faster", product_id=tents.pk)
    proposal = strategy.propose_change(
        member.membership, member.user, paddle.pk, {"title": "Paddle much further"}
    )
    measure = measures.create_measure(
        m, owner.user, name="Kayak sales", kva="current_value", product_id=kayaks.pk
    )
    return {
        "kayaks": kayaks,
        "tents": tents,
        "paddle": paddle,
        "pitch": pitch,
        "proposal": proposal,
        "measure": measure,
    }


def _reprs(page: services.Page) -> list[str]:
    return [e.entry.object_repr for e in page.entries]


def test_newest_first_with_links_to_objects_that_still_exist(owner: Persona, world: dict[str, Any]) -> None:
    assert owner.membership is not None
    page = services.activity(owner.membership, services.Filters())
    ats = [(e.entry.at, e.entry.pk) for e in page.entries]
    assert ats == sorted(ats, reverse=True)
    by_repr = {e.entry.object_repr: e for e in page.entries}
    assert by_repr["Paddle further"].url == f"/o/alpha/goals/{world['paddle'].pk}/"
    assert by_repr["Kayak sales"].url == f"/o/alpha/measures/{world['measure'].pk}/"
    assert by_repr["Proposal on Paddle further (open)"].url == f"/o/alpha/goals/{world['paddle'].pk}/"
    assert by_repr["Kayak sales"].kind == "Measure"


def test_product_filter_keeps_the_products_objects_only(owner: Persona, world: dict[str, Any]) -> None:
    assert owner.membership is not None
    page = services.activity(owner.membership, services.clean_filters(product=world["kayaks"].pk))
    assert set(_reprs(page)) == {
        "Kayaks",
        "Paddle further",
        "Proposal on Paddle further (open)",
        "Kayak sales",
    }
    tents = services.activity(owner.membership, services.clean_filters(product=world["tents"].pk))
    assert set(_reprs(tents)) == {"Tents", "Pitch faster"}


def test_goal_filter_includes_its_proposals(owner: Persona, world: dict[str, Any]) -> None:
    assert owner.membership is not None
    page = services.activity(owner.membership, services.clean_filters(goal=world["paddle"].pk))
    assert set(_reprs(page)) == {"Paddle further", "Proposal on Paddle further (open)"}


def test_kind_action_and_person_filters(owner: Persona, member: Persona, world: dict[str, Any]) -> None:
    assert owner.membership is not None
    goals = services.activity(owner.membership, services.clean_filters(kind="strategy.goal"))
    assert set(_reprs(goals)) == {"Paddle further", "Pitch faster"}
    by_member = services.activity(owner.membership, services.clean_filters(person=member.user.pk))
    assert _reprs(by_member) == ["Proposal on Paddle further (open)"]
    created_products = services.activity(
        owner.membership, services.clean_filters(kind="strategy.product", action="created")
    )
    assert set(_reprs(created_products)) == {"Kayaks", "Tents"}


def test_pages_follow_each_other_without_gap_or_overlap(owner: Persona, world: dict[str, Any]) -> None:
    assert owner.membership is not None
    everything = _reprs(services.activity(owner.membership, services.Filters(), limit=200))
    assert len(everything) >= 7
    seen: list[str] = []
    cursor = None
    while True:
        page = services.activity(owner.membership, services.Filters(), before=cursor, limit=3)
        assert len(page.entries) <= 3
        seen += _reprs(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == everything


def test_goal_or_product_of_another_organisation_is_not_found(
    owner: Persona, outsider: Persona, world: dict[str, Any]
) -> None:
    assert outsider.membership is not None
    from truenorth.core.errors import NotFound

    with pytest.raises(NotFound):
        services.activity(outsider.membership, services.clean_filters(goal=world["paddle"].pk))
    with pytest.raises(NotFound):
        services.activity(outsider.membership, services.clean_filters(product=world["kayaks"].pk))
    assert "Kayaks" not in _reprs(services.activity(outsider.membership, services.Filters()))


# Web pages ----------------------------------------------------------------------------------------


def test_activity_pages(owner: Persona, world: dict[str, Any], outsider: Persona) -> None:
    html = owner.client.get("/o/alpha/activity/").content.decode()
    assert "Paddle further" in html and f'href="/o/alpha/goals/{world["paddle"].pk}/"' in html
    product_page = owner.client.get(f"/o/alpha/products/{world['tents'].pk}/activity/")
    assert product_page.status_code == 200
    body = product_page.content.decode()
    assert "Pitch faster" in body and "Paddle further" not in body
    filtered = owner.client.get("/o/alpha/activity/", {"kind": "strategy.goal", "action": "created"})
    assert "Kayak sales" not in filtered.content.decode()
    assert owner.client.get("/o/alpha/activity/", {"goal": "999999"}).status_code == 200
    assert outsider.client.get("/o/alpha/activity/").status_code == 404
    assert outsider.client.get(f"/o/bravo-secret/products/{world['tents'].pk}/activity/").status_code == 404


def test_web_pages_have_an_older_link(owner: Persona, world: dict[str, Any]) -> None:
    assert owner.membership is not None
    for i in range(services.PAGE_SIZE):
        strategy.create_goal(owner.membership, owner.user, title=f"Goal {i:02}")
    html = owner.client.get("/o/alpha/activity/").content.decode()
    assert 'data-testid="older"' in html
    older = services.activity(owner.membership, services.Filters()).next_cursor
    assert older is not None
    second = owner.client.get("/o/alpha/activity/", {"before": older}).content.decode()
    assert "Kayaks" in second and "Goal 49" not in second
    assert owner.client.get("/o/alpha/activity/", {"before": "nonsense"}).status_code == 200


def _feed_url(client: Client) -> str:
    response = client.post("/o/alpha/activity/feed-token/")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    html = response.content.decode()
    start = html.index("http://testserver/feeds/")
    return html[start : html.index("</code>", start)].removeprefix("http://testserver")


def test_atom_feed_is_valid_and_shows_only_its_organisation(
    owner: Persona, outsider: Persona, world: dict[str, Any]
) -> None:
    url = _feed_url(owner.client)
    assert FeedToken.objects.get(user=owner.user).token_hash != url.split("/")[2]  # only the hash is stored
    response = Client().get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    titles = [e.findtext(f"{ATOM}title") or "" for e in root.iter(f"{ATOM}entry")]
    assert any("Paddle further" in t for t in titles)
    assert all("Bravo" not in t for t in titles)
    links = [e.find(f"{ATOM}link").get("href") for e in root.iter(f"{ATOM}entry")]  # type: ignore[union-attr]
    assert f"http://testserver/o/alpha/goals/{world['paddle'].pk}/" in links
    tents = ET.fromstring(Client().get(url, {"product": world["tents"].pk}).content)
    tent_titles = {e.findtext(f"{ATOM}title") or "" for e in tents.iter(f"{ATOM}entry")}
    assert any("Pitch faster" in t for t in tent_titles) and not any("Paddle" in t for t in tent_titles)
    goals = ET.fromstring(Client().get(url, {"kind": "strategy.product"}).content)
    assert {e.findtext(f"{ATOM}title", "").split()[-1] for e in goals.iter(f"{ATOM}entry")} == {
        "Kayaks",
        "Tents",
    }
    # The outsider's own feed never shows organisation A; their product filter on A's product is a 404.
    outsider_url = _feed_url_of(outsider)
    other = Client().get(outsider_url).content.decode()
    assert "Paddle" not in other and "Kayaks" not in other
    assert Client().get(outsider_url, {"product": world["kayaks"].pk}).status_code == 404
    assert Client().get(url, {"product": "x"}).status_code == 404


def _feed_url_of(persona: Persona) -> str:
    assert persona.membership is not None
    raw = services.create_feed_token(persona.membership, persona.user)
    return f"/feeds/{raw}/activity.atom"


def test_regenerated_revoked_and_unknown_tokens_are_404(owner: Persona, world: dict[str, Any]) -> None:
    first = _feed_url(owner.client)
    second = _feed_url(owner.client)
    assert Client().get(first).status_code == 404
    assert Client().get(second).status_code == 200
    assert FeedToken.objects.filter(user=owner.user, revoked_at__isnull=True).count() == 1
    assert "You have a feed address" in owner.client.get("/o/alpha/activity/").content.decode()
    owner.client.post("/o/alpha/activity/feed-token/revoke/")
    assert Client().get(second).status_code == 404
    assert Client().get("/feeds/not-a-token/activity.atom").status_code == 404
    assert "You have no feed address" in owner.client.get("/o/alpha/activity/").content.decode()


def test_a_removed_members_token_stops_working(
    owner: Persona, member: Persona, world: dict[str, Any]
) -> None:
    assert owner.membership is not None and member.membership is not None
    url = _feed_url_of(member)
    assert Client().get(url).status_code == 200
    remove_member(owner.membership, owner.user, member.membership.pk)
    assert Client().get(url).status_code == 404


def test_one_active_token_per_person_is_a_database_rule(owner: Persona) -> None:
    assert owner.membership is not None
    services.create_feed_token(owner.membership, owner.user)
    with pytest.raises(IntegrityError), transaction.atomic():
        FeedToken.objects.create(
            user=owner.user, organisation_id=owner.membership.organisation_id, token_hash="x"
        )


def test_the_feed_is_rate_limited(owner: Persona, world: dict[str, Any]) -> None:
    url = _feed_url_of(owner)
    client = Client()
    for _ in range(services.FEED_RATE_LIMIT):
        assert client.get("/feeds/unknown/activity.atom").status_code == 404
    assert client.get(url).status_code == 429


# API and CLI --------------------------------------------------------------------------------------


def test_api_lists_pages_and_filters(owner: Persona, member: Persona, world: dict[str, Any]) -> None:
    api = owner.api()
    first = api.get("/api/v1/orgs/alpha/activity", {"limit": 2}).json()
    assert len(first["entries"]) == 2 and first["next"]
    second = api.get("/api/v1/orgs/alpha/activity", {"limit": 2, "before": first["next"]}).json()
    assert {e["id"] for e in first["entries"]}.isdisjoint({e["id"] for e in second["entries"]})
    goal = api.get("/api/v1/orgs/alpha/activity", {"goal": world["paddle"].pk}).json()
    assert {e["kind"] for e in goal["entries"]} == {"strategy.goal", "strategy.changeproposal"}
    by_member = api.get("/api/v1/orgs/alpha/activity", {"person": member.user.pk}).json()["entries"]
    assert [e["actor"] for e in by_member] == [member.user.email]
    assert by_member[0]["url"] == f"/o/alpha/goals/{world['paddle'].pk}/"


def test_api_errors(owner: Persona, outsider: Persona, world: dict[str, Any]) -> None:
    api = owner.api()
    bad = api.get("/api/v1/orgs/alpha/activity", {"action": "exploded"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "action"
    cursor = api.get("/api/v1/orgs/alpha/activity", {"before": "garbage"})
    assert cursor.status_code == 422 and cursor.json()["errors"][0]["field"] == "before"
    assert api.get("/api/v1/orgs/alpha/activity", {"limit": 0}).status_code == 422
    assert outsider.api().get("/api/v1/orgs/alpha/activity").status_code == 404
    other = outsider.api().get("/api/v1/orgs/bravo-secret/activity", {"goal": world["paddle"].pk})
    assert other.status_code == 404


def test_cli(owner: Persona, world: dict[str, Any]) -> None:
    import json

    runner = CliRunner()
    result = runner.invoke(
        app, ["activity", "--org", "alpha", "--as", owner.user.email, "--kind", "strategy.product", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert {e["object"] for e in json.loads(result.output)["entries"]} == {"Kayaks", "Tents"}
    from truenorth.cli import main

    assert main(["activity", "--org", "alpha", "--as", owner.user.email, "--action", "exploded"]) == 2
    assert main(["activity", "--org", "alpha", "--as", owner.user.email, "--person", "nobody@x.example"]) == 2


def test_engagement_objects_are_linked_too(owner: Persona) -> None:
    from truenorth.engagement.services import health, stakeholders

    assert owner.membership is not None
    person = stakeholders.create_stakeholder(owner.membership, owner.user, name="Legal lead")
    health.save_assessment(owner.membership, owner.user)
    page = services.activity(owner.membership, services.Filters())
    urls = {e.kind: e.url for e in page.entries}
    assert urls["Stakeholder"] == f"/o/alpha/engagement/stakeholders/{person.pk}/"
    assert urls["Health check"] == "/o/alpha/health-check/"
