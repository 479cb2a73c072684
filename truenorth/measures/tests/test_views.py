"""Value pages through the test client: everyone in the organisation reads them, stakeholders cannot
write, bad input comes back as an error on the field, and a file import goes preview, then import."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from truenorth.measures import services
from truenorth.measures.models import KVA, CatalogueMeasure, Investment, Measure, Observation
from truenorth.strategy import services as strategy_services
from truenorth.strategy.models import Product

SLUG = "alpha"


@pytest.fixture
def product(owner) -> Product:
    return strategy_services.create_product(owner.membership, owner.user, name="Trailhead")


@pytest.fixture
def measure(owner, product) -> Measure:
    m = services.create_measure(
        owner.membership,
        owner.user,
        name="NPS",
        kva=KVA.CURRENT_VALUE,
        product_id=product.pk,
        unit="pts",
        baseline=20,
        target=60,
    )
    services.add_observation(owner.membership, owner.user, m.pk, 31, observed_at="2026-01-05T09:00:00Z")
    services.add_observation(owner.membership, owner.user, m.pk, 35, observed_at="2026-02-05T09:00:00Z")
    return m


def urls(product: Product, measure: Measure) -> dict[str, str]:
    p = {"org_slug": SLUG, "product_id": product.pk}
    m = {"org_slug": SLUG, "measure_id": measure.pk}
    return {
        "catalogue": reverse("measures:catalogue", kwargs={"org_slug": SLUG}),
        "product_measures": reverse("measures:product_measures", kwargs=p),
        "dashboard": reverse("measures:dashboard", kwargs=p),
        "investments": reverse("measures:investments", kwargs=p),
        "measure": reverse("measures:measure", kwargs=m),
        "export_csv": reverse("measures:export_csv", kwargs=m),
        "export_json": reverse("measures:export_json", kwargs=m),
        "chart_svg": reverse("measures:chart_svg", kwargs=m),
    }


def posts(product: Product, measure: Measure) -> list[str]:
    p = {"org_slug": SLUG, "product_id": product.pk}
    m = {"org_slug": SLUG, "measure_id": measure.pk}
    first = Observation.objects.filter(measure=measure).first()
    assert first is not None
    return [
        reverse("measures:catalogue", kwargs={"org_slug": SLUG}),
        reverse("measures:product_measures", kwargs=p),
        reverse("measures:investments", kwargs=p),
        reverse("measures:value_measure", kwargs=p),
        reverse("measures:observation_add", kwargs=m),
        reverse("measures:observation_correct", kwargs={**m, "observation_id": first.pk}),
        reverse("measures:import", kwargs=m),
    ]


def text(response) -> str:
    return response.content.decode()


@pytest.mark.parametrize("persona", ["owner", "stakeholder"])
def test_every_value_page_renders_for_owner_and_stakeholder(request, persona, product, measure) -> None:
    client = request.getfixturevalue(persona).client
    for name, url in urls(product, measure).items():
        response = client.get(url)
        assert response.status_code == 200, name
    page = text(client.get(urls(product, measure)["dashboard"]))
    assert page.count('data-testid="kva-column"') == 4
    assert "Unbalanced evidence" in page
    measure_page = text(client.get(urls(product, measure)["measure"]))
    assert 'id="measure-chart-spec" type="application/json"' in measure_page
    assert ("Record an observation" in measure_page) is (persona == "owner")


def test_a_stakeholder_post_is_forbidden_and_changes_nothing(stakeholder, product, measure) -> None:
    before = Observation.objects.count(), Measure.objects.count(), Investment.objects.count()
    for url in posts(product, measure):
        response = stakeholder.client.post(url, {"value": "1", "name": "X", "kva": KVA.CURRENT_VALUE})
        assert response.status_code == 403, url
    assert (Observation.objects.count(), Measure.objects.count(), Investment.objects.count()) == before


def test_an_outsider_sees_nothing(outsider, product, measure) -> None:
    for name, url in urls(product, measure).items():
        assert outsider.client.get(url).status_code == 404, name
    for url in posts(product, measure):
        assert outsider.client.post(url, {"value": "1"}).status_code == 404, url


def test_the_dashboard_shows_latest_value_change_and_target(owner, product, measure) -> None:
    page = text(
        owner.client.get(
            urls(product, measure)["dashboard"] + "?period=custom&since=2026-01-01&until=2026-03-01"
        )
    )
    assert "NPS" in page
    assert ">35<" in page
    assert "25 to target 60" in page
    assert "stale" in page


def test_the_period_filter_answers_htmx_with_the_body_only(owner, product, measure) -> None:
    url = urls(product, measure)["dashboard"] + "?period=365"
    response = owner.client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "<html" not in text(response)
    assert text(response).count('data-testid="kva-column"') == 4


def test_a_bad_period_is_reported_not_a_500(owner, product, measure) -> None:
    url = urls(product, measure)["dashboard"]
    for query in (
        "?period=custom",
        "?period=custom&since=2026-05-01&until=2026-01-01",
        "?period=zzz",
        "?since=oops",
        "?period=custom&since=0001-01-01&until=9999-12-31",
    ):
        assert owner.client.get(url + query).status_code == 200, query
    page = text(owner.client.get(url + "?period=custom&since=2026-05-01&until=2026-01-01"))
    assert "before its start" in page


def test_a_measure_is_created_from_the_form(owner, product) -> None:
    url = reverse("measures:product_measures", kwargs={"org_slug": SLUG, "product_id": product.pk})
    response = owner.client.post(
        url,
        {
            "name": "Lead time",
            "kva": KVA.TIME_TO_MARKET,
            "direction": "lower",
            "cadence_days": "14",
            "unit": "days",
        },
    )
    assert response.status_code == 302
    created = Measure.objects.get(name="Lead time")
    assert (created.product, created.kva, created.cadence_days) == (product, KVA.TIME_TO_MARKET, 14)


def test_measure_form_errors_name_the_field(owner, product, measure) -> None:
    url = reverse("measures:product_measures", kwargs={"org_slug": SLUG, "product_id": product.pk})
    response = owner.client.post(
        url, {"name": "", "kva": "nonsense", "direction": "higher", "cadence_days": "x"}
    )
    assert response.status_code == 422
    form = response.context["form"]
    assert set(form.errors) >= {"name", "kva", "cadence_days"}
    duplicate = owner.client.post(
        url, {"name": "nps", "kva": KVA.CURRENT_VALUE, "direction": "higher", "cadence_days": "30"}
    )
    assert duplicate.status_code == 422
    assert "already exists" in " ".join(duplicate.context["form"].errors["name"])


def test_an_observation_is_recorded_and_bad_ones_are_refused_on_their_field(owner, measure) -> None:
    url = reverse("measures:observation_add", kwargs={"org_slug": SLUG, "measure_id": measure.pk})
    assert (
        owner.client.post(
            url, {"value": "41.5", "observed_at": "2026-03-01T10:00", "note": "survey"}
        ).status_code
        == 302
    )
    assert Observation.objects.filter(measure=measure, value=41.5).exists()
    bad = owner.client.post(url, {"value": "forty"})
    assert bad.status_code == 422
    assert "value" in bad.context["observation_form"].errors
    future = owner.client.post(url, {"value": "1", "observed_at": "2999-01-01T00:00"})
    assert future.status_code == 422
    assert "observed_at" in future.context["observation_form"].errors
    duplicate = owner.client.post(url, {"value": "2", "observed_at": "2026-03-01T10:00"})
    assert duplicate.status_code == 422
    assert "observed_at" in duplicate.context["observation_form"].errors


def test_a_correction_supersedes_and_the_old_value_is_hidden_until_asked_for(owner, measure) -> None:
    old = Observation.objects.get(measure=measure, value=35)
    url = reverse(
        "measures:observation_correct",
        kwargs={"org_slug": SLUG, "measure_id": measure.pk, "observation_id": old.pk},
    )
    assert owner.client.post(url, {"value": "36", "note": "typo"}).status_code == 302
    old.refresh_from_db()
    assert old.superseded
    page_url = reverse("measures:measure", kwargs={"org_slug": SLUG, "measure_id": measure.pk})
    hidden = text(owner.client.get(page_url))
    shown = text(owner.client.get(page_url + "?superseded=1"))
    assert f'id="observation-{old.pk}"' not in hidden
    assert f'id="observation-{old.pk}"' in shown
    again = owner.client.post(url, {"value": "37"})
    assert again.status_code == 422
    assert "already been corrected" in text(again)
    assert owner.client.post(url, {"value": ""}).status_code == 422


def test_correcting_an_observation_of_another_measure_is_not_found(owner, product, measure) -> None:
    other = services.create_measure(
        owner.membership, owner.user, name="Other", kva=KVA.CURRENT_VALUE, product_id=product.pk
    )
    obs = Observation.objects.filter(measure=measure).first()
    assert obs is not None
    url = reverse(
        "measures:observation_correct",
        kwargs={"org_slug": SLUG, "measure_id": other.pk, "observation_id": obs.pk},
    )
    assert owner.client.post(url, {"value": "1"}).status_code == 404


def test_a_file_is_previewed_then_imported_once(owner, measure) -> None:
    url = reverse("measures:import", kwargs={"org_slug": SLUG, "measure_id": measure.pk})
    csv = b"measure,observed_at,value,note\nNPS,2026-03-01,40,march\nNPS,2026-04-01,not-a-number,\nNPS,2026-05-01,44,may\n"
    preview = owner.client.post(url, {"file": SimpleUploadedFile("nps.csv", csv, "text/csv")})
    assert preview.status_code == 200
    page = text(preview)
    assert "2 ready to import" in page
    assert "1 with errors" in page
    assert re.search(r"<td>3</td><td>value</td>", page)  # the bad row by its line number
    assert Observation.objects.filter(measure=measure).count() == 2  # nothing saved yet
    form = preview.context["confirm_form"]
    confirm = {
        "confirm": "1",
        **{name: form.initial[name] for name in ("filename", "content", "idempotency_key")},
    }
    done = owner.client.post(url, confirm)
    assert done.status_code == 302
    assert "/jobs/" in done["Location"]  # the import runs as a background job; its page follows it
    assert Observation.objects.filter(measure=measure).count() == 4
    again = owner.client.post(url, confirm, follow=True)  # a double submit counts nothing twice
    assert Observation.objects.filter(measure=measure).count() == 4
    assert "already imported" in text(again)


def test_an_unreadable_upload_is_an_error_on_the_file_field(owner, measure) -> None:
    url = reverse("measures:import", kwargs={"org_slug": SLUG, "measure_id": measure.pk})
    for name, content in (
        ("x.csv", b"when,how much\n1,2\n"),
        ("x.xlsx", b"PK\x03\x04garbage"),
        ("x.pdf", b"%PDF"),
    ):
        response = owner.client.post(url, {"file": SimpleUploadedFile(name, content)})
        assert response.status_code == 422, name
        assert "file" in response.context["upload_form"].errors
    assert owner.client.post(url, {}).status_code == 422
    tampered = owner.client.post(
        url, {"confirm": "1", "filename": "a.csv", "content": "***", "idempotency_key": "k"}
    )
    assert tampered.status_code == 302


def test_exports_carry_every_observation(owner, product, measure) -> None:
    u = urls(product, measure)
    csv = owner.client.get(u["export_csv"])
    assert csv["Content-Type"].startswith("text/csv")
    assert text(csv).count("\n") == 3
    data = owner.client.get(u["export_json"]).json()
    assert len(data["measures"][0]["observations"]) == 2
    svg = owner.client.get(u["chart_svg"])
    assert svg["Content-Type"].startswith("image/svg+xml")
    assert "Target 60 pts" in text(svg)


def test_a_catalogue_measure_is_adopted_into_a_product(owner, product) -> None:
    entry = CatalogueMeasure.objects.filter(organisation=product.organisation).first()
    assert entry is not None
    url = reverse("measures:catalogue", kwargs={"org_slug": SLUG})
    response = owner.client.post(url, {"catalogue_id": entry.pk, "product_id": product.pk})
    assert response.status_code == 302
    assert Measure.objects.filter(product=product, catalogue_key=entry.key).exists()
    twice = owner.client.post(url, {"catalogue_id": entry.pk, "product_id": product.pk})
    assert twice.status_code == 422
    assert owner.client.post(url, {"catalogue_id": "x"}).status_code == 422


def test_investment_and_value_measure(owner, product, measure) -> None:
    url = reverse("measures:investments", kwargs={"org_slug": SLUG, "product_id": product.pk})
    ok = owner.client.post(
        url, {"period_start": "2026-01-01", "period_end": "2026-02-28", "amount": "10000", "currency": "EUR"}
    )
    assert ok.status_code == 302
    bad = owner.client.post(
        url, {"period_start": "2026-03-01", "period_end": "2026-02-01", "amount": "1", "currency": "EUR"}
    )
    assert bad.status_code == 422
    assert "period_end" in bad.context["form"].errors
    neither = owner.client.post(
        url, {"period_start": "2026-03-01", "period_end": "2026-04-01", "currency": "EUR"}
    )
    assert "amount" in neither.context["form"].errors
    vm = reverse("measures:value_measure", kwargs={"org_slug": SLUG, "product_id": product.pk})
    assert owner.client.post(vm, {"measure": str(measure.pk)}).status_code == 302
    page = text(owner.client.get(url))
    assert 'id="roi-chart-spec"' in page
    assert "10000" in page
    assert owner.client.post(vm, {"measure": "999999"}).status_code == 422


def test_pages_of_a_product_with_no_measures_render(owner, product) -> None:
    p = {"org_slug": SLUG, "product_id": product.pk}
    for name in ("dashboard", "product_measures", "investments"):
        assert owner.client.get(reverse(f"measures:{name}", kwargs=p)).status_code == 200


def test_the_observation_times_are_shown(owner, measure) -> None:
    page = text(
        owner.client.get(reverse("measures:measure", kwargs={"org_slug": SLUG, "measure_id": measure.pk}))
    )
    assert "2026-02-05 09:00" in page
    assert dt.date(2026, 1, 5).isoformat() in page


def _page_queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm-up: one-off session writes are not counted
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_value_pages_keep_a_fixed_query_count_as_measures_and_observations_grow(
    owner, product, measure
) -> None:
    u = urls(product, measure)
    pages = ("dashboard", "product_measures", "measure", "investments")
    few = {name: _page_queries(owner.client, u[name]) for name in pages}
    created = Measure.objects.bulk_create(
        [
            Measure(
                organisation=product.organisation, product=product, name=f"Bulk {i}", kva=KVA.values[i % 4]
            )
            for i in range(30)
        ]
    )
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    Observation.objects.bulk_create(
        [
            Observation(measure=m, observed_at=start + dt.timedelta(hours=k), value=float(k))
            for m in [*created, measure]
            for k in range(40)
        ]
    )
    many = {name: _page_queries(owner.client, u[name]) for name in pages}
    assert few == many
