"""CSV and Excel imports: parsing, preview, bad rows with line numbers, chunks and resumable re-runs."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest

from truenorth.core.errors import Forbidden, ValidationFailed
from truenorth.measures import imports
from truenorth.measures import services as ms
from truenorth.measures.models import KVA, Observation, ObservationBatch
from truenorth.strategy import services as ss

UTC = dt.UTC


@pytest.fixture
def measures(owner, member, stakeholder):
    m = member.membership
    product = ss.create_product(owner.membership, owner.user, name="Atlas")
    users = ms.create_measure(
        m, member.user, name="Active users", kva=KVA.CURRENT_VALUE, product_id=product.pk
    )
    lead = ms.create_measure(m, member.user, name="Lead time", kva=KVA.TIME_TO_MARKET, product_id=product.pk)
    return users, lead


def csv_bytes(lines: list[str], *, bom: bool = False, delimiter: str = ",") -> bytes:
    text = "\n".join(line.replace(",", delimiter) for line in lines) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def test_parse_csv_detects_delimiter_and_bom():
    content = csv_bytes(
        ["Measure,Observed_at,Value,Note", "Active users,2026-01-01,5,hello", "", "7,2026-01-02,6,"],
        bom=True,
        delimiter=";",
    )
    parsed = imports.parse_file("data.csv", content)
    assert parsed.kind == "csv"
    assert [(r.line, r.measure, r.observed_at, r.value, r.note) for r in parsed.rows] == [
        (2, "Active users", "2026-01-01", "5", "hello"),
        (4, "7", "2026-01-02", "6", ""),
    ]


def test_parse_csv_keeps_physical_line_numbers_with_quoted_newlines():
    content = (
        b'measure,observed_at,value,note\n"Active users",2026-01-01,1,"two\nlines"\nLead time,2026-01-01,2,\n'
    )
    parsed = imports.parse_file("x.csv", content)
    assert [r.line for r in parsed.rows] == [2, 4]
    assert parsed.rows[0].note == "two\nlines"


def test_parse_windows_1252_and_tabs():
    content = "measure\tobserved_at\tvalue\tnote\nActive users\t2026-01-01\t1\tcafé\n".encode("cp1252")
    assert imports.parse_file("x.txt", content).rows[0].note == "café"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("x.csv", b""),
        ("x.csv", b"measure,value\nA,1\n"),
        ("x.xlsx", b"PK\x03\x04 not really"),
        ("x.xls", b"\xd0\xcf\x11\xe0"),
    ],
)
def test_unreadable_files(name, content):
    with pytest.raises(ValidationFailed) as exc:
        imports.parse_file(name, content)
    assert exc.value.field == "file"


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.worksheets[0]
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_import_xlsx(member, measures):
    users, lead = measures
    content = xlsx_bytes(
        [
            ["measure", "observed_at", "value", "note"],
            ["Active users", dt.datetime(2026, 1, 1, 9, 30), 120, "from excel"],
            [lead.pk, dt.date(2026, 1, 2), 3.5, None],
            [None, None, None, None],
            ["active USERS", "2026-01-03", "oops", None],
        ]
    )
    parsed = imports.parse_file("upload.xlsx", content)
    assert parsed.kind == "xlsx" and [r.line for r in parsed.rows] == [2, 3, 5]
    result = imports.run_import(member.membership, member.user, "upload.xlsx", content)
    assert (result.total, result.created, result.rejected) == (3, 2, 1)
    assert result.errors == [imports.RowError(5, "value", "'oops' is not a number.")]
    got = {(o.measure_id, o.observed_at, o.value, o.source) for o in Observation.objects.all()}
    assert got == {
        (users.pk, dt.datetime(2026, 1, 1, 9, 30, tzinfo=UTC), 120.0, "file"),
        (lead.pk, dt.datetime(2026, 1, 2, tzinfo=UTC), 3.5, "file"),
    }


BAD_FILE = [
    "measure,observed_at,value,note",
    "Active users,2026-01-01,10,",  # 2 good
    "Nobody,2026-01-01,10,",  # 3 unknown measure
    "Active users,2026-01-02,1.2.3,",  # 4 bad number
    "Active users,01/03/2026,5,",  # 5 bad date
    "Lead time,2026-01-01,4,",  # 6 good
    "Active users,2026-01-01,11,",  # 7 same time as line 2
    "Active users,2999-01-01,1,",  # 8 future
    "Lead time,2026-01-02,NaN,",  # 9 not finite
    "Lead time,2026-01-03,7,",  # 10 good
]


def test_preview(member, measures):
    ms.add_observation(member.membership, member.user, measures[1].pk, 1, observed_at="2026-01-03")
    preview = imports.preview_import(member.membership, "f.csv", csv_bytes(BAD_FILE))
    assert (preview.total, preview.valid, preview.invalid) == (9, 2, 7)
    assert [(e.line, e.field) for e in preview.errors] == [
        (3, "measure"),
        (4, "value"),
        (5, "observed_at"),
        (7, "observed_at"),
        (8, "observed_at"),
        (9, "value"),
        (10, "observed_at"),  # already stored
    ]
    assert preview.measures == {"Active users": 1, "Lead time": 1}
    assert preview.rows[0].line == 2
    assert Observation.objects.count() == 1  # a preview stores nothing


def test_bad_rows_are_reported_and_good_rows_land(member, measures):
    result = imports.run_import(member.membership, member.user, "f.csv", csv_bytes(BAD_FILE))
    assert (result.total, result.created, result.rejected) == (9, 3, 6)
    assert {e.line for e in result.errors} == {3, 4, 5, 7, 8, 9}
    assert Observation.objects.count() == 3


def test_ambiguous_names_need_an_id(member, measures):
    m = member.membership
    other = ss.create_product(m, member.user, name="Beacon")
    twin = ms.create_measure(m, member.user, name="Active users", kva="current_value", product_id=other.pk)
    content = csv_bytes(["measure,observed_at,value", "Active users,2026-01-01,1", f"{twin.pk},2026-01-01,2"])
    result = imports.run_import(m, member.user, "f.csv", content)
    assert result.created == 1 and result.errors[0].line == 2 and "id" in result.errors[0].message
    assert Observation.objects.get().measure == twin


def test_other_organisations_measures_are_unknown(member, outsider, measures):
    theirs = ms.create_measure(outsider.membership, outsider.user, name="Secret", kva="current_value")
    content = csv_bytes(["measure,observed_at,value", f"{theirs.pk},2026-01-01,1", "Secret,2026-01-01,1"])
    result = imports.run_import(member.membership, member.user, "f.csv", content)
    assert result.created == 0 and [e.field for e in result.errors] == ["measure", "measure"]


def test_stakeholders_cannot_import(stakeholder, measures):
    with pytest.raises(Forbidden):
        imports.run_import(stakeholder.membership, stakeholder.user, "f.csv", csv_bytes(BAD_FILE))


def big_file(measure_name: str, n: int) -> bytes:
    start = dt.datetime(2025, 1, 1, tzinfo=UTC)
    lines = ["measure,observed_at,value"] + [
        f"{measure_name},{(start + dt.timedelta(hours=i)).isoformat()},{i}" for i in range(n)
    ]
    return csv_bytes(lines)


def test_chunks_and_progress(member, measures):
    seen: list[tuple[int, int]] = []
    result = imports.run_import(
        member.membership,
        member.user,
        "f.csv",
        big_file("Lead time", 25),
        chunk_size=10,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert result.created == 25 and len(result.batches) == 3
    assert seen == [(10, 25), (20, 25), (25, 25)]
    assert sorted(ObservationBatch.objects.values_list("rows", flat=True)) == [5, 10, 10]


def test_interrupted_import_resumes_without_double_counting(member, measures, monkeypatch):
    content = big_file("Active users", 25)
    real = Observation.objects.bulk_create
    calls = {"n": 0}

    def failing_bulk_create(objs, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the database went away")
        return real(objs, *args, **kwargs)

    monkeypatch.setattr(Observation.objects, "bulk_create", failing_bulk_create)
    with pytest.raises(RuntimeError):
        imports.run_import(
            member.membership, member.user, "f.csv", content, idempotency_key="upload-7", chunk_size=10
        )
    monkeypatch.undo()
    # chunk 1 complete, chunk 2 absent (its batch row too)
    assert Observation.objects.count() == 10
    assert list(ObservationBatch.objects.values_list("idempotency_key", "rows")) == [("upload-7:1", 10)]

    result = imports.run_import(
        member.membership, member.user, "f.csv", content, idempotency_key="upload-7", chunk_size=10
    )
    assert (result.created, result.skipped, result.errors) == (15, 10, [])
    assert Observation.objects.count() == 25
    assert sorted(Observation.objects.values_list("value", flat=True)) == [float(i) for i in range(25)]

    # a third run changes nothing
    again = imports.run_import(
        member.membership, member.user, "f.csv", content, idempotency_key="upload-7", chunk_size=10
    )
    assert (again.created, again.skipped) == (0, 25)
    assert Observation.objects.count() == 25


def test_rerun_without_key_reports_duplicates(member, measures):
    content = big_file("Active users", 3)
    imports.run_import(member.membership, member.user, "f.csv", content)
    result = imports.run_import(member.membership, member.user, "f.csv", content)
    assert result.created == 0 and [e.field for e in result.errors] == ["observed_at"] * 3
    assert Observation.objects.count() == 3
