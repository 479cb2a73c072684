"""Observation files: CSV or Excel (.xlsx) with the columns `measure, observed_at, value[, note]`.

`measure` is a measure's name (case-insensitive) or id. CSV may use `,`, `;`, tab or `|` (detected from
the header), may start with a byte-order mark and may be UTF-8 or Windows-1252. Each row keeps its
1-based line number (the header is line 1) so errors point at the line to fix.

An import never loses good rows to bad ones: bad rows are reported (line, field, message) and the good
ones land in chunks, each chunk one atomic batch. With an idempotency key, chunk n is the batch
`KEY:n`, so running the same import again after an interruption skips the chunks already stored and
never counts a row twice. Chunks are cut from the file alone (rows that parse), so they are the same on
every run of the same file.

Limits (settings TRUENORTH_IMPORT_*; docs/operations.md "Limits"): a file over the size limit is refused with 413
(TooLarge); too many rows, a cell over the cell limit, or an .xlsx file whose parts unpack to too much
(read from the zip directory before openpyxl opens it) with 422 naming the file and the line. A preview
reads at most PREVIEW_CHECK_ROWS rows. The web upload and the API run imports as background jobs
(`submit_import`, runner `run_import_job`): the request only checks the file, the worker imports it.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import DomainError, TooLarge, ValidationFailed
from truenorth.jobs import services as jobs
from truenorth.jobs.models import Job
from truenorth.measures import services
from truenorth.measures.models import Measure, MeasureSource
from truenorth.orgs.models import Membership

REQUIRED = ("measure", "observed_at", "value")
OPTIONAL = ("note",)
DELIMITERS = (",", ";", "\t", "|")
PREVIEW_ROWS = 20  # rows a preview shows
PREVIEW_CHECK_ROWS = 10_000  # rows a preview reads and checks at most: it answers at once for any file
# The row fields services name, as the columns of the file.
COLUMN_OF = {"measure_id": "measure", "observed_at": "observed_at", "value": "value", "note": "note"}


@dataclass
class ParsedRow:
    line: int
    measure: str
    observed_at: Any  # text from CSV; a datetime, date or text from Excel
    value: Any  # text from CSV; a number or text from Excel
    note: str = ""


@dataclass
class ParsedFile:
    kind: str  # "csv" | "xlsx"
    columns: list[str]
    rows: list[ParsedRow]
    more: bool = False  # parsing stopped at a limit and the file has more rows


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str


@dataclass
class ImportPreview:
    total: int
    valid: int
    invalid: int
    rows: list[ParsedRow]  # the first rows of the file
    errors: list[RowError]
    measures: dict[str, int]  # matched measure name -> rows for it
    more: bool = False  # the file has more rows than the preview checked (PREVIEW_CHECK_ROWS)


@dataclass
class ImportResult:
    total: int  # data rows in the file
    created: int  # observations stored by this run
    skipped: int  # rows in chunks an earlier run had already stored (same key)
    batches: list[int] = field(default_factory=list)  # ids of the batches this run stored or found
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len({e.line for e in self.errors})


# --- limits -------------------------------------------------------------------------------------
# Every cap is refused before the work it bounds: the file size before reading, an .xlsx file's
# uncompressed size from its zip directory before openpyxl opens it, the row count and cell size while
# streaming the rows (a refused file is never held whole as rows). See the TRUENORTH_IMPORT_* settings.

XLSX_MAX_COLUMNS = 64  # columns read from a sheet (the named ones must be among them)
MAX_ZIP_MEMBERS = 10_000


def max_file_bytes() -> int:
    return int(settings.TRUENORTH_IMPORT_MAX_FILE_BYTES)


def _max_rows() -> int:
    return int(settings.TRUENORTH_IMPORT_MAX_ROWS)


def _max_cell_chars() -> int:
    return int(settings.TRUENORTH_IMPORT_MAX_CELL_CHARS)


def _max_xlsx_bytes() -> int:
    return int(settings.TRUENORTH_IMPORT_MAX_XLSX_BYTES)


def size_text(size: int) -> str:
    """A byte count for people: "820 KB", "52.4 MB"."""
    return f"{size / 1e3:,.0f} KB" if size < 1e6 else f"{size / 1e6:,.1f} MB"


def check_file_size(size: int | None, limit: int | None = None) -> None:
    """Refuse (413) a file larger than the limit (the import setting unless given)."""
    limit = max_file_bytes() if limit is None else limit
    if size is not None and size > limit:
        raise TooLarge(
            f"The file is {size_text(size)}; a file may be at most {size_text(limit)}.", field="file"
        )


# --- reading files ------------------------------------------------------------------------------


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1")


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _columns(header: Sequence[Any]) -> dict[str, int]:
    names = [str(h if h is not None else "").strip().lower().lstrip("\ufeff") for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ValidationFailed(
            f"The first line must name the columns {', '.join(REQUIRED)} (and optionally note); "
            f"missing: {', '.join(missing)}.",
            field="file",
        )
    return {name: names.index(name) for name in (*REQUIRED, *OPTIONAL) if name in names}


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _check_cells(line: int, cells: Sequence[Any], header: Sequence[Any], limit: int) -> None:
    try:  # the common case, all text (CSV) and short: one C-level pass
        if max(map(len, cells), default=0) <= limit:
            return
    except TypeError:  # numbers, dates or empty cells (Excel): look at each one
        pass
    for index, cell in enumerate(cells):
        if isinstance(cell, str) and len(cell) > limit:
            name = str(header[index] or "").strip()[:40] if index < len(header) else ""
            raise ValidationFailed(
                f"Line {line}, column {name or index + 1}: a cell may hold at most {limit:,} characters; "
                f"this one holds {len(cell):,}.",
                field="file",
            )


def _row(line: int, cells: Sequence[Any], columns: dict[str, int]) -> ParsedRow | None:
    def get(name: str) -> Any:
        index = columns.get(name)
        if index is None or index >= len(cells):
            return None
        value = cells[index]
        return value.strip() if isinstance(value, str) else value

    if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
        return None  # a blank line
    return ParsedRow(
        line=line,
        measure=_cell_text(get("measure")),
        observed_at=get("observed_at"),
        value=get("value"),
        note=_cell_text(get("note")),
    )


def _csv_rows(text: str) -> Generator[tuple[int, list[Any]]]:
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    next_line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over the csv module's 131,072-character limit
            if "field limit" in str(exc):
                message = f"a cell may hold at most {_max_cell_chars():,} characters"
            else:
                message = f"this line cannot be read as CSV ({exc})"
            raise ValidationFailed(f"Line {next_line}: {message}.", field="file") from None
        yield next_line, cells
        next_line = reader.line_num + 1


def _check_xlsx_archive(content: bytes) -> None:
    """Refuse an .xlsx file whose parts unpack to more than the limit, from the zip directory alone
    (nothing is decompressed). zipfile never returns more than a member's declared size (and checks its
    CRC), so a directory that understates sizes cannot smuggle more data past this check."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ValidationFailed(f"This is not a readable Excel (.xlsx) file: {exc}", field="file") from None
    limit = _max_xlsx_bytes()
    if len(members) > MAX_ZIP_MEMBERS:
        raise ValidationFailed(
            f"This Excel file has {len(members):,} parts; at most {MAX_ZIP_MEMBERS:,} are read.", field="file"
        )
    total = sum(m.file_size for m in members)
    if total > limit:
        raise ValidationFailed(
            f"This Excel file unpacks to {size_text(total)}; at most {size_text(limit)} is read. "
            "Save it as CSV or split it.",
            field="file",
        )
    # Shared strings are loaded whole into memory when the workbook opens: a tighter cap.
    shared = sum(m.file_size for m in members if m.filename.lower().endswith("sharedstrings.xml"))
    if shared > limit // 8:
        raise ValidationFailed(
            f"This Excel file's text cells unpack to {size_text(shared)}; at most {size_text(limit // 8)} "
            "is read. Save it as CSV or split it.",
            field="file",
        )


