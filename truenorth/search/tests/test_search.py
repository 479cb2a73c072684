"""Search: one organisation's goals, measures, hypotheses, experiments, work items and learnings, through
the database's full-text index (FTS5 / tsvector), ranked, highlighted safely, kept up to date, isolated."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from typer.testing import CliRunner

from truenorth.hypotheses import services as validation
from truenorth.hypotheses.models import Decision, Experiment, Hypothesis
from truenorth.measures import services as value
from truenorth.measures.models import KVA, Measure
from truenorth.orgs.models import Membership, Role
from truenorth.search import services
from truenorth.search.models import SearchEntry
from truenorth.strategy import services as vision
from truenorth.strategy.models import Goal, Product, WorkItem

if TYPE_CHECKING:
    from conftest import Persona


@dataclass
class World:
    product: Product
    goal: Goal
    measure: Measure
    hypothesis: Hypothesis
    experiment: Experiment
    decision: Decision
    item: WorkItem


def populate(m: Membership, u: Any, prefix: str = "") -> World:
    product = vision.create_product(m, u, name=f"{prefix}Storefront")
    goal = vision.create_goal(
        m, u, product_id=product.pk, title=f"{prefix}Faster checkout", outcome="Shoppers pay in one step"
    )
    measure = value.create_measure(
        m, u, name=f"{prefix}Basket abandonment", kva=KVA.CURRENT_VALUE, product_id=product.pk,
        description="Share of baskets left at the payment page",
    )
    hypothesis = validation.create_hypothesis(
        m, u, product.pk, title=f"{prefix}Wallet payments", capability="Pay with a saved wallet",
        who="returning shoppers", outcome="more completed orders", metric_name="Orders", baseline=1, target=2,
    )
    validation.move_hypothesis(m, u, hypothesis.pk, "ready")
    experiment = validation.create_experiment(
        m, u, hypothesis.pk, name=f"{prefix}Wallet button test", kind="ab",
        variations=[{"name": "control", "allocation": 0.5}, {"name": "wallet", "allocation": 0.5}],
        metrics=[{"role": "primary", "name": "Orders"}],
    )
    validation.move_hypothesis(m, u, hypothesis.pk, "testing")
    validation.store_snapshot(experiment, method="frequentist", inputs={}, results={"n": 1})
    decision = validation.conclude(
        m, u, hypothesis.pk, outcome="validated", decision="persevere",
        learning="Returning shoppers trust wallets more than card forms",
    )
    item = vision.create_work_item(m, u, product.pk, title=f"{prefix}Add wallet SDK", external_key="SHOP-7")
    return World(product, goal, measure, hypothesis, experiment, decision, item)


@pytest.fixture
def world(owner: Persona) -> World:
    assert owner.membership is not None
    return populate(owner.membership, owner.user)


def found(persona: Persona, q: str) -> list[tuple[str, str]]:
    assert persona.membership is not None
    return [(r.kind, r.title) for r in services.search(persona.membership, q)]


def test_every_kind_of_object_is_found_and_links_to_its_own_page(owner: Persona, world: World) -> None:
    cases = {
        "checkout": ("goal", world.goal.pk),
        "abandonment": ("measure", world.measure.pk),
        "saved wallet": ("hypothesis", world.hypothesis.pk),
        "button": ("experiment", world.experiment.pk),
        "SDK": ("work_item", world.item.pk),
        "trust card": ("learning", world.decision.pk),
    }
    assert owner.membership is not None
    for q, (kind, pk) in cases.items():
        results = services.search(owner.membership, q)
        assert [(r.kind, r.object_id) for r in results] == [(kind, pk)], q
        assert owner.client.get(results[0].url).status_code == 200, results[0].url


def test_words_are_stemmed_and_matched_as_prefixes(owner: Persona, world: World) -> None:
    assert ("goal", "Faster checkout") in found(owner, "checkouts")
    assert ("goal", "Faster checkout") in found(owner, "check")
    assert ("measure", "Basket abandonment") in found(owner, "BASK aband")


def test_a_title_match_ranks_above_a_match_in_the_text(owner: Persona, world: World) -> None:
    assert owner.membership is not None
    m, u = owner.membership, owner.user
    vision.create_goal(m, u, product_id=world.product.pk, title="Loyalty scheme", outcome="Repeat orders grow")
    vision.create_goal(m, u, product_id=world.product.pk, title="Orders shipped same day")
    results = services.search(m, "orders")
    titles = [r.title for r in results]
    assert titles[0] == "Orders shipped same day"
    assert "Loyalty scheme" in titles
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


def test_snippets_highlight_the_match_and_escape_everything_else(owner: Persona, world: World) -> None:
    assert owner.membership is not None
    vision.create_goal(
        owner.membership, owner.user, product_id=world.product.pk, title="<b>Bold</b> returns",
        outcome='Halve returns <script>alert("x")</script> \ue000 by spring',
    )
    page = owner.client.get("/o/alpha/search/", {"q": "returns"}).content.decode()
    assert "<mark>returns</mark>" in page
    # SQLite keeps the tag as text (escaped); PostgreSQL's ts_headline drops tags from snippets.
    assert "alert(&quot;x&quot;)" in page
    assert "<script>alert" not in page and "<b>Bold</b>" not in page
    assert "&lt;b&gt;Bold&lt;/b&gt;" in page
    api = owner.api().get("/api/v1/orgs/alpha/search", {"q": "returns"}).json()
    assert api[0]["snippet_html"].count("<mark>returns</mark>") == 1
    assert api[0]["title_html"] == "&lt;b&gt;Bold&lt;/b&gt; <mark>returns</mark>"
    assert "\ue000" not in api[0]["snippet"]


def test_the_index_follows_updates_archiving_restoring_and_deletes(owner: Persona, world: World) -> None:
    assert owner.membership is not None
    m, u = owner.membership, owner.user
    goal = vision.update_goal(m, u, world.goal.pk, title="Quicker payment", version=world.goal.version)
    assert ("goal", "Quicker payment") in found(owner, "quicker")
    assert not [r for r in found(owner, "faster") if r[0] == "goal"]

    goal = vision.archive_goal(m, u, goal.pk, version=goal.version)
    assert found(owner, "quicker") == []
    vision.archive_goal(m, u, goal.pk, archived=False, version=goal.version)
    assert found(owner, "quicker") == [("goal", "Quicker payment")]

    measure = value.archive_measure(m, u, world.measure.pk, version=world.measure.version)
    assert found(owner, "abandonment") == []
    value.archive_measure(m, u, measure.pk, archived=False, version=measure.version)
    assert found(owner, "abandonment") == [("measure", "Basket abandonment")]

    other = validation.create_hypothesis(m, u, world.product.pk, title="Gift cards")
    validation.update_hypothesis(m, u, other.pk, title="Gift vouchers", version=other.version)
    assert found(owner, "gift") == [("hypothesis", "Gift vouchers")]

    world.item.delete()
    assert found(owner, "SDK") == []
    assert not SearchEntry.objects.filter(kind="work_item", object_id=world.item.pk).exists()


@pytest.mark.parametrize(
    "q",
    ['"', 'wallet"', '"wallet', "AND", "wallet AND", "OR wallet", "NOT", "NEAR(wallet", "(", ")", "*", "wallet*",
     "-wallet", "title:wallet", "body:x", "^wallet", "'", "\\", "&", "|", "!", ":*", "wallet:*", "a & | b",
     "{wallet}", "[wallet]", "+", "%", "_", "__init__", "\x00", "ü", "日本", "   ", "", "x" * 500],
)
def test_typed_operators_quotes_and_odd_characters_never_fail(owner: Persona, world: World, q: str) -> None:
    assert owner.membership is not None
    services.search(owner.membership, q)
    assert owner.client.get("/o/alpha/search/", {"q": q}).status_code == 200
    response = owner.api().get("/api/v1/orgs/alpha/search", {"q": q[:200]})
    assert response.status_code == 200, response.content


def test_operators_are_searched_as_words(owner: Persona, world: World) -> None:
    assert found(owner, 'wallet" OR "checkout') == []  # every word must match; OR is a word here
    assert ("experiment", "Wallet button test") in found(owner, '"wallet button"')


def test_the_api_answers_ranked_results_with_links(owner: Persona, world: World) -> None:
    response = owner.api_read().get("/api/v1/orgs/alpha/search", {"q": "wallet", "limit": "10"})
    assert response.status_code == 200
    body = response.json()
    assert {r["kind"] for r in body} == {"hypothesis", "experiment", "work_item", "learning"}
    assert [r["score"] for r in body] == sorted((r["score"] for r in body), reverse=True)
    assert body[0]["url"].startswith("/o/alpha/")
    assert all("<mark>" in r["title_html"] + r["snippet_html"] for r in body)
    assert owner.api().get("/api/v1/orgs/alpha/search", {"limit": 0}).status_code == 422
    assert owner.api().get("/api/v1/orgs/alpha/search").json() == []


def test_another_organisations_matching_objects_never_appear(
    owner: Persona, outsider: Persona, world: World
) -> None:
    assert outsider.membership is not None
    theirs = populate(outsider.membership, outsider.user, prefix="Bravo ")
    mine = services.search(owner.membership, "wallet checkout abandonment sdk bravo") if owner.membership else []
    assert mine == []
    for q in ("wallet", "checkout", "abandonment", "SDK", "trust", "button"):
        assert all("Bravo" not in title for _, title in found(owner, q)), q
        assert all(title.startswith("Bravo") or kind == "learning" for kind, title in found(outsider, q)), q
        assert found(outsider, q), q
    # The outsider cannot search organisation A, on the web or in the API: 404 as if it did not exist.
    assert outsider.client.get("/o/alpha/search/", {"q": "wallet"}).status_code == 404
    assert outsider.api().get("/api/v1/orgs/alpha/search", {"q": "wallet"}).status_code == 404
    page = owner.client.get("/o/alpha/search/", {"q": "wallet"}).content.decode()
    assert "Bravo" not in page and f"/goals/{theirs.goal.pk}/" not in page


def test_the_page_says_what_was_found_and_lists_links_best_first(owner: Persona, world: World) -> None:
    page = owner.client.get("/o/alpha/search/", {"q": "wallet"}).content.decode()
    assert "4 results for “wallet”, best first." in page
    assert 'data-search-results' in page and 'class="search-result"' in page
    empty = owner.client.get("/o/alpha/search/", {"q": "zebra"}).content.decode()
    assert "0 results for “zebra”." in empty
    nav = owner.client.get("/o/alpha/").content.decode()
    assert 'action="/o/alpha/search/"' in nav and 'aria-keyshortcuts="/"' in nav


def test_reindex_rebuilds_an_emptied_index_from_the_objects(owner: Persona, world: World) -> None:
    SearchEntry.objects.all().delete()
    assert found(owner, "wallet") == []
    from truenorth.cli import app as cli_app

    result = CliRunner().invoke(cli_app, ["reindex"])
    assert result.exit_code == 0, result.output
    assert "Indexed 6 object(s)" in result.output
    assert len(found(owner, "wallet")) == 4


def test_the_migration_builds_entries_for_objects_that_already_exist(owner: Persona, world: World) -> None:
    SearchEntry.objects.all().delete()
    migration = importlib.import_module("truenorth.search.migrations.0001_search_index")
    migration.build_entries(apps, None)
    assert {e.kind for e in SearchEntry.objects.all()} == {
        "goal", "measure", "hypothesis", "experiment", "work_item", "learning"
    }
    assert ("learning", "Wallet payments") in found(owner, "trust")


def _count(call: Any) -> int:
    call()  # warm-up
    with CaptureQueriesContext(connection) as ctx:
        call()
    return len(ctx.captured_queries)


def test_search_runs_a_fixed_number_of_queries_however_many_match(owner: Persona, world: World) -> None:
    assert owner.membership is not None
    m, u = owner.membership, owner.user

    def web() -> None:
        assert owner.client.get("/o/alpha/search/", {"q": "wallet"}).status_code == 200

    def api() -> None:
        assert owner.api().get("/api/v1/orgs/alpha/search", {"q": "wallet"}).status_code == 200

    few = (_count(web), _count(api), len(found(owner, "wallet")))
    for i in range(40):
        vision.create_goal(m, u, product_id=world.product.pk, title=f"Wallet goal {i}")
        vision.create_work_item(m, u, world.product.pk, title=f"Wallet task {i}")
    many = (_count(web), _count(api), len(found(owner, "wallet")))
    assert many[2] == services.DEFAULT_LIMIT > few[2]
    assert many[:2] == few[:2]
    # Web: session, user, membership, the search, org switcher, unread notifications; API: token, the
    # organisation's two-factor requirement (accounts.twofactor middleware), membership, search.
    assert many[:2] == (6, 4)


def test_a_member_and_a_stakeholder_search_too(member: Persona, stakeholder: Persona, world: World) -> None:
    assert ("goal", "Faster checkout") in found(stakeholder, "checkout")
    assert member.client.get("/o/alpha/search/", {"q": "checkout"}).status_code == 200
    assert Role.STAKEHOLDER == stakeholder.membership.role if stakeholder.membership else False
