"""Delivery metrics commands: flow, dora, forecast; bad input is one line and exit code 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from truenorth.cli import app, main
from truenorth.delivery.services import metrics
from truenorth.delivery.tests.metrics_data import build

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_flow_and_dora(owner) -> None:
    delivery = build(owner.membership.organisation)
    who = ["--org", "alpha", "--as", owner.user.email]
    window = ["--since", "2026-03-02", "--until", "2026-03-15"]
    code, out = run("flow", "--product", str(delivery.product.pk), *window, "--json", *who)
    assert code == 0, out
    data = json.loads(out)
    assert data["flow"]["wip"] == 1 and data["flow"]["cycle_time_days"]["50"] == 3.0
    code, out = run("flow", "--source", "payments jira", *window, *who)
    assert code == 0 and "Cycle time (days)" in out and "WIP: 1" in out
    code, out = run("dora", "--year", "2023", *window, *who)
    assert code == 0 and "Change failure rate" in out and "50.0 %" in out
    code, out = run("dora", *window, "--json", *who)
    assert json.loads(out)["dora"]["deployments"] == 2


def test_forecast(owner, monkeypatch) -> None:
    build(owner.membership.organisation)
    monkeypatch.setattr(metrics, "_history", lambda membership, scope, days: [1] * 60)
    who = ["--org", "alpha", "--as", owner.user.email]
    code, out = run("forecast", "--items", "6", "--json", *who)
    assert code == 0, out
    assert json.loads(out)["forecast"]["percentiles"]["85"] == 6.0
    assert main(["forecast", "--by", "2099-01-01", *who]) == 2  # over the horizon limit
    code, out = run("forecast", "--items", "6", *who)
    assert code == 0 and "85% figure held in" in out


def test_bad_input_exits_2(owner) -> None:
    build(owner.membership.organisation)
    who = ["--org", "alpha", "--as", owner.user.email]
    assert main(["forecast", *who]) == 2  # neither --items nor --by
    assert main(["forecast", "--items", "3", "--by", "2030-01-01", *who]) == 2
    assert main(["forecast", "--items", "0", *who]) == 2
    assert main(["flow", "--source", "nowhere", *who]) == 2
    assert main(["flow", "--since", "soon", *who]) == 2
    assert main(["flow", "--product", "999999", *who]) == 2
    assert main(["dora", "--year", "1999", *who]) == 2
    assert main(["flow", "--org", "nowhere", "--as", owner.user.email]) == 2