_XLSX_ERRORS = (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError, SyntaxError, EOFError, zlib.error)


def _xlsx_rows(content: bytes) -> Generator[tuple[int, list[Any]]]:
    import openpyxl  # imported on demand: only Excel uploads need it

    _check_xlsx_archive(content)
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except _XLSX_ERRORS as exc:
        raise ValidationFailed(f"This is not a readable Excel (.xlsx) file: {exc}", field="file") from None
    try:
        if not book.worksheets:
            raise ValidationFailed("This Excel file has no sheet.", field="file")
        sheet = book.worksheets[0]
        # The sheet's own dimension (cheap: the start of its XML) refuses an oversized sheet at once.
        declared = sheet.max_row
        if isinstance(declared, int) and declared > _max_rows() + 1:
            raise ValidationFailed(
                f"The sheet has {declared:,} rows; a file may hold at most {_max_rows():,}.", field="file"
            )
        # max_col bounds every row's width (a cell at column XFD would otherwise pad 16,384 cells).
        cells_by_row = sheet.iter_rows(values_only=True, max_col=XLSX_MAX_COLUMNS)
        line = 0
        while True:
            try:
                cells = next(cells_by_row)
            except StopIteration:
                return
            except _XLSX_ERRORS as exc:
                raise ValidationFailed(
                    f"Line {line + 1}: this Excel file cannot be read: {exc}", field="file"
                ) from None
            line += 1
            yield line, list(cells)
    finally:
        book.close()


