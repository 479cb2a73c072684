"""Experiment planning: the power calculator agrees with statsmodels, bad input names its field, the planner
page (stakeholders read only), applying a plan (409 on a stale version) and the power achieved so far."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower

from truenorth.cli import main
from truenorth.core.errors import Conflict, ValidationFailed
from truenorth.history.models import HistoryEntry
from truenorth.hypotheses import planning, services
from truenorth.hypotheses.models import Experiment, Hypothesis

BASE = "/api/v1/orgs/alpha"


def _post(client, path: str, data: dict[str, Any]):
    return client.post(path, json.dumps(data), content_type="application/json")


def _experiment(h: Hypothesis) -> Experiment:
    return h.experiments.get()


# --- the calculator against statsmodels -----------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "mde", "alpha", "power"),
    [(0.12, 0.05, 0.05, 0.8), (0.02, 0.1, 0.05, 0.9), (0.5, 0.02, 0.01, 0.8), (0.3, 0.2, 0.1, 0.95)],
)
def test_proportions_agree_with_statsmodels(rate: float, mde: float, alpha: float, power: float) -> None:
    plan = planning.plan_sample_size(baseline_rate=rate, mde=mde, alpha=alpha, power=power)
    p2 = rate * (1 + mde)
    d = (p2 - rate) / math.sqrt((rate * (1 - rate) + p2 * (1 - p2)) / 2)
    expected = NormalIndPower().solve_power(effect_size=d, alpha=alpha, power=power, ratio=1.0)
    assert plan.per_variation == (math.ceil(expected), math.ceil(expected))
    assert plan.total == 2 * math.ceil(expected)


@pytest.mark.parametrize(
    ("mean", "sd", "mde", "alpha", "power"),
    [(10.0, 5.0, 0.1, 0.05, 0.8), (100.0, 40.0, 0.02, 0.05, 0.9), (3.0, 1.0, 0.5, 0.01, 0.8)],
)
def test_means_agree_with_statsmodels(mean: float, sd: float, mde: float, alpha: float, power: float) -> None:
    plan = planning.plan_sample_size(
        metric_kind="mean", baseline_mean=mean, baseline_sd=sd, mde=mde, alpha=alpha, power=power
    )
    expected = TTestIndPower().solve_power(effect_size=mean * mde / sd, alpha=alpha, power=power, ratio=1.0)
    assert plan.per_variation[0] == math.ceil(expected)


def test_absolute_effects_more_variations_and_days() -> None:
    plan = planning.plan_sample_size(
        metric_kind="mean", baseline_sd=2.0, mde=0.5, relative=False, variations=3, daily_traffic=100
    )
    expected = math.ceil(TTestIndPower().solve_power(effect_size=0.25, alpha=0.05, power=0.8))
    assert plan.per_variation == (expected,) * 3
    assert plan.days == math.ceil(plan.total / 100)


def test_unequal_allocation_sizes_the_smaller_arm_for_the_same_precision() -> None:
    equal = planning.plan_sample_size(baseline_rate=0.1, mde=0.1)
    unequal = planning.plan_sample_size(baseline_rate=0.1, mde=0.1, allocation=[0.8, 0.2])
    n = equal.per_variation[0]
    control, treatment = unequal.per_variation
    # 1/n_c + 1/n_t must be at most the 2/n of the equal design
    assert 1 / control + 1 / treatment <= 2 / (n - 1)  # n is the equal design's, rounded up
    assert unequal.total > equal.total
    assert control > treatment


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"baseline_rate": 0.1, "mde": 0.05, "alpha": 0}, "alpha"),
        ({"baseline_rate": 0.1, "mde": 0.05, "alpha": 0.6}, "alpha"),
        ({"baseline_rate": 0.1, "mde": 0.05, "power": 1}, "power"),
        ({"baseline_rate": 0.1, "mde": 0.05, "power": 0}, "power"),
        ({"baseline_rate": 0.1, "mde": 0}, "mde"),
        ({"baseline_rate": 0.1, "mde": -0.1}, "mde"),
        ({"baseline_rate": 0.9, "mde": 0.5}, "mde"),
        ({"baseline_rate": 0, "mde": 0.05}, "baseline_rate"),
        ({"baseline_rate": 1.5, "mde": 0.05}, "baseline_rate"),
        ({"mde": 0.05}, "baseline_rate"),
        ({"baseline_rate": "abc", "mde": 0.05}, "baseline_rate"),
        ({"baseline_rate": float("nan"), "mde": 0.05}, "baseline_rate"),
        ({"metric_kind": "mean", "baseline_mean": 1, "baseline_sd": 0, "mde": 0.05}, "baseline_sd"),
        ({"metric_kind": "mean", "baseline_mean": 1, "baseline_sd": -2, "mde": 0.05}, "baseline_sd"),
        ({"metric_kind": "mean", "baseline_sd": 1, "mde": 0.05}, "baseline_mean"),
        ({"metric_kind": "median", "mde": 0.05}, "metric_kind"),
        ({"baseline_rate": 0.1, "mde": 0.05, "variations": 1}, "variations"),
        ({"baseline_rate": 0.1, "mde": 0.05, "allocation": [0.5, 0.2]}, "allocation"),
        ({"baseline_rate": 0.1, "mde": 0.05, "allocation": [1.0]}, "allocation"),
        ({"baseline_rate": 0.1, "mde": 0.05, "daily_traffic": 0}, "daily_traffic"),
    ],
)
def test_bad_input_names_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        planning.plan_sample_size(**fields)
    assert exc.value.field == field


# --- applying a plan and the power achieved so far ------------------------------------------------


def test_apply_plan_records_history_and_refuses_a_stale_version(member, testing) -> None:
    e = _experiment(testing)
    plan = planning.plan_sample_size(baseline_rate=0.2, mde=0.1)
    made = planning.apply_plan(member.membership, member.user, e.pk, plan, version=e.version)
    assert made.planned_sample_size == plan.total
    assert made.minimum_detectable_effect == 0.1
    assert made.version == e.version + 1
    entry = HistoryEntry.objects.filter(object_id=str(e.pk), action="updated").order_by("-at", "-id").first()
    assert entry is not None and "planned_sample_size" in entry.changes
    with pytest.raises(Conflict):
        planning.apply_plan(member.membership, member.user, e.pk, plan, version=e.version)


def _snapshot(member, e: Experiment, n: int, rate: float = 0.2) -> None:
    conversions = round(n * rate)
    rows = [
        {
            "metric": "Download rate",
            "variation": name,
            "role": "primary",
            "type": "proportion",
            "n": float(n),
            "sum": float(conversions),
            "sum_squares": float(conversions),
        }
        for name in ("control", "one_tap")
    ]
    services.store_snapshot(e, method="frequentist", inputs={"summary": rows}, results={}, author=member.user)


def test_achieved_power_rises_with_n(member, testing) -> None:
    e = _experiment(testing)
    assert planning.achieved_power(member.membership, e.pk) is None
    services.update_experiment(member.membership, member.user, e.pk, minimum_detectable_effect=0.1)
    detail = planning.achieved_power_detail(member.membership, e.pk)
    assert detail.power is None and "snapshot" in detail.reason
    powers = []
    for n in (500, 2000, 8000):
        _snapshot(member, e, n)
        value = planning.achieved_power(member.membership, e.pk)
        assert value is not None
        powers.append(value)
    assert powers == sorted(powers) and powers[0] < powers[-1]
    expected = NormalIndPower().power(
        effect_size=(0.22 - 0.2) / math.sqrt((0.2 * 0.8 + 0.22 * 0.78) / 2), nobs1=8000, alpha=0.05, ratio=1.0
    )
    assert powers[-1] == pytest.approx(expected, rel=1e-9)


def test_achieved_power_of_a_mean_metric_from_simple_inputs(member, testing) -> None:
    e = _experiment(testing)
    services.update_experiment(member.membership, member.user, e.pk, minimum_detectable_effect=0.1)
    # mean 10, sd 5 in each arm
    n = 400
    arm = {"n": n, "sum": 10.0 * n, "sum_squares": (25.0 * (n - 1) + 100.0 * n)}
    services.store_snapshot(e, method="welch", inputs={"control": arm, "one_tap": arm}, results={})
    value = planning.achieved_power(member.membership, e.pk)
    assert value == pytest.approx(TTestIndPower().power(effect_size=0.2, nobs1=n, alpha=0.05), rel=1e-6)


# --- the planner page -----------------------------------------------------------------------------


def _page(e: Experiment) -> str:
    return f"/o/alpha/experiments/{e.pk}/plan/"


def test_the_page_renders_for_a_stakeholder_without_the_button(stakeholder, testing) -> None:
    e = _experiment(testing)
    response = stakeholder.client.get(_page(e))
    assert response.status_code == 200
    assert b"Power achieved so far" in response.content
    assert b"Use this sample size" not in response.content
    recalculated = stakeholder.client.get(
        _page(e),
        {
            "metric_kind": "proportion",
            "baseline_rate": "0.12",
            "mde": "0.05",
            "relative": "true",
            "alpha": "0.05",
            "power": "0.8",
            "variations": "2",
        },
        HTTP_HX_REQUEST="true",
    )
    assert recalculated.status_code == 200
    assert b"94066 units in total" in recalculated.content
    assert b"<html" not in recalculated.content


def test_bad_input_on_the_page_names_the_field(member, testing) -> None:
    e = _experiment(testing)
    response = member.client.get(
        _page(e),
        {
            "metric_kind": "proportion",
            "baseline_rate": "2",
            "mde": "0.05",
            "relative": "true",
            "alpha": "0.05",
            "power": "0.8",
            "variations": "2",
        },
        HTTP_HX_REQUEST="true",
    )
    assert b"baseline_rate" in response.content


def _form(e: Experiment, **extra: Any) -> dict[str, Any]:
    return {
        "metric_kind": "proportion",
        "baseline_rate": "0.12",
        "mde": "0.05",
        "relative": "true",
        "alpha": "0.05",
        "power": "0.8",
        "variations": "2",
        "allocation": "",
        "daily_traffic": "",
        "version": str(e.version),
        **extra,
    }


def test_a_stakeholder_cannot_apply_a_plan(stakeholder, testing) -> None:
    e = _experiment(testing)
    assert stakeholder.client.post(_page(e), _form(e)).status_code == 403
    e.refresh_from_db()
    assert e.planned_sample_size is None


def test_a_member_applies_a_plan_and_a_stale_version_is_refused(member, testing) -> None:
    e = _experiment(testing)
    page = member.client.get(_page(e))
    assert b"Use this sample size" in page.content
    response = member.client.post(_page(e), _form(e))
    assert response.status_code == 302
    e.refresh_from_db()
    assert e.planned_sample_size == 94066
    stale = member.client.post(_page(e), _form(e, version="1", mde="0.1"))
    assert stale.status_code == 422
    assert "changed by someone else" in stale.content.decode()


def test_the_hypothesis_page_links_the_planner(member, testing) -> None:
    e = _experiment(testing)
    assert _page(e).encode() in member.client.get(f"/o/alpha/hypotheses/{testing.pk}/").content


# --- API and CLI ----------------------------------------------------------------------------------


def test_the_api_calculates_and_applies(member, stakeholder, testing) -> None:
    e = _experiment(testing)
    calc = _post(stakeholder.api(), f"{BASE}/power", {"baseline_rate": 0.12, "mde": 0.05})
    assert calc.status_code == 200, calc.content
    assert calc.json()["per_variation"] == [47033, 47033]
    bad = _post(member.api(), f"{BASE}/power", {"baseline_rate": 0.12, "mde": 0.05, "alpha": 0.9})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "alpha"
    path = f"{BASE}/experiments/{e.pk}/plan"
    body = {"baseline_rate": 0.12, "mde": 0.05, "version": e.version}
    assert _post(stakeholder.api(), path, body).status_code == 403
    applied = _post(member.api(), path, body)
    assert applied.status_code == 200, applied.content
    assert applied.json()["planned_sample_size"] == 94066
    assert _post(member.api(), path, body).status_code == 409


def test_the_api_hides_other_organisations(outsider, testing) -> None:
    e = _experiment(testing)
    assert _post(outsider.api(), f"{BASE}/power", {"baseline_rate": 0.1, "mde": 0.1}).status_code == 404
    path = f"{BASE}/experiments/{e.pk}/plan"
    assert _post(outsider.api(), path, {"baseline_rate": 0.1, "mde": 0.1, "version": 1}).status_code == 404


def test_the_cli_prints_the_plan(capsys) -> None:
    assert main(["power", "--rate", "0.12", "--mde", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "47,033" in out and "94,066" in out
    assert main(["power", "--rate", "0.12", "--mde", "0.05", "--variations", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["per_variation"] == [47033] * 3
    assert main(["power", "--rate", "1.5", "--mde", "0.05"]) == 2
    assert "--rate" in capsys.readouterr().err
