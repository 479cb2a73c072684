"""`truenorth stakeholders list|add|log|overdue`, in process through truenorth.cli.main: bad input is one
line and exit code 2; another organisation is "not found"."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from truenorth import cli
from truenorth.engagement.models import EngagementLogEntry, Stakeholder


@pytest.fixture(autouse=True)
def _no_identity_from_environment(monkeypatch):
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)


def _run(capsys, persona, *args: str, org: str = "alpha") -> tuple[int, str, str]:
    code = cli.main(["stakeholders", *args, "--org", org, "--as", persona.user.email])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err
    assert fragment in err, err


def test_add_list_log_and_overdue(capsys, member) -> None:
    code, out, err = _run(
        capsys,
        member,
        "add",
        "Dana",
        "--email",
        "dana@example.com",
        "--department",
        "legal",
        "--influence",
        "5",
        "--interest",
        "4",
        "--current",
        "resistant",
        "--owner",
        member.user.email,
    )
    assert code == 0, err
    assert "manage closely" in out
    dana = Stakeholder.objects.get(name="Dana")
    assert dana.relationship_owner == member.user
    Stakeholder.objects.filter(pk=dana.pk).update(created_at=timezone.now() - dt.timedelta(days=20))
    code, out, _ = _run(capsys, member, "list", "--json")
    [row] = json.loads(out)
    assert row["quadrant"] == "manage_closely" and row["gap"] == 2
    code, out, _ = _run(capsys, member, "overdue", "--json")
    assert [r["name"] for r in json.loads(out)] == ["Dana"]
    code, out, err = _run(
        capsys, member, "log", str(dana.pk), "--summary", "Walked through the DPA", "--kind", "call"
    )
    assert code == 0, err
    assert EngagementLogEntry.objects.get().summary == "Walked through the DPA"
    code, out, _ = _run(capsys, member, "overdue", "--json")
    assert json.loads(out) == []
    code, out, _ = _run(capsys, member, "overdue", "--days", "0", "--json")
    assert [r["name"] for r in json.loads(out)] == ["Dana"]


def test_bad_input_is_one_line_and_exit_2(capsys, member, stakeholder, outsider) -> None:
    _one_line_error(*_run(capsys, member, "add", "X", "--influence", "7")[::2], "influence")
    _one_line_error(*_run(capsys, member, "add", "X", "--department", "space")[::2], "department")
    _one_line_error(*_run(capsys, member, "overdue", "--days", "-2")[::2], "days")
    _one_line_error(*_run(capsys, member, "log", "999999", "--summary", "Hi")[::2], "stakeholders")
    _one_line_error(
        *_run(capsys, member, "log", "1", "--summary", "Hi", "--on", "yesterday")[::2], "occurred_on"
    )
    _one_line_error(*_run(capsys, member, "list", "--quadrant", "middle")[::2], "quadrant")
    _one_line_error(*_run(capsys, stakeholder, "add", "X")[::2], "role")
    _one_line_error(*_run(capsys, outsider, "list")[::2], "No organisation")
    assert not Stakeholder.objects.exists()