def _is_xlsx(filename: str, content: bytes) -> bool:
    name = filename.lower()
    return name.endswith((".xlsx", ".xlsm")) or (
        not name.endswith((".csv", ".tsv", ".txt")) and content[:4] == b"PK\x03\x04"
    )


def parse_file(filename: str, content: bytes, *, limit: int | None = None, keep: bool = True) -> ParsedFile:
    """The data rows of a CSV or .xlsx file (by extension, or by content for an unknown one).

    With `limit`, stop after that many data rows (`more` tells whether the file goes on); with
    `keep=False`, read every row but keep none (a check of the caps). The caps on size, rows and cells
    apply either way."""
    check_file_size(len(content))
    name = filename.lower()
    is_xlsx = _is_xlsx(filename, content)
    if name.endswith(".xls"):
        raise ValidationFailed(
            "Old Excel (.xls) files are not supported: save as .xlsx or CSV.", field="file"
        )
    if not content.strip():
        raise ValidationFailed("The file is empty.", field="file")
    max_rows, max_chars = _max_rows(), _max_cell_chars()
    lines = _xlsx_rows(content) if is_xlsx else _csv_rows(_decode(content))
    with closing(lines):  # closing the generator closes the workbook
        header: list[Any] | None = None
        for line, cells in lines:
            _check_cells(line, cells, [], max_chars)
            if any(c not in (None, "") for c in cells):
                header = cells
                break
        if header is None:
            raise ValidationFailed("The file is empty.", field="file")
        columns = _columns(header)
        rows: list[ParsedRow] = []
        count = 0
        more = False
        for line, cells in lines:
            count += 1  # blank lines count too: they cost as much to read
            if count > max_rows:
                raise ValidationFailed(
                    f"A file may hold at most {max_rows:,} rows after the header; split it.", field="file"
                )
            _check_cells(line, cells, header, max_chars)
            if not keep:
                continue
            row = _row(line, cells, columns)
            if row is not None:
                if limit is not None and len(rows) >= limit:
                    more = True
                    break
                rows.append(row)
    return ParsedFile(
        "xlsx" if is_xlsx else "csv", [str(h or "").strip() for h in header], rows, more=more
    )


# --- matching and validating --------------------------------------------------------------------


@dataclass
class _Checked:
    parsed: ParsedFile
    clean: list[services.CleanRow]
    errors: list[RowError]
    matched: dict[int, Measure]


def _resolve(
    membership: Membership, rows: Sequence[ParsedRow]
) -> tuple[dict[int, Measure], dict[int, RowError]]:
    """Map each row (by index) to a measure id of the organisation, by id or case-insensitive name."""
    measures = list(
        Measure.objects.filter(organisation_id=membership.organisation_id).select_related("product")
    )
    by_id = {str(m.pk): m for m in measures}
    by_name: dict[str, list[Measure]] = {}
    for m in measures:
        by_name.setdefault(m.name.casefold(), []).append(m)
    resolved: dict[int, Measure] = {}
    errors: dict[int, RowError] = {}
    for index, row in enumerate(rows):
        key = row.measure.strip()
        if not key:
            errors[index] = RowError(row.line, "measure", "The measure is missing.")
            continue
        found = by_name.get(key.casefold(), [])
        if len(found) > 1:
            places = ", ".join(m.product.name if m.product else "organisation" for m in found)
            errors[index] = RowError(
                row.line, "measure", f"“{key[:60]}” names several measures ({places}): use the measure's id."
            )
        elif found:
            resolved[index] = found[0]
        elif key in by_id:
            resolved[index] = by_id[key]
        else:
            errors[index] = RowError(
                row.line, "measure", f"No measure called “{key[:60]}” (nor with that id)."
            )
    for index, measure in list(resolved.items()):
        if measure.source in services.FED_SOURCES:
            # Its values come from refreshing it (SQL query or formula), never from a file.
            del resolved[index]
            errors[index] = RowError(
                rows[index].line,
                "measure",
                f"“{measure.name}” is fed by {measure.get_source_display().lower()}: its values come from "
                "refreshing it, not from a file.",
            )
    return resolved, errors


