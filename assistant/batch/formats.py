"""Question files: CSV, JSONL or XLSX, chosen by the file's suffix.

Columns are found by name, case-insensitively (spaces and hyphens count as ``_``): a
``question`` column and, optionally, an id, the expected answer(s), the expected source(s) and
an ``unanswerable`` flag (names in :data:`COLUMNS`). Several expected answers or
sources are a JSON list (a JSONL value, or a cell holding one) or separated by ``|``.

A bad row (no question, a line that is not JSON, a repeated id, an over-long question, an
unreadable flag) is reported with its row number and the other rows are kept. Row numbers are
those a spreadsheet shows (the header is row 1) for CSV and XLSX, line numbers for JSONL. A file
that is missing, empty, of another format or without a question column is a
:class:`BatchInputError` naming the file and the columns it has.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.core.errors import InvalidQuestionError, LoragError
from assistant.engine import check_question

SUFFIXES = (".csv", ".jsonl", ".xlsx")
COLUMNS: dict[str, tuple[str, ...]] = {
    "question": ("question",),
    "id": ("id", "qid", "question_id"),
    "expected_answers": (
        "expected_answers",
        "expected_answer",
        "gold_answers",
        "gold_answer",
        "answers",
        "answer",
    ),
    "expected_sources": (
        "expected_sources",
        "expected_source",
        "gold_sources",
        "gold_source",
        "sources",
        "source",
    ),
    "unanswerable": ("unanswerable", "is_impossible", "impossible", "no_answer"),
}
_TRUE = frozenset({"true", "yes", "y", "1", "x"})
_FALSE = frozenset({"false", "no", "n", "0", ""})

# A row as read: its number, and its cells by column name (or why it could not be read).
RawRow = tuple[int, dict[str, Any] | str]


class BatchInputError(LoragError):
    """A question or answer file cannot be used: missing, empty, unreadable, no question column."""


@dataclass(frozen=True)
class Question:
    """One row to answer. ``id`` is the file's id, or the row number when it has none."""

    row: int
    id: str
    text: str
    expected_answers: tuple[str, ...] = ()
    expected_sources: tuple[str, ...] = ()
    unanswerable: bool = False


@dataclass(frozen=True)
class RowProblem:
    """A row that was left out, and why."""

    row: int
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


@dataclass(frozen=True)
class QuestionFile:
    """The usable questions of a file, the rows left out, and the columns found."""

    path: Path
    questions: list[Question]
    problems: list[RowProblem]
    columns: list[str]
    fields: frozenset[str]

    @property
    def rows(self) -> int:
        return len(self.questions) + len(self.problems)


def read_questions(path: Path) -> QuestionFile:
    """The questions in ``path`` (CSV, JSONL or XLSX), each bad row reported by number."""
    suffix = check_suffix(path)
    if not path.is_file():
        raise BatchInputError(f"questions file {str(path)!r} not found")
    reader = {".csv": _csv_rows, ".jsonl": _jsonl_rows, ".xlsx": _xlsx_rows}[suffix]
    columns, raw = reader(path)
    found = ", ".join(columns) or "none"
    if not raw:
        if not columns:
            raise BatchInputError(f"{str(path)!r} is empty: no header and no rows")
        raise BatchInputError(f"{str(path)!r} has no rows (columns: {found})")
    mapping = _map_columns(columns)
    if "question" not in mapping and columns:
        raise BatchInputError(
            f"{str(path)!r} has no question column (columns found: {found}); "
            "name the column of questions 'question'"
        )
    questions: list[Question] = []
    problems: list[RowProblem] = []
    first_row: dict[str, int] = {}
    for row, cells in raw:
        try:
            if isinstance(cells, str):
                raise ValueError(cells)
            question = _question(row, cells, mapping)
            if question.id in first_row:
                raise ValueError(f"id {question.id!r} repeats row {first_row[question.id]}")
        except (ValueError, InvalidQuestionError) as problem:
            problems.append(RowProblem(row, str(problem)))
            continue
        first_row[question.id] = row
        questions.append(question)
    return QuestionFile(path, questions, problems, columns, frozenset(mapping))


def check_suffix(path: Path) -> str:
    """``path``'s suffix, lower-cased, if it is a supported format; else a BatchInputError."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise BatchInputError(
            f"{str(path)!r}: unsupported format {suffix or '(no suffix)'!r}; "
            f"use one of {', '.join(SUFFIXES)}"
        )
    return suffix


def _map_columns(columns: list[str]) -> dict[str, str]:
    """Field name → the file's column holding it (first alias found wins)."""
    by_key = {re.sub(r"[\s\-]+", "_", column.strip().lower()): column for column in columns}
    return {
        field: by_key[alias]
        for field, aliases in COLUMNS.items()
        for alias in reversed(aliases)  # so that the first alias found is kept
        if alias in by_key
    }


def _question(row: int, cells: dict[str, Any], mapping: dict[str, str]) -> Question:
    def cell(field: str) -> Any:
        return cells.get(mapping[field]) if field in mapping else None

    text = check_question(_text(cell("question")))
    return Question(
        row=row,
        id=_text(cell("id")) or str(row),
        text=text,
        expected_answers=_many(cell("expected_answers")),
        expected_sources=_many(cell("expected_sources")),
        unanswerable=_flag(cell("unanswerable")),
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _many(value: Any) -> tuple[str, ...]:
    """Several values from a list, a JSON list in a cell, or a cell split on ``|``."""
    if isinstance(value, list):
        items = value
    else:
        text = _text(value)
        try:
            items = json.loads(text) if text.startswith("[") else text.split("|")
        except ValueError:
            items = text.split("|")
        if not isinstance(items, list):
            items = [text]
    return tuple(item for item in (_text(item) for item in items) if item)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"unanswerable must be true or false, not {text!r}")


# --------------------------------------------------------------------------- readers


def _csv_rows(path: Path) -> tuple[list[str], list[RawRow]]:
    text = _decode(path)
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [column.strip() for column in next(records, [])]
    rows: list[RawRow] = []
    for row, record in enumerate(records, start=2):
        if any(cell.strip() for cell in record):
            rows.append((row, dict(zip(header, record, strict=False))))
    return [column for column in header if column], rows


def _jsonl_rows(path: Path) -> tuple[list[str], list[RawRow]]:
    columns: dict[str, None] = {}
    rows: list[RawRow] = []
    for row, line in enumerate(_decode(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            rows.append((row, f"not valid JSON ({error})"))
            continue
        if not isinstance(record, dict):
            rows.append((row, f"not a JSON object but {type(record).__name__}"))
            continue
        columns.update(dict.fromkeys(record))
        rows.append((row, record))
    return list(columns), rows


def _xlsx_rows(path: Path) -> tuple[list[str], list[RawRow]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises zipfile, KeyError, ValueError, ... alike
        raise BatchInputError(f"{str(path)!r} is not a readable XLSX workbook: {error}") from None
    try:
        values: Iterator[tuple[Any, ...]] = workbook.worksheets[0].iter_rows(values_only=True)
        header = [_text(cell) for cell in next(values, ())]
        rows: list[RawRow] = [
            (row, dict(zip(header, record, strict=False)))
            for row, record in enumerate(values, start=2)
            if any(_text(cell) for cell in record)
        ]
    finally:
        workbook.close()
    return [column for column in header if column], rows


def _decode(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise BatchInputError(f"{str(path)!r} is not UTF-8 text ({error})") from None
