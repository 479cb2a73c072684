"""Observation file imports under attack (issue 8, items 4, 9 and 12): caps on file size (413), rows,
cell size and an .xlsx file's unpacked size (422, naming the field), a bounded preview, and imports as
background jobs that answer at once and finish complete or resumable.

The hostile files are built here, small on disk: a 400 MB cell compresses to ~400 KB, 1.9 million rows
to well under a megabyte."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from truenorth.core.errors import TooLarge, ValidationFailed
from truenorth.jobs import services as job_services
from truenorth.jobs.models import Job
from truenorth.measures import imports
from truenorth.measures import services as ms
from truenorth.measures.models import KVA, Observation

SLUG = "alpha"
BASE = f"/api/v1/orgs/{SLUG}"
MB = 2**20

CONTENT_TYPES = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>
</Types>"""
ROOT_RELS = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
WORKBOOK = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"""
WORKBOOK_RELS = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>
</Relationships>"""
SHEET_START = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def crafted_xlsx(sheet: Iterator[bytes], shared: Iterator[bytes], *, level: int = 9) -> bytes:
    """A minimal .xlsx whose sheet and shared strings are streamed into the zip (never whole in memory)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        for name, parts in (("xl/worksheets/sheet1.xml", sheet), ("xl/sharedStrings.xml", shared)):
            with archive.open(name, "w", force_zip64=True) as member:
                for part in parts:
                    member.write(part)
    return buffer.getvalue()


def header_row() -> bytes:
    cells = "".join(
        f'<c r="{col}1" t="inlineStr"><is><t>{name}</t></is></c>'
        for col, name in zip("ABC", ("measure", "observed_at", "value"), strict=True)
    )
    return f'<row r="1">{cells}</row>'.encode()


def one_huge_shared_string(megabytes: int) -> Iterator[bytes]:
    yield b"<sst " + NS + b' count="1" uniqueCount="1"><si><t>'
    chunk = b"A" * MB
    for _ in range(megabytes):
        yield chunk
    yield b"</t></si></sst>"


def sheet_using_the_huge_string() -> Iterator[bytes]:
    yield SHEET_START + b"<sheetData>" + header_row()
    yield b'<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2"><v>46000</v></c><c r="C2"><v>1</v></c></row>'
    yield b"</sheetData></worksheet>"


def no_shared_strings() -> Iterator[bytes]:
    yield b"<sst " + NS + b' count="0" uniqueCount="0"></sst>'


def many_rows(rows: int, *, dimension: bool) -> Iterator[bytes]:
    """A sheet of `rows` identical data rows (rows and cells need no `r` attribute): ~700 KB zipped for
    1.9 million rows, like the probe's file."""
    yield SHEET_START
    if dimension:
        yield f'<dimension ref="A1:C{rows + 1}"/>'.encode()
    yield b"<sheetData>" + header_row()
    row = b'<row><c t="inlineStr"><is><t>Revenue</t></is></c><c><v>46000</v></c><c><v>1</v></c></row>'
    full, rest = divmod(rows, 10_000)
    for _ in range(full):
        yield row * 10_000
    yield row * rest + b"</sheetData></worksheet>"


