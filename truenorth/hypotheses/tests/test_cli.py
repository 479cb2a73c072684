"""The Validation commands, in process through truenorth.cli.main."""

from __future__ import annotations

import json

import pytest

from truenorth import cli
from truenorth.hypotheses import services
from truenorth.hypotheses.models import Hypothesis


@pytest.fixture(autouse=True)
def _no_identity_from_environment(monkeypatch):
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)


def _run(capsys, persona, *args: str) -> tuple[int, str, str]:
    code = cli.main([*args, "--org", "alpha", "--as", persona.user.email])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_list_move_rank_show_and_conclude(capsys, member, product, goal) -> None:
    code, out, err = _run(
        capsys,
        member,
        "hypotheses",
        "create",
        "--product",
        str(product.pk),
        "--title",
        "One-tap",
        "--goal",
        str(goal.pk),
        "--metric",
        "Rate",
        "--baseline",
        "1",
        "--target",
        "2",
        "--impact",
        "5",
        "--confidence",
        "4",
        "--ease",
        "3",
    )
    assert code == 0, err
    h = Hypothesis.objects.get(title="One-tap")
    code, out, _ = _run(capsys, member, "hypotheses", "list", "--product", str(product.pk), "--json")
    assert [row["id"] for row in json.loads(out)] == [h.pk]
    assert _run(capsys, member, "hypotheses", "move", str(h.pk), "ready")[0] == 0
    code, _, err = _run(capsys, member, "hypotheses", "move", str(h.pk), "testing")
    assert code == 2 and err.startswith("error: state:") and len(err.splitlines()) == 1
    code, out, _ = _run(
        capsys, member, "hypotheses", "rank", "--product", str(product.pk), "--method", "ice", "--json"
    )
    assert json.loads(out)[0]["score"] == 60
    services.create_experiment(member.membership, member.user, h.pk, name="Interviews", kind="qualitative")
    assert _run(capsys, member, "hypotheses", "move", str(h.pk), "testing")[0] == 0
    code, _, err = _run(
        capsys,
        member,
        "hypotheses",
        "conclude",
        str(h.pk),
        "--outcome",
        "validated",
        "--decision",
        "persevere",
        "--learning",
        "Hikers want fewer taps.",
    )
    assert code == 0, err
    code, out, _ = _run(capsys, member, "hypotheses", "show", str(h.pk))
    assert "We learned: Hikers want fewer taps." in out
    code, out, _ = _run(capsys, member, "learnings", "--q", "fewer taps", "--json")
    assert [row["hypothesis"] for row in json.loads(out)] == [h.pk]


def test_a_stakeholder_cannot_create(capsys, stakeholder, product) -> None:
    code, _, err = _run(
        capsys, stakeholder, "hypotheses", "create", "--product", str(product.pk), "--title", "x"
    )
    assert code == 2 and err.startswith("error: ")
