"""Helpers the built-in importers share: text streams from bytes or a path, CSV rows with their line
numbers, timestamps, booleans and lists."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

DELIMITERS = (",", ";", "\t", "|")


class UnreadableInput(Exception):
    """The whole input cannot be read (not a repository, not JSON, no header): the import fails with
    this message. A single bad row is a BadRecord instead."""


def text_stream(data: bytes | Path) -> IO[str]:
    """The input as text: UTF-8 (with or without a byte-order mark) or, failing that, Windows-1252.
    A path is streamed from disk; bytes are decoded once."""
    if isinstance(data, Path):
        if not data.is_file():
            raise UnreadableInput(f"{data} is not a file.")
        with data.open("rb") as probe:
            head = probe.read(1 << 16)
        encoding = "utf-8-sig"
        try:
            head.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            if error.start < len(head) - 4:  # not just a character cut at the end of the probe
                encoding = "cp1252"
        return data.open(encoding=encoding, errors="replace", newline="")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return io.StringIO(data.decode(encoding), newline="")
        except UnicodeDecodeError:
            continue
    return io.StringIO(data.decode("latin-1"), newline="")


def csv_rows(data: bytes | Path) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line number, header, row) for each non-empty data row; the header is line 1. The delimiter
    (`,`, `;`, tab or `|`) is the one that splits the header into the most columns."""
    with text_stream(data) as stream:
        first = stream.readline()
        if not first.strip():
            raise UnreadableInput("The file is empty: a CSV file starts with a header row.")
        delimiter = max(DELIMITERS, key=first.count)
        header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
        reader = csv.reader(stream, delimiter=delimiter)
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                yield reader.line_num + 1, header, row
        except csv.Error as error:
            raise UnreadableInput(f"line {reader.line_num + 1}: {error}") from None


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 timestamp or date (`2026-03-12T09:15:00Z`, `2026-03-12 09:15:00+01:00`,
    `2026-03-12T09:15:00.000+0100`, `2026-03-12`); naive times are UTC. ValueError otherwise."""
    text = text.strip()
    if not text:
        raise ValueError("no timestamp")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


TRUE = {"true", "yes", "y", "1", "success", "succeeded", "ok", "passed"}
FALSE = {"false", "no", "n", "0", "failure", "failed", "error", "fail"}


def parse_bool(value: Any, default: bool = True) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if not text:
        return default
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"“{value}” is not true or false")


def parse_list(value: Any) -> tuple[str, ...]:
    """A list (JSON) or text separated by spaces, commas, semicolons or `|` (CSV)."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    text = str(value)
    for separator in (",", ";", "|"):
        text = text.replace(separator, " ")
    return tuple(part for part in text.split() if part)


def load_json(data: bytes | Path) -> Any:
    """The whole JSON document (JSON files are parsed at once; uploads are capped in size)."""
    with text_stream(data) as stream:
        try:
            return json.load(stream)
        except json.JSONDecodeError as error:
            raise UnreadableInput(f"Not valid JSON: {error.msg} at line {error.lineno}.") from None