def _check(
    membership: Membership, filename: str, content: bytes, *, check_existing: bool, limit: int | None = None
) -> _Checked:
    parsed = parse_file(filename, content, limit=limit)
    resolved, resolve_errors = _resolve(membership, parsed.rows)
    candidates = [i for i in range(len(parsed.rows)) if i in resolved]
    inputs = [
        services.ObservationIn(
            measure_id=resolved[i].pk,
            value=parsed.rows[i].value,
            observed_at=parsed.rows[i].observed_at,
            note=parsed.rows[i].note,
        )
        for i in candidates
    ]
    clean, row_errors = services.clean_rows(
        membership.organisation_id,
        inputs,
        now=timezone.now(),
        check_existing=check_existing,
        measures={m.pk: m for m in resolved.values()},
    )
    errors = list(resolve_errors.values())
    for position, fields in row_errors.items():
        line = parsed.rows[candidates[position]].line
        errors.extend(RowError(line, COLUMN_OF.get(name, name), message) for name, message in fields.items())
    # Clean rows carry their index among the candidates; make it the line number of the file.
    for row in clean:
        row.index = parsed.rows[candidates[row.index]].line
    errors.sort(key=lambda e: (e.line, e.field))
    return _Checked(parsed, clean, errors, {m.pk: m for m in resolved.values()})


def preview_import(membership: Membership, filename: str, content: bytes) -> ImportPreview:
    """What an import of this file would do: counts, the first rows, every bad row and the measures matched.

    It reads and checks at most PREVIEW_CHECK_ROWS rows (`more` says the file has more), so it answers
    quickly and in bounded memory for any file; the import itself checks every row."""
    checked = _check(membership, filename, content, check_existing=True, limit=PREVIEW_CHECK_ROWS)
    matched = Counter(row.measure.name for row in checked.clean)
    bad_lines = {e.line for e in checked.errors}
    return ImportPreview(
        total=len(checked.parsed.rows),
        valid=len(checked.clean),
        invalid=len(bad_lines),
        rows=checked.parsed.rows[:PREVIEW_ROWS],
        errors=checked.errors,
        measures=dict(sorted(matched.items())),
        more=checked.parsed.more,
    )


def _import_key(idempotency_key: str) -> str:
    key = services.clean_idempotency_key(idempotency_key)
    if key and len(key) > 180:
        raise ValidationFailed("An import's key must be at most 180 characters.", field="idempotency_key")
    return key


