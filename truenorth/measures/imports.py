"""Observation files: CSV or Excel (.xlsx) with the columns `measure, observed_at, value[, note]`.

`measure` is a measure's name (case-insensitive) or id. CSV may use `,`, `;`, tab or `|` (detected from
the header), may start with a byte-order mark and may be UTF-8 or Windows-1252. Each row keeps its
1-based line number (the header is line 1) so errors point at the line to fix.

An import never loses good rows to bad ones: bad rows are reported (line, field, message) and the good
ones land in chunks, each chunk one atomic batch. With an idempotency key, chunk n is the batch
`KEY:n`, so running the same import again after an interruption skips the chunks already stored and
never counts a row twice. Chunks are cut from the file alone (rows that parse), so they are the same on
every run of the same file.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import ValidationFailed
from truenorth.measures import services
from truenorth.measures.models import Measure, MeasureSource
from truenorth.orgs.models import Membership

REQUIRED = ("measure", "observed_at", "value")
OPTIONAL = ("note",)
DELIMITERS = (",", ";", "\t", "|")
PREVIEW_ROWS = 20
MAX_ROWS = 2_000_000
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


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    next_line = 1
    for cells in reader:
        yield next_line, cells
        next_line = reader.line_num + 1


def _xlsx_rows(content: bytes) -> Iterator[tuple[int, list[Any]]]:
    import openpyxl  # imported on demand: only Excel uploads need it

    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ValidationFailed(f"This is not a readable Excel (.xlsx) file: {exc}", field="file") from None
    try:
        sheet = book.worksheets[0]
        for line, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield line, list(cells)
    finally:
        book.close()


def parse_file(filename: str, content: bytes) -> ParsedFile:
    """The data rows of a CSV or .xlsx file (by extension, or by content for an unknown one)."""
    name = filename.lower()
    is_xlsx = name.endswith((".xlsx", ".xlsm")) or (
        not name.endswith((".csv", ".tsv", ".txt")) and content[:4] == b"PK\x03\x04"
    )
    if name.endswith(".xls"):
        raise ValidationFailed(
            "Old Excel (.xls) files are not supported: save as .xlsx or CSV.", field="file"
        )
    if not content.strip():
        raise ValidationFailed("The file is empty.", field="file")
    lines: Iterator[tuple[int, list[Any]]] = _xlsx_rows(content) if is_xlsx else _csv_rows(_decode(content))
    header: list[Any] | None = None
    for _, cells in lines:
        if any(c not in (None, "") for c in cells):
            header = cells
            break
    if header is None:
        raise ValidationFailed("The file is empty.", field="file")
    columns = _columns(header)
    rows: list[ParsedRow] = []
    for line, cells in lines:
        row = _row(line, cells, columns)
        if row is not None:
            rows.append(row)
            if len(rows) > MAX_ROWS:
                raise ValidationFailed(f"A file may hold at most {MAX_ROWS:,} rows.", field="file")
    return ParsedFile("xlsx" if is_xlsx else "csv", [str(h or "").strip() for h in header], rows)


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
    return resolved, errors


def _check(membership: Membership, filename: str, content: bytes, *, check_existing: bool) -> _Checked:
    parsed = parse_file(filename, content)
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
    """What an import of this file would do: counts, the first rows, every bad row and the measures matched."""
    checked = _check(membership, filename, content, check_existing=True)
    matched = Counter(row.measure.name for row in checked.clean)
    bad_lines = {e.line for e in checked.errors}
    return ImportPreview(
        total=len(checked.parsed.rows),
        valid=len(checked.clean),
        invalid=len(bad_lines),
        rows=checked.parsed.rows[:PREVIEW_ROWS],
        errors=checked.errors,
        measures=dict(sorted(matched.items())),
    )


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
    key = services.clean_idempotency_key(idempotency_key)
    if key and len(key) > 180:
        raise ValidationFailed("An import's key must be at most 180 characters.", field="idempotency_key")
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
