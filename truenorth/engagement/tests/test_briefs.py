"""The product brief: its content from live data, a fixed query count, Markdown, the PDF (opened and
read), share links (public, expiring, revocable, only their brief), the API and the CLI."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from truenorth.engagement.models import BriefDocument, ShareLink
from truenorth.engagement.services import briefs as services
from truenorth.engagement.services.briefs_render import brief_html, brief_markdown, brief_pdf
from truenorth.history.models import HistoryEntry
from truenorth.hypotheses.models import Decision, Hypothesis
from truenorth.measures.models import KVA, Measure, Observation
from truenorth.strategy.models import CheckIn, Endorsement, Goal, Product

NOW = timezone.now()


@dataclass
class World:
    product: Product
    other: Product
    root: Goal
    child: Goal
    fresh: Measure
    stale: Measure
    decision: Decision


def _measure(
    org: Any, product: Product, name: str, kva: str, cadence: int, values: list[tuple[int, float]]
) -> Measure:
    m = Measure.objects.create(
        organisation=org,
        product=product,
        name=name,
        kva=kva,
        unit="pts",
        cadence_days=cadence,
        baseline=10,
        target=50,
    )
    for days_ago, value in values:
        Observation.objects.create(measure=m, value=value, observed_at=NOW - dt.timedelta(days=days_ago))
    return m


@pytest.fixture
def world(owner, member) -> World:
    org = owner.membership.organisation
    product = Product.objects.create(
        organisation=org,
        name="Trail Maps",
        vision="Every hiker finds their way",
        product_goal="Double weekly planners",
        owner=owner.user,
    )
    other = Product.objects.create(organisation=org, name="Secret Other Product", vision="Hidden vision")
    Goal.objects.create(organisation=org, product=other, title="Other product goal", status="active")
    root = Goal.objects.create(
        organisation=org, product=product, title="Grow weekly planners", status="active", owner=owner.user
    )
    child = Goal.objects.create(
        organisation=org,
        product=product,
        parent=root,
        title="Faster route search",
        status="active",
        level="intermediate",
    )
    CheckIn.objects.create(goal=child, author=owner.user, status="off_track", confidence=2, narrative="slow")
    Endorsement.objects.create(goal=root, user=member.user, kind="concern", note="Too vague")
    fresh = _measure(
        org, product, "Weekly planners", KVA.CURRENT_VALUE, 30, [(60, 20.0), (30, 25.0), (2, 31.0)]
    )
    stale = _measure(org, product, "Lead time", KVA.TIME_TO_MARKET, 7, [(80, 12.0), (40, 10.0)])
    hypothesis = Hypothesis.objects.create(
        organisation=org, product=product, title="Offline maps bring planners", state="concluded"
    )
    Hypothesis.objects.create(
        organisation=org, product=product, title="Route sharing grows reach", state="testing"
    )
    decision = Decision.objects.create(
        hypothesis=hypothesis,
        outcome="validated",
        decision="persevere",
        learning="Hikers plan offline",
        decided_by=owner.user,
    )
    return World(product, other, root, child, fresh, stale, decision)


def test_the_brief_reads_every_pillar(owner, world) -> None:
    brief = services.build_brief(owner.membership, world.product)
    assert brief.product == "Trail Maps" and brief.vision == "Every hiker finds their way"
    assert [g.title for g in brief.goals] == ["Grow weekly planners", "Faster route search"]
    assert brief.goals[1].depth == 1 and brief.goals[1].confidence == 2
    assert brief.goals[0].owner == "Owner A"  # a name, never the e-mail
    by_name = {m.name: m for m in brief.measures}
    assert by_name["Weekly planners"].latest_value == 31.0 and not by_name["Weekly planners"].stale
    assert by_name["Weekly planners"].change == 31.0 - 20.0 and by_name["Weekly planners"].improving is True
    assert by_name["Lead time"].stale
    kinds = {(r.kind, r.title) for r in brief.risks}
    assert ("stale_evidence", "Lead time") in kinds
    assert ("off_track", "Faster route search") in kinds
    assert ("open_concern", "Grow weekly planners") in kinds
    assert brief.risks[0].severity == 3  # off track first
    assert [d.hypothesis for d in brief.decisions] == ["Offline maps bring planners"]
    assert [h.title for h in brief.hypotheses] == ["Route sharing grows reach"]
    assert "Other product goal" not in json.dumps([g.title for g in brief.goals])
    assert brief.charts and brief.charts[0].chart is not None


def test_old_decisions_are_left_out(owner, world) -> None:
    Decision.objects.filter(pk=world.decision.pk).update(decided_at=NOW - dt.timedelta(days=120))
    assert services.build_brief(owner.membership, world.product).decisions == []


def test_another_organisations_product_is_not_found(outsider, world) -> None:
    from truenorth.core.errors import NotFound

    with pytest.raises(NotFound):
        services.build_brief(outsider.membership, world.product.pk)


def _grow(org: Any, product: Product, n: int) -> None:
    parent = Goal.objects.filter(product=product).first()
    for i in range(n):
        g = Goal.objects.create(
            organisation=org, product=product, parent=parent, title=f"Extra {i}", status="active"
        )
        CheckIn.objects.create(goal=g, status="at_risk", confidence=3)
        m = _measure(org, product, f"Extra measure {i}", KVA.ABILITY_TO_INNOVATE, 7, [(3, 1.0), (1, 2.0)])
        del m
    Decision.objects.create(
        hypothesis=Hypothesis.objects.create(
            organisation=org, product=product, title="More", state="concluded"
        ),
        outcome="invalidated",
        decision="stop",
        learning="No",
    )


def test_the_query_count_does_not_grow_with_the_product(owner, world, django_assert_max_num_queries) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("engagement:brief", args=("alpha", world.product.pk))
    owner.client.get(url)  # the session and caches warm
    with CaptureQueriesContext(connection) as small:
        services.build_brief(owner.membership, world.product.pk)
    with CaptureQueriesContext(connection) as page:
        assert owner.client.get(url).status_code == 200
    _grow(owner.membership.organisation, world.product, 25)
    with django_assert_max_num_queries(len(small.captured_queries)):
        brief = services.build_brief(owner.membership, world.product.pk)
    with django_assert_max_num_queries(len(page.captured_queries)):
        assert owner.client.get(url).status_code == 200
    assert len(brief.goals) == 27 and len(brief.measures) == 27
    assert len(small.captured_queries) <= 20  # product, measures, buckets, charts, goals, roll-ups, …


def test_the_page_shows_the_brief_with_interactive_charts(owner, world) -> None:
    url = reverse("engagement:brief", args=("alpha", world.product.pk))
    response = owner.client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    for text in (
        "Grow weekly planners",
        "Faster route search",
        "Lead time",
        "Hikers plan offline",
        "Stale evidence",
    ):
        assert text in body
    # The script's name carries a content hash once `collectstatic` has run (truenorth serve does).
    assert 'data-vega-spec="brief-chart-' in body and re.search(r"vega-embed\.min(\.[0-9a-f]{12})?\.js", body)
    assert "Secret Other Product" not in body


def test_a_stakeholder_reads_the_brief_but_cannot_share(stakeholder, world) -> None:
    url = reverse("engagement:brief", args=("alpha", world.product.pk))
    response = stakeholder.client.get(url)
    assert response.status_code == 200 and b"Create a share link" not in response.content
    post = stakeholder.client.post(
        reverse("engagement:brief_share_create", args=("alpha", world.product.pk)),
        {"label": "x", "expires_in_days": 5},
    )
    assert post.status_code == 403 and not ShareLink.objects.exists()


def test_markdown_download(owner, world) -> None:
    response = owner.client.get(reverse("engagement:brief", args=("alpha", world.product.pk)) + "?format=md")
    assert (
        response["Content-Type"].startswith("text/markdown")
        and "attachment" in response["Content-Disposition"]
    )
    text = response.content.decode()
    assert text.startswith("# Trail Maps — product brief")
    assert "| Grow weekly planners |" in text and "| — Faster route search |" in text
    assert "**Stale evidence** — Lead time" in text
    assert "owner@a.example" not in text


def test_markdown_escapes_what_people_type(owner, world) -> None:
    Goal.objects.filter(pk=world.root.pk).update(title="A | B *bold* <script>")
    text = brief_markdown(services.build_brief(owner.membership, world.product))
    assert "A \\| B \\*bold\\* \\<script\\>" in text


def test_the_pdf_opens_with_the_goal_titles_and_a_vector_chart(owner, world) -> None:
    from pypdf import PdfReader

    brief = services.build_brief(owner.membership, world.product)
    html = brief_html(brief, for_pdf=True)
    assert "<svg" in html and "<img" not in html and "data-vega-spec" not in html
    pdf = brief_pdf(brief)
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Grow weekly planners" in text and "Faster route search" in text
    # The chart is drawn as vector: its title and axis are text in the PDF, and no image is embedded.
    assert "Observed" in text
    assert all(not page.images for page in reader.pages)


def test_the_pdf_is_a_job_and_only_its_member_downloads_it(owner, admin, world) -> None:
    response = owner.client.post(reverse("engagement:brief_pdf", args=("alpha", world.product.pk)))
    assert response.status_code == 302 and "/jobs/" in response["Location"]
    document = BriefDocument.objects.get()
    assert document.created_by == owner.user and document.size == len(bytes(document.pdf))
    url = reverse("engagement:brief_document", args=("alpha", document.pk))
    job_page = owner.client.get(response["Location"]).content.decode()
    assert f'href="{url}"' in job_page and "Download the PDF" in job_page
    got = owner.client.get(url)
    assert (
        got.status_code == 200
        and got["Content-Type"] == "application/pdf"
        and got.content.startswith(b"%PDF")
    )
    assert admin.client.get(url).status_code == 404
    BriefDocument.objects.update(expires_at=NOW - dt.timedelta(minutes=1))
    assert owner.client.get(url).status_code == 404
    assert services.purge_documents() == 1


# --- share links ----------------------------------------------------------------------------------


def _share(owner, product: Product, days: int = 30) -> str:
    response = owner.client.post(
        reverse("engagement:brief_share_create", args=("alpha", product.pk)),
        {"label": "Board pack", "expires_in_days": days},
    )
    assert response.status_code == 201, response.content
    url = response.context["url"]
    return url.split("/share/")[1].strip("/")


def test_a_share_link_shows_only_its_brief_without_signing_in(client, owner, world) -> None:
    token = _share(owner, world.product)
    link = ShareLink.objects.get()
    assert link.token_hash == services.token_hash(token) and token not in link.token_hash
    assert HistoryEntry.objects.filter(object_type="engagement.sharelink", action="created").exists()
    response = client.get(reverse("engagement:share", args=(token,)))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Grow weekly planners" in body and "Hikers plan offline" in body
    assert "Secret Other Product" not in body and "Other product goal" not in body
    assert "/o/alpha" not in body and "@a.example" not in body and "Sign in" not in body
    assert 'href="/' not in body.replace('href="/static/', "").replace(f'href="/share/{token}/brief.md"', "")
    md = client.get(reverse("engagement:share_markdown", args=(token,)))
    assert md.status_code == 200 and "Grow weekly planners" in md.content.decode()
    link.refresh_from_db()
    assert link.use_count == 2 and link.last_used_at is not None
    # The link opens nothing else: the app's pages still ask for a sign-in.
    assert client.get(reverse("engagement:brief", args=("alpha", world.product.pk))).status_code == 302


def test_expired_revoked_and_unknown_links_are_the_same_404(client, owner, world) -> None:
    token = _share(owner, world.product)
    unknown = client.get(reverse("engagement:share", args=("nope" * 10,)))
    assert unknown.status_code == 404
    link = ShareLink.objects.get()
    ShareLink.objects.update(expires_at=NOW - dt.timedelta(seconds=1))
    expired = client.get(reverse("engagement:share", args=(token,)))
    ShareLink.objects.update(expires_at=NOW + dt.timedelta(days=1))
    owner.client.post(reverse("engagement:brief_share_revoke", args=("alpha", world.product.pk, link.pk)))
    revoked = client.get(reverse("engagement:share", args=(token,)))
    md = client.get(reverse("engagement:share_markdown", args=(token,)))
    assert expired.status_code == revoked.status_code == md.status_code == 404
    assert expired.content == revoked.content == unknown.content == md.content
    assert HistoryEntry.objects.filter(object_type="engagement.sharelink", action="updated").count() == 1


def test_share_links_are_rate_limited_per_address(client, owner, world, settings) -> None:
    from django.core.cache import cache

    cache.clear()
    for _ in range(60):
        client.get(reverse("engagement:share", args=("unknown-token",)))
    assert client.get(reverse("engagement:share", args=("unknown-token",))).status_code == 429
    cache.clear()


def test_a_share_link_expires_within_the_limit(owner, world) -> None:
    response = owner.client.post(
        reverse("engagement:brief_share_create", args=("alpha", world.product.pk)),
        {"label": "Long", "expires_in_days": 365},
    )
    assert response.status_code == 422 and not ShareLink.objects.exists()


# --- API --------------------------------------------------------------------------------------------


def _api(path: str) -> str:
    return f"/api/v1/orgs/alpha{path}"


def test_api_brief_json_and_markdown(owner, world) -> None:
    data = owner.api_read().get(_api(f"/products/{world.product.pk}/brief")).json()
    assert [g["title"] for g in data["goals"]] == ["Grow weekly planners", "Faster route search"]
    assert any(r["kind"] == "stale_evidence" and r["title"] == "Lead time" for r in data["risks"])
    md = owner.api_read().get(_api(f"/products/{world.product.pk}/brief.md"))
    assert md.status_code == 200 and md["Content-Type"].startswith("text/markdown")
    assert "Grow weekly planners" in md.content.decode()


def test_api_pdf_job_and_document(owner, member, world) -> None:
    response = owner.api().post(_api(f"/products/{world.product.pk}/brief/pdf"))
    assert response.status_code == 202 and response["Location"]
    job = response.json()
    assert job["status"] == "succeeded", job
    document_id = job["result"]["document"]
    pdf = owner.api_read().get(_api(f"/brief-documents/{document_id}"))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert member.api_read().get(_api(f"/brief-documents/{document_id}")).status_code == 404


def test_api_share_links(owner, stakeholder, outsider, world) -> None:
    path = _api(f"/products/{world.product.pk}/share-links")
    created = owner.api().post(
        path, {"label": "Board pack", "expires_in_days": 10}, content_type="application/json"
    )
    assert created.status_code == 201
    body = created.json()
    assert "/share/" in body["url"] and body["live"]
    listed = owner.api_read().get(path).json()
    assert len(listed) == 1 and "url" not in listed[0]
    assert stakeholder.api().post(path, {"label": "x"}, content_type="application/json").status_code == 403
    assert (
        owner.api()
        .post(path, {"label": "x", "expires_in_days": 0}, content_type="application/json")
        .status_code
        == 422
    )
    bad = owner.api().post(path, {"label": "", "expires_in_days": 5}, content_type="application/json")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "label"
    assert (
        owner.api().post(path, {"label": "x", "extra": 1}, content_type="application/json").status_code == 422
    )
    link_path = _api(f"/share-links/{body['id']}")
    assert outsider.api().delete(link_path).status_code == 404
    assert owner.api_read().delete(link_path).status_code == 403
    revoked = owner.api().delete(link_path)
    assert revoked.status_code == 200 and revoked.json()["live"] is False
    assert owner.api().delete(link_path).status_code == 200  # revoking twice changes nothing
    assert HistoryEntry.objects.filter(object_type="engagement.sharelink").count() == 2


def test_api_errors(owner, outsider, world) -> None:
    assert outsider.api_read().get(_api(f"/products/{world.product.pk}/brief")).status_code == 404
    assert owner.api_read().get(_api("/products/2147483000/brief")).status_code == 404
    assert owner.api_read().get(_api("/products/0/brief")).status_code == 422
    assert owner.api_read().get(_api("/brief-documents/2147483000")).status_code == 404
    assert owner.api_read().post(_api(f"/products/{world.product.pk}/brief/pdf")).status_code == 403


# --- CLI --------------------------------------------------------------------------------------------


def test_cli_renders_pdf_markdown_and_json(owner, world, tmp_path, capsys) -> None:
    from truenorth.cli import main

    pdf, md = tmp_path / "out.pdf", tmp_path / "out.md"
    code = main(
        [
            "brief",
            "Trail Maps",
            "--pdf",
            str(pdf),
            "--markdown",
            str(md),
            "--org",
            "alpha",
            "--as",
            "owner@a.example",
        ]
    )
    assert code == 0
    assert pdf.read_bytes().startswith(b"%PDF") and "Grow weekly planners" in md.read_text()
    capsys.readouterr()
    assert main(["brief", str(world.product.pk), "--json", "--org", "alpha", "--as", "owner@a.example"]) == 0
    assert json.loads(capsys.readouterr().out)["product"] == "Trail Maps"
    assert main(["brief", "No such product", "--org", "alpha", "--as", "owner@a.example"]) == 2
    assert "No such product" in capsys.readouterr().err


def test_the_alignment_index_is_shown_unless_hidden(owner, world, monkeypatch, client) -> None:
    from truenorth.engagement.services import pulses

    summary = pulses.AlignmentSummary(
        index=72.5, clarity=0.775, commitment=0.7, similarity=0.6, responses=12, invited=15,
        response_rate=0.8, round_closed_at=None, previous_index=61.0, hidden=False,
    )  # fmt: skip
    monkeypatch.setattr(pulses, "product_alignment", lambda membership, product: summary)
    brief = services.build_brief(owner.membership, world.product)
    assert brief.alignment is not None and brief.alignment.index == 72.5
    text = brief_markdown(brief)
    assert (
        "**Alignment index:** 72.5 / 100 (previously 61)" in text and "Clarity 78 % · commitment 70 %" in text
    )
    token = _share(owner, world.product)
    assert "72.5" in client.get(reverse("engagement:share", args=(token,))).content.decode()
    hidden = pulses.AlignmentSummary(**{**summary.__dict__, "index": None, "hidden": True, "responses": 3})
    monkeypatch.setattr(pulses, "product_alignment", lambda membership, product: hidden)
    text = brief_markdown(services.build_brief(owner.membership, world.product))
    assert "Too few answers to show (3 of 15)." in text and "72.5" not in text


def test_a_product_name_cannot_break_the_download_headers(owner, world) -> None:
    Product.objects.filter(pk=world.product.pk).update(name='Trail "Maps"\r\nX-Evil: 1')
    owner.client.post(reverse("engagement:brief_pdf", args=("alpha", world.product.pk)))
    document = BriefDocument.objects.get()
    got = owner.client.get(reverse("engagement:brief_document", args=("alpha", document.pk)))
    assert got.status_code == 200 and "X-Evil" not in got.headers
    assert got["Content-Disposition"].startswith('attachment; filename="trail-maps-x-evil-1-brief-')
    md = owner.client.get(reverse("engagement:brief", args=("alpha", world.product.pk)) + "?format=md")
    assert md.status_code == 200 and md["Content-Disposition"].startswith('attachment; filename="trail-maps-')


def test_an_empty_product_has_a_brief_too(owner, org_a) -> None:
    empty = Product.objects.create(organisation=org_a, name="Blank")
    brief = services.build_brief(owner.membership, empty)
    assert brief.goals == [] and brief.measures == [] and brief.risks == [] and brief.alignment is None
    assert len(brief.missing_kvas) == 4 and brief.progress is None
    assert "No goal yet." in brief_markdown(brief) and brief_pdf(brief).startswith(b"%PDF")
    assert owner.client.get(reverse("engagement:brief", args=("alpha", empty.pk))).status_code == 200
