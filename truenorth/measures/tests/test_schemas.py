"""One JSON shape per output: each builder of the Value API fills exactly the fields of the Schema it
answers with (measures/schemas.py), so a field added to one and not the other fails here instead of being
dropped silently by the API's output validation."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from ninja import Schema

from truenorth.measures import api, schemas, sources
from truenorth.measures import services as ms
from truenorth.measures.models import KVA
from truenorth.strategy import services as ss


@pytest.fixture
def value_world(owner, admin, member, settings, tmp_path):
    settings.TRUENORTH_DUCKDB_DIRS = [tmp_path / "duckdb"]
    m, user = member.membership, member.user
    product = ss.create_product(owner.membership, owner.user, name="Atlas")
    measure = ms.create_measure(
        m, user, name="Active users", kva=KVA.CURRENT_VALUE, product_id=product.pk, owner_id=user.pk
    )
    observation = ms.add_observation(m, user, measure.pk, 42, note="first count")
    investment = ms.add_investment(
        m, user, product.pk, period_start="2026-11-01", period_end="2026-11-30", amount=1000
    )
    source = sources.create_data_source(
        admin.membership, admin.user, name="Warehouse", kind="duckdb", config={"path": "events.duckdb"}
    )
    return m, measure, observation, investment, source


def test_every_builder_fills_exactly_its_schema(value_world) -> None:
    m, measure, observation, investment, source = value_world
    latest = ms.with_latest(ms.measures_of(m).filter(pk=measure.pk)).get()
    built: list[tuple[type[Schema], dict[str, Any]]] = [
        (schemas.MeasureOut, api._measure_out(latest, timezone.now())),
        (schemas.MeasureOut, api._measure_detail(m, measure.pk)),
        (schemas.ObservationOut, api._observation_out(observation)),
        (schemas.InvestmentOut, api._investment_out(investment)),
        (schemas.DataSourceOut, api._data_source_out(m, source, 0)),
    ]
    for schema, data in built:
        assert set(data) == set(schema.model_fields), schema.__name__
        schema.model_validate(data)
    detail = api._measure_detail(m, measure.pk)
    assert detail["latest_value"] == 42 and detail["owner"]["id"] == m.user_id
