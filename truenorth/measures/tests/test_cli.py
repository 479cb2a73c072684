"""The Value commands, in process through truenorth.cli.main: `truenorth measure list`, `push`, `import`,
`export`; identity, exit codes and one-line errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.utils import timezone

from truenorth import cli
from truenorth.measures import services
from truenorth.measures.models import Observation, ObservationBatch
from truenorth.strategy import services as vision


@pytest.fixture(autouse=True)
def _no_identity_from_environment(monkeypatch):
    monkeypatch.delenv("TRUENORTH_ORG", raising=False)
    monkeypatch.delenv("TRUENORTH_USER", raising=False)


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _as(persona, *args: str) -> list[str]:
    return [*args, "--org", "alpha", "--as", persona.user.email]


def _assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def product(owner):
    return vision.create_product(owner.membership, owner.user, name="Trail", owner_id=owner.user.pk)


@pytest.fixture
def measure(owner, product):
    return services.create_measure(
        owner.membership, owner.user, name="Revenue", kva="current_value", product_id=product.pk, unit="EUR"
    )


def _day(days_ago: int) -> str:
    return (timezone.now() - dt.timedelta(days=days_ago)).date().isoformat()


@pytest.mark.parametrize("command", ["list", "push", "import", "export"])
def test_help(capsys, command):
    code, out, err = _run(capsys, "measure", command, "--help")
    assert code == 0
    assert f"truenorth measure {command}" in out
    assert err == ""


# --- list -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_shows_latest_values_and_staleness(capsys, owner, stakeholder, product, measure):
    fresh = services.create_measure(
        owner.membership, owner.user, name="Deploys", kva="time_to_market", product_id=product.pk
    )
    services.add_observation(owner.membership, owner.user, fresh.pk, 12)
    code, out, err = _run(capsys, *_as(stakeholder, "measure", "list", "--json"))
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["Deploys"]["latest_value"] == 12 and rows["Deploys"]["stale"] is False
    assert rows["Revenue"]["latest_value"] is None and rows["Revenue"]["stale"] is True

    code, out, _ = _run(capsys, *_as(stakeholder, "measure", "list", "--stale"))
    assert code == 0
    assert "Revenue" in out and "Deploys" not in out
    code, out, _ = _run(capsys, *_as(stakeholder, "measure", "list", "--kva", "time_to_market", "--json"))
    assert [r["name"] for r in json.loads(out)] == ["Deploys"]
    code, _, err = _run(capsys, *_as(stakeholder, "measure", "list", "--kva", "mood"))
    _assert_one_line_error(code, err, "--kva", "mood")
    code, _, err = _run(capsys, *_as(stakeholder, "measure", "list", "--product", "999999"))
    _assert_one_line_error(code, err, "No such product")


@pytest.mark.django_db
def test_outsider_and_missing_identity(capsys, outsider, measure):
    code, _, err = _run(capsys, "measure", "list", "--org", "alpha", "--as", outsider.user.email)
    _assert_one_line_error(code, err, "alpha")
    code, _, err = _run(capsys, "measure", "list", "--as", outsider.user.email)
    _assert_one_line_error(code, err, "--org")
    code, out, err = _run(
        capsys, "measure", "push", str(measure.pk), "1", "--org", "bravo-secret", "--as", outsider.user.email
    )
    _assert_one_line_error(code, err, "No such measure")
    assert "Revenue" not in out + err
    assert not Observation.objects.exists()


# --- push -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_push_records_a_value(capsys, member, measure):
    code, out, err = _run(
        capsys, *_as(member, "measure", "push", str(measure.pk), "12.5", "--at", _day(2), "--note", "manual")
    )
    assert code == 0, err
    assert "12.5" in out
    observation = Observation.objects.get()
    assert (observation.value, observation.note, observation.source) == (12.5, "manual", "api")
    assert observation.observed_at.date().isoformat() == _day(2)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["twelve"], ("VALUE", "twelve")),
        (["nan"], ("VALUE",)),
        (["1", "--at", "31/01/2026"], ("--at", "ISO 8601")),
        (["1", "--at", "2999-01-01"], ("observed_at", "future")),
    ],
)
def test_push_bad_input_is_one_line(capsys, member, measure, args, fragments):
    code, _, err = _run(capsys, *_as(member, "measure", "push", str(measure.pk), *args))
    _assert_one_line_error(code, err, *fragments)
    assert not Observation.objects.exists()


@pytest.mark.django_db
def test_a_stakeholder_cannot_push(capsys, stakeholder, measure):
    code, _, err = _run(capsys, *_as(stakeholder, "measure", "push", str(measure.pk), "1"))
    _assert_one_line_error(code, err, "member")
    assert not Observation.objects.exists()


# --- import ---------------------------------------------------------------------------------------


def _csv(tmp_path, text: str):
    path = tmp_path / "values.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.django_db
def test_import_preview_then_import_with_a_bad_row(capsys, tmp_path, member, measure):
    path = _csv(
        tmp_path,
        "measure,observed_at,value\n"
        f"Revenue,{_day(30)},100\n"
        f"Revenue,{_day(20)},12;5\n"
        f"Revenue,{_day(10)},120\n",
    )
    code, out, err = _run(capsys, *_as(member, "measure", "import", str(path), "--preview"))
    assert code == 0, err
    assert "3 rows: 2 would be saved, 1 have errors" in out
    assert "Revenue: 2 rows" in out
    assert "3" in out and "value" in out
    assert not Observation.objects.exists()

    code, out, err = _run(capsys, *_as(member, "measure", "import", str(path), "--key", "jan"))
    assert code == 0, err
    assert "Imported 2 of 3 rows; 1 row rejected." in out
    assert "Bad rows" in out and "value" in out
    assert sorted(Observation.objects.values_list("value", flat=True)) == [100, 120]

    code, out, err = _run(capsys, *_as(member, "measure", "import", str(path), "--key", "jan"))
    assert code == 0, err
    assert "Imported 0 of 3 rows, 2 already imported (same key)" in out
    assert Observation.objects.count() == 2
    assert ObservationBatch.objects.count() == 1


@pytest.mark.django_db
def test_import_bad_file_or_missing_file_is_one_line(capsys, tmp_path, member, stakeholder, measure):
    code, _, err = _run(capsys, *_as(member, "measure", "import", str(tmp_path / "missing.csv")))
    _assert_one_line_error(code, err, "FILE", "missing.csv")
    path = _csv(tmp_path, "when,amount\n2026-01-01,1\n")
    code, _, err = _run(capsys, *_as(member, "measure", "import", str(path)))
    _assert_one_line_error(code, err, "file", "measure")
    good = _csv(tmp_path, f"measure,observed_at,value\nRevenue,{_day(3)},1\n")
    code, _, err = _run(capsys, *_as(stakeholder, "measure", "import", str(good)))
    _assert_one_line_error(code, err, "member")
    assert not Observation.objects.exists()


@pytest.mark.django_db
def test_import_reports_progress_through_the_callback(capsys, tmp_path, monkeypatch, member, measure):
    from truenorth.measures import imports

    calls: list[tuple[int, int]] = []
    real = imports.run_import

    def spy(*args, **kwargs):
        progress = kwargs["progress"]

        def record(done: int, total: int) -> None:
            calls.append((done, total))
            progress(done, total)

        kwargs["progress"] = record
        kwargs["chunk_size"] = 2
        return real(*args, **kwargs)

    monkeypatch.setattr(imports, "run_import", spy)
    lines = "".join(f"Revenue,{_day(d)},{d}\n" for d in range(1, 6))
    path = _csv(tmp_path, "measure,observed_at,value\n" + lines)
    code, _, err = _run(capsys, *_as(member, "measure", "import", str(path)))
    assert code == 0, err
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert Observation.objects.count() == 5


# --- export ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_export_csv_to_stdout_and_json_to_a_file(capsys, tmp_path, owner, stakeholder, measure):
    services.add_observation(owner.membership, owner.user, measure.pk, 7, observed_at=_day(4))
    code, out, err = _run(capsys, *_as(stakeholder, "measure", "export"))
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["measure"], r["value"]) for r in rows] == [("Revenue", "7.0")]

    target = tmp_path / "out.json"
    code, out, err = _run(
        capsys,
        *_as(
            stakeholder,
            "measure",
            "export",
            "--measure",
            str(measure.pk),
            "--format",
            "json",
            "-o",
            str(target),
        ),
    )
    assert code == 0, err
    assert "out.json" in out
    doc = json.loads(target.read_text())
    assert doc["measures"][0]["observations"][0]["value"] == 7

    code, _, err = _run(capsys, *_as(stakeholder, "measure", "export", "--format", "xml"))
    _assert_one_line_error(code, err, "--format", "xml")
    code, _, err = _run(capsys, *_as(stakeholder, "measure", "export", "--measure", "999999"))
    _assert_one_line_error(code, err, "No such measure")
    code, _, err = _run(capsys, *_as(stakeholder, "measure", "export", "-o", str(tmp_path / "no" / "x.csv")))
    _assert_one_line_error(code, err, "-o")