def run_import(
    membership: Membership,
    actor: User,
    filename: str,
    content: bytes,
    *,
    idempotency_key: str = "",
    chunk_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Store the good rows of a file in atomic chunks and report the bad ones (see the module doc).

    `progress(done, total)` is called after each chunk with the good rows handled so far."""
    services.require_writer(membership)
    if chunk_size < 1:
        raise ValidationFailed("The chunk size must be at least 1.", field="chunk_size")
    key = _import_key(idempotency_key)
    # Chunks are cut before looking for values already stored, so a re-run cuts the same chunks.
    checked = _check(membership, filename, content, check_existing=False)
    result = ImportResult(total=len(checked.parsed.rows), created=0, skipped=0, errors=list(checked.errors))
    good = checked.clean
    done = 0
    for n, start in enumerate(range(0, len(good), chunk_size), start=1):
        chunk = good[start : start + chunk_size]
        chunk_key = f"{key}:{n}" if key else ""
        earlier = services.find_batch(membership, chunk_key)
        if earlier is not None:
            result.skipped += len(chunk)
            result.batches.append(earlier.pk)
        else:
            duplicates = services.existing_duplicates(chunk)
            if duplicates:
                taken = {id(r) for r in duplicates}
                result.errors.extend(
                    RowError(
                        r.index,
                        "observed_at",
                        f"“{r.measure.name}” already has a value at {r.observed_at.isoformat()}; "
                        "to correct a value, supersede it.",
                    )
                    for r in duplicates
                )
                chunk = [r for r in chunk if id(r) not in taken]
            if chunk:
                stored = services.store_batch(
                    membership, actor, chunk, source=MeasureSource.FILE, idempotency_key=chunk_key
                )
                result.batches.append(stored.batch.pk)
                if stored.replayed:
                    result.skipped += len(chunk)
                else:
                    result.created += stored.created
        done = min(len(good), start + chunk_size)
        if progress is not None:
            progress(done, len(good))
    result.errors.sort(key=lambda e: (e.line, e.field))
    return result


def describe_result(result: ImportResult) -> str:
    """One line: what an import did."""
    parts = [f"{result.created:,} observation{'s' if result.created != 1 else ''} imported"]
    if result.skipped:
        parts.append(f"{result.skipped:,} already imported before (same key)")
    if result.rejected:
        parts.append(f"{result.rejected:,} row{'s' if result.rejected != 1 else ''} rejected")
    return ", ".join(parts) + f" (of {result.total:,} rows in the file)."


# --- as a background job (truenorth/jobs) ---------------------------------------------------------
# The web upload and the API store the file on a job and answer at once; the worker parses and stores it
# chunk by chunk (reporting progress), so no web worker holds a large file. An interrupted import is
# resumed by importing the same file with the same key (chunks already stored are skipped); without a
# key, rows already stored are reported as duplicates, never stored twice.

IMPORT_KIND = "observations.import"
MAX_RESULT_ERRORS = 1000  # bad rows listed in a job's result (the count covers all of them)


def check_upload(filename: str, content: bytes) -> None:
    """What an upload is refused for before its import is queued: size, format and header; for CSV the
    row and cell caps over the whole file (one pass of the csv module, nothing kept: about a second for
    a million rows); for .xlsx the unpacked size and the sheet's declared rows (the job counts its rows:
    parsing a sheet is the slow part that must not run in a web worker)."""
    parse_file(filename, content, limit=0)
    if _is_xlsx(filename, content):
        return
    # Fast and exact enough: a file with few enough lines, none longer than a cell may be, is within
    # both caps. Otherwise one exact pass finds the row at fault (or finds none: e.g. long lines of
    # several short cells). A quoted cell spanning lines that is too long is refused by the job.
    text = _decode(content)
    if text.count("\n") <= _max_rows() and max(map(len, text.splitlines()), default=0) <= _max_cell_chars():
        return
    parse_file(filename, content, keep=False)


def submit_import(
    membership: Membership,
    actor: User,
    filename: str,
    content: bytes,
    *,
    idempotency_key: str = "",
    measure_id: int | None = None,
) -> Job:
    """Check what can be checked at once (role, size, format, header and, for .xlsx, the unpacked size)
    and queue the import as a job holding the file. `measure_id`: the measure page it was uploaded from."""
    services.require_writer(membership)
    key = _import_key(idempotency_key)
    check_upload(filename, content)
    params: dict[str, Any] = {"filename": filename[:255], "idempotency_key": key, "bytes": len(content)}
    if measure_id is not None:
        params["measure_id"] = measure_id
    return jobs.submit(membership, actor, IMPORT_KIND, params, payload=content)


def result_dict(result: ImportResult) -> dict[str, Any]:
    """An import's result as JSON (the API's answer and a job's result)."""
    return {
        "total": result.total,
        "created": result.created,
        "skipped": result.skipped,
        "rejected": result.rejected,
        "batches": result.batches,
        "errors": [
            {"line": e.line, "field": e.field, "message": e.message} for e in result.errors[:MAX_RESULT_ERRORS]
        ],
        "errors_total": len(result.errors),
        "summary": describe_result(result),
    }


@jobs.register(IMPORT_KIND)
def run_import_job(job: Job, progress: jobs.Progress) -> dict[str, Any]:
    """The job: import the stored file as the person who uploaded it (who must still be a writer)."""
    membership, actor = jobs.acting_membership(job)
    content = jobs.payload_of(job)
    if content is None:
        raise jobs.JobFailed("The uploaded file is no longer stored; upload it again.")
    handled = 0

    def report(done: int, total: int) -> None:
        nonlocal handled
        handled = done
        progress(done, total)

    progress(0, 0)
    key = str(job.params.get("idempotency_key") or "")
    try:
        result = run_import(
            membership, actor, str(job.params.get("filename") or "upload.csv"), content,
            idempotency_key=key, progress=report,
        )
    except jobs.JobFailed:
        raise
    except DomainError as exc:
        if not handled:
            raise
        resume = (
            "import the same file again with the same key to resume"
            if key
            else "import the same file again: rows already stored are reported, not stored twice"
        )
        raise jobs.JobFailed(
            f"{exc.message} The {handled:,} good rows handled before it are stored; {resume}.",
            result={"handled": handled},
        ) from None
    outcome = result_dict(result)
    measure_id = job.params.get("measure_id")
    if measure_id is not None:
        outcome["link"] = (
            reverse("measures:measure", args=(job.organisation.slug, int(measure_id))) + "#observations"
        )
        outcome["link_text"] = "Back to the measure"
    return outcome