def refused_before_opening(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to open the workbook with openpyxl fail the test."""

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("openpyxl opened a file that the zip directory should have refused")

    monkeypatch.setattr(openpyxl, "load_workbook", fail)


def peak_memory(fn: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        try:
            outcome: Any = fn()
        except Exception as exc:  # the refusal is the outcome under test
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def revenue(member):
    return ms.create_measure(member.membership, member.user, name="Revenue", kva=KVA.CURRENT_VALUE)


def _upload(client: Any, name: str, content: bytes, query: str = "") -> Any:
    return client.post(f"{BASE}/observations/import{query}", {"file": SimpleUploadedFile(name, content)})


# --- Excel files refused from their zip directory ----------------------------------------------------


@pytest.fixture(scope="module")
def xlsx_with_a_400_mb_cell() -> bytes:
    return crafted_xlsx(sheet_using_the_huge_string(), one_huge_shared_string(400))


def test_an_xlsx_with_a_400_mb_cell_is_refused_from_its_zip_directory_without_unpacking_it(
    xlsx_with_a_400_mb_cell, member, revenue, monkeypatch
):
    content = xlsx_with_a_400_mb_cell
    assert len(content) < 600_000  # ~400 KB on disk, as in the probe
    refused_before_opening(monkeypatch)
    outcome, peak = peak_memory(lambda: imports.preview_import(member.membership, "big.xlsx", content))
    assert isinstance(outcome, ValidationFailed), outcome
    assert outcome.field == "file"
    assert "unpacks to" in outcome.message
    assert peak < 5 * MB  # the probe saw a 400 MB preview and 2 GB of worker memory
    for query in ("?preview=true", "?idempotency_key=big"):
        response = _upload(member.api(), "big.xlsx", content, query)
        assert response.status_code == 422, response.content
        assert response.json()["errors"][0]["field"] == "file"
    assert not Job.objects.exists()


def test_an_xlsx_with_1_9_million_rows_is_refused_before_a_row_is_read(member, revenue, monkeypatch):
    content = crafted_xlsx(many_rows(1_900_000, dimension=True), no_shared_strings())
    assert len(content) < 2 * MB  # the probe's file was 679 KB
    started = time.monotonic()
    outcome, peak = peak_memory(lambda: imports.preview_import(member.membership, "rows.xlsx", content))
    assert isinstance(outcome, ValidationFailed), outcome
    assert outcome.field == "file"
    assert time.monotonic() - started < 5
    assert peak < 20 * MB
    response = _upload(member.api(), "rows.xlsx", content, "?idempotency_key=rows")
    assert response.status_code == 422, response.content
    assert not Job.objects.exists() and not Observation.objects.exists()


def test_an_xlsx_over_the_row_limit_without_a_dimension_is_refused_while_streaming(
    member, revenue, settings
):
    settings.TRUENORTH_IMPORT_MAX_ROWS = 1000
    content = crafted_xlsx(many_rows(1500, dimension=False), no_shared_strings())
    with pytest.raises(ValidationFailed, match="at most 1,000 rows") as exc:
        imports.run_import(member.membership, member.user, "rows.xlsx", content)
    assert exc.value.field == "file"
    assert not Observation.objects.exists()


def test_an_xlsx_whose_zip_directory_understates_a_part_is_unreadable_not_unpacked(member, revenue):
    """The unpacked-size check trusts the zip directory; zipfile then never returns more than the size
    declared there (and checks the CRC), so a lying directory cannot smuggle a bomb past it."""
    content = bytearray(crafted_xlsx(many_rows(5000, dimension=False), no_shared_strings()))
    name = b"xl/worksheets/sheet1.xml"
    entry = content.index(b"PK\x01\x02")  # the central directory's first entry
    while True:
        lengths = [int.from_bytes(content[entry + i : entry + i + 2], "little") for i in (28, 30, 32)]
        if content[entry + 46 : entry + 46 + lengths[0]] == name:
            break
        entry = content.index(b"PK\x01\x02", entry + 46 + sum(lengths))
    assert int.from_bytes(content[entry + 24 : entry + 28], "little") > 100_000  # the true size
    content[entry + 24 : entry + 28] = (1000).to_bytes(4, "little")  # declare 1,000 bytes
    with pytest.raises(ValidationFailed) as exc:
        imports.run_import(member.membership, member.user, "liar.xlsx", bytes(content))
    assert exc.value.field == "file"
    assert not Observation.objects.exists()


# --- CSV: cells, rows, size --------------------------------------------------------------------------


def test_a_csv_cell_over_the_csv_modules_field_limit_is_422_naming_the_line_not_500(member, revenue):
    content = b"measure,observed_at,value,note\nRevenue,2026-01-01,1,ok\nRevenue,2026-01-02,2," + (
        b"x" * 200_000
    ) + b"\n"
    for query in ("?preview=true", "?idempotency_key=long-cell"):
        response = _upload(member.api(), "long.csv", content, query)
        assert response.status_code == 422, response.content
        body = response.json()
        assert body["errors"][0]["field"] == "file"
        assert body["detail"].startswith("Line 3")
    assert not Observation.objects.exists()


def test_a_cell_over_the_cell_limit_is_refused_naming_line_and_column(member, revenue):
    content = b"measure,observed_at,value,note\nRevenue,2026-01-01," + b"9" * 1001 + b",\n"
    with pytest.raises(ValidationFailed) as exc:
        imports.preview_import(member.membership, "x.csv", content)
    assert exc.value.field == "file"
    assert exc.value.message.startswith("Line 2, column value: a cell may hold at most 1,000 characters")


def test_a_csv_over_the_row_limit_is_refused(member, revenue, settings):
    settings.TRUENORTH_IMPORT_MAX_ROWS = 100
    lines = ["measure,observed_at,value"] + [f"Revenue,2025-01-01T00:{i // 60:02}:{i % 60:02},{i}" for i in range(101)]
    response = _upload(member.api(), "rows.csv", "\n".join(lines).encode(), "?idempotency_key=rows")
    assert response.status_code == 422, response.content
    assert "at most 100 rows" in response.json()["detail"]
    assert not Observation.objects.exists()


def test_a_file_over_the_size_limit_is_413_through_the_api_before_anything_is_parsed(
    member, revenue, settings, monkeypatch
):
    settings.TRUENORTH_IMPORT_MAX_FILE_BYTES = 100_000
    monkeypatch.setattr(imports, "parse_file", lambda *a, **k: pytest.fail("the file was parsed"))
    content = b"measure,observed_at,value\n" + b"Revenue,2026-01-01,1\n" * 10_000  # ~210 KB
    for query in ("?preview=true", "?idempotency_key=big"):
        response = _upload(member.api(), "big.csv", content, query)
        assert response.status_code == 413, response.content
        assert response.json()["errors"][0]["field"] == "file"
    with pytest.raises(TooLarge):
        imports.check_file_size(len(content))


def test_a_file_just_over_the_limit_inside_the_multipart_slack_is_still_413(member, revenue, settings):
    settings.TRUENORTH_IMPORT_MAX_FILE_BYTES = 100_000
    content = b"measure,observed_at,value\n" + b"Revenue,2026-01-01,1\n" * 4800  # ~100.8 KB
    response = _upload(member.api(), "big.csv", content)
    assert response.status_code == 413, response.content


def test_a_web_upload_over_the_web_limit_is_413_on_the_file_field(owner, revenue):
    url = reverse("measures:import", kwargs={"org_slug": SLUG, "measure_id": revenue.pk})
    content = b"measure,observed_at,value\n" + b"Revenue,2026-01-01,1\n" * 80_000  # ~1.7 MB
    response = owner.client.post(url, {"file": SimpleUploadedFile("big.csv", content)})
    assert response.status_code == 413
    assert "file" in response.context["upload_form"].errors


# --- the preview reads a bounded start of the file ---------------------------------------------------


def test_the_preview_checks_only_the_first_rows_and_says_the_file_has_more(member, revenue, monkeypatch):
    monkeypatch.setattr(imports, "PREVIEW_CHECK_ROWS", 50)
    lines = ["measure,observed_at,value"] + [f"Revenue,2025-01-01T00:{i // 60:02}:{i % 60:02},{i}" for i in range(500)]
    response = _upload(member.api(), "many.csv", "\n".join(lines).encode(), "?preview=true")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["total"], body["valid"], body["more"]) == (50, 50, True)
    assert len(body["rows"]) == imports.PREVIEW_ROWS
    small = _upload(member.api(), "few.csv", "\n".join(lines[:11]).encode(), "?preview=true").json()
    assert (small["total"], small["more"]) == (10, False)


def test_the_web_preview_of_a_large_file_says_it_checked_the_start(owner, revenue, monkeypatch):
    monkeypatch.setattr(imports, "PREVIEW_CHECK_ROWS", 50)
    lines = ["measure,observed_at,value"] + [f"Revenue,2025-01-01T00:{i // 60:02}:{i % 60:02},{i}" for i in range(500)]
    url = reverse("measures:import", kwargs={"org_slug": SLUG, "measure_id": revenue.pk})
    response = owner.client.post(url, {"file": SimpleUploadedFile("many.csv", "\n".join(lines).encode())})
    assert response.status_code == 200
    assert b'data-testid="import-more"' in response.content
    assert b"Import the file" in response.content


# --- imports are background jobs ---------------------------------------------------------------------


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Jobs are queued, not run inline: the test runs them as the worker would."""
    ids: list[int] = []
    monkeypatch.setattr(job_services, "_enqueue", lambda job: ids.append(job.pk))
    return ids


def big_csv(rows: int, *, bad_every: int = 0) -> bytes:
    start = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    lines = ["measure,observed_at,value,note"]
    for i in range(rows):
        value = "oops" if bad_every and i % bad_every == 7 else str(i % 1000)
        lines.append(f"Revenue,{(start + dt.timedelta(minutes=i)).isoformat()},{value},")
    return ("\n".join(lines) + "\n").encode()


def test_a_200k_row_csv_import_answers_202_at_once_and_the_job_stores_every_good_row_once(
    member, revenue, queued
):
    content = big_csv(200_000, bad_every=50_000)  # 4 bad rows, at lines 9, 50_009, …
    api = member.api()
    started = time.monotonic()
    response = _upload(api, "big.csv", content, "?idempotency_key=big-1")
    assert response.status_code == 202, response.content
    assert time.monotonic() - started < 5  # nothing parsed beyond the header in the request
    job = response.json()
    assert (job["kind"], job["status"]) == ("observations.import", "queued")
    assert response["Location"] == job["url"]
    assert not Observation.objects.exists()

    job_services.execute(queued[0])  # the worker
    done = api.get(job["url"]).json()
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert (result["total"], result["created"], result["rejected"]) == (200_000, 199_996, 4)
    assert [(e["line"], e["field"]) for e in result["errors"]] == [
        (9, "value"), (50_009, "value"), (100_009, "value"), (150_009, "value")
    ]
    assert done["progress"] == {"done": 199_996, "total": 199_996}
    assert Observation.objects.count() == 199_996
    assert Job.objects.get(pk=queued[0]).payload is None  # the file is dropped once imported

    again = _upload(api, "big.csv", content, "?idempotency_key=big-1")
    assert again.status_code == 202
    job_services.execute(queued[1])
    rerun = api.get(again.json()["url"]).json()["result"]
    assert (rerun["created"], rerun["skipped"]) == (0, 199_996)
    assert Observation.objects.count() == 199_996


def test_an_import_interrupted_midway_fails_with_a_resumable_result_and_a_rerun_completes_it(
    member, revenue, queued, monkeypatch
):
    content = big_csv(12_000)
    real_store = ms.store_batch
    calls = {"n": 0}

    def store_then_fail(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValidationFailed("The database went away.", field="file")
        return real_store(*args, **kwargs)

    monkeypatch.setattr(ms, "store_batch", store_then_fail)
    api = member.api()
    first = _upload(api, "big.csv", content, "?idempotency_key=resume-1")
    job_services.execute(queued[0])
    failed = api.get(first.json()["url"]).json()
    assert failed["status"] == "failed"
    assert "resume" in failed["error"] and "5,000" in failed["error"]
    assert failed["result"] == {"handled": 5000}
    assert Observation.objects.count() == 5000  # the first chunk is kept, whole

    second = _upload(api, "big.csv", content, "?idempotency_key=resume-1")
    job_services.execute(queued[1])
    result = api.get(second.json()["url"]).json()["result"]
    assert (result["created"], result["skipped"]) == (7000, 5000)
    assert Observation.objects.count() == 12_000


def test_an_import_job_of_a_member_who_has_since_left_stores_nothing(member, owner, revenue, queued):
    response = _upload(member.api(), "x.csv", big_csv(10), "?idempotency_key=left")
    assert response.status_code == 202
    member.membership.delete()
    job_services.execute(queued[0])
    job = Job.objects.get(pk=queued[0])
    assert job.status == "failed"
    assert not Observation.objects.exists()


def test_the_web_import_runs_as_a_job_and_its_page_shows_the_result(owner, revenue):
    url = reverse("measures:import", kwargs={"org_slug": SLUG, "measure_id": revenue.pk})
    preview = owner.client.post(url, {"file": SimpleUploadedFile("x.csv", big_csv(30, bad_every=20))})
    assert preview.status_code == 200
    form = preview.context["confirm_form"]
    confirm = {"confirm": "1", **{k: form.initial[k] for k in ("filename", "content", "idempotency_key")}}
    done = owner.client.post(url, confirm, follow=True)
    assert done.redirect_chain[-1][0].startswith(f"/o/{SLUG}/jobs/")
    assert "28 observations imported, 2 rows rejected" in done.content.decode()
    assert Observation.objects.count() == 28


def test_the_worker_finds_the_import_runner_by_discovering_the_apps_jobs_modules(tmp_path):
    """The worker imports no view or API module: the runner must be registered by `<app>.jobs`."""
    code = (
        "import django; django.setup()\n"
        "from truenorth.jobs.services import runner_for\n"
        "print(runner_for('observations.import').__name__)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "truenorth.settings", "TRUENORTH_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "run_import_job", done.stderr


def test_an_xlsx_whose_rows_are_only_counted_by_the_job_fails_the_job_with_the_limit_not_a_500(
    member, revenue, settings
):
    """Without a declared dimension, a sheet's rows are counted while the job streams it (parsing a sheet
    in the request would hold a web worker); the job fails naming the limit and stores nothing."""
    settings.TRUENORTH_IMPORT_MAX_ROWS = 1000
    content = crafted_xlsx(many_rows(1500, dimension=False), no_shared_strings())
    response = _upload(member.api(), "rows.xlsx", content, "?idempotency_key=rows")
    assert response.status_code == 202, response.content
    job = member.api().get(response["Location"]).json()
    assert job["status"] == "failed"
    assert "at most 1,000 rows" in job["error"]
    assert not Observation.objects.exists()


def test_the_cli_refuses_a_file_over_the_same_size_limit_and_a_cell_over_the_cell_limit_in_one_line(
    capsys, tmp_path, member, revenue, settings
):
    from truenorth import cli

    settings.TRUENORTH_IMPORT_MAX_FILE_BYTES = 10_000
    big = tmp_path / "big.csv"
    big.write_bytes(b"measure,observed_at,value\n" + b"Revenue,2026-01-01,1\n" * 1000)
    long_cell = tmp_path / "long.csv"
    long_cell.write_bytes(b"measure,observed_at,value,note\nRevenue,2026-01-01,1," + b"n" * 2000 + b"\n")
    for path, fragment in ((big, "larger than 10 KB"), (long_cell, "Line 2, column note")):
        code = cli.main(["measure", "import", str(path), "--org", SLUG, "--as", member.user.email])
        err = capsys.readouterr().err
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not Observation.objects.exists()


def test_past_the_organisations_job_limit_an_import_is_429_in_the_api_and_a_message_on_the_web(
    owner, member, revenue, queued, settings
):
    settings.TRUENORTH_JOBS_PER_ORGANISATION = 1
    assert _upload(member.api(), "a.csv", big_csv(5), "?idempotency_key=a").status_code == 202  # queued
    refused = _upload(member.api(), "b.csv", big_csv(5), "?idempotency_key=b")
    assert refused.status_code == 429, refused.content
    url = reverse("measures:import", kwargs={"org_slug": SLUG, "measure_id": revenue.pk})
    preview = owner.client.post(url, {"file": SimpleUploadedFile("x.csv", big_csv(5))})
    form = preview.context["confirm_form"]
    confirm = {"confirm": "1", **{k: form.initial[k] for k in ("filename", "content", "idempotency_key")}}
    page = owner.client.post(url, confirm, follow=True)
    assert page.status_code == 200
    assert "already has 1 job" in page.content.decode()
    assert Job.objects.count() == 1 and not Observation.objects.exists()
