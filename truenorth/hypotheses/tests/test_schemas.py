"""One JSON shape per output: each builder in hypotheses/schemas.py fills exactly the fields of the Schema
it sits beside, so the API (which validates against the Schema) and the CLI's `--json` (which prints the
builder's dict) cannot drift apart."""

from __future__ import annotations

from typing import Any

from ninja import Schema

from truenorth.hypotheses import schemas, services


def test_every_builder_fills_exactly_its_schema(member, testing):
    m = member.membership
    experiment = testing.experiments.get()
    snapshot = services.store_snapshot(experiment, method="frequentist", inputs={}, results={"rows": []})
    testing.refresh_from_db()
    decision = services.conclude(
        m, member.user, testing.pk, outcome="validated", decision="persevere", learning="x"
    )
    detail = schemas.hypothesis_detail_out(m, testing.pk)
    built: list[tuple[type[Schema], dict[str, Any]]] = [
        (schemas.HypothesisOut, schemas.hypothesis_out(services.get_hypothesis(m, testing.pk))),
        (schemas.HypothesisDetailOut, detail),
        (schemas.ExperimentOut, schemas.experiment_out(services.get_experiment(m, experiment.pk))),
        (schemas.SnapshotOut, schemas.snapshot_out(snapshot)),
        (schemas.DecisionOut, schemas.decision_out(services.get_decision(m, decision.pk))),
    ]
    for schema, data in built:
        assert set(data) == set(schema.model_fields), schema.__name__
        schema.model_validate(data)  # and the values are what the Schema declares
    assert set(detail["experiments"][0]) == set(schemas.ExperimentOut.model_fields)
    assert set(detail["decision"]) == set(schemas.DecisionOut.model_fields)
    latest = schemas.result_out(snapshot)
    assert set(latest) <= set(schemas.SnapshotOut.model_fields)  # the headline: a snapshot's fields


def test_a_plan_is_what_PlanOut_declares():
    from truenorth.hypotheses import planning

    plan = planning.plan_sample_size(baseline_rate=0.1, mde=0.1, daily_traffic=1000).as_dict()
    assert set(plan) == set(schemas.PlanOut.model_fields)
    schemas.PlanOut.model_validate(plan)
