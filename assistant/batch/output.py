"""Answer files, written row by row so that a killed run loses at most the rows in flight.

The format follows the output's suffix. CSV and JSONL rows are appended, flushed and fsynced
one at a time. An XLSX workbook cannot be appended safely, so its rows go to a JSONL journal
beside it (``answers.xlsx.journal.jsonl``, kept as the machine-readable copy) and the workbook
is rewritten from the journal after every batch: written to a temporary file, then renamed over
the old one, so it is always whole.

On resume, the ids already in the file (the journal for XLSX) are skipped; a last row cut short
by a crash is dropped from the file before new rows are appended. Without resume an existing
file is never overwritten.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from assistant.batch.formats import BatchInputError, Question, check_suffix
from assistant.core.types import Answer

FIELDS = (
    "id",
    "row",
    "question",
    "answer",
    "adapter",
    "citations",
    "retrieval_score",
    "abstained",
    "abstain_reason",
    "latency_s",
)
JOURNAL_SUFFIX = ".journal.jsonl"
Record = dict[str, Any]


def answer_record(question: Question, answer: Answer, adapter: str) -> Record:
    """One output row: the answer, who wrote it (``adapter``: ``NAME@VERSION``, a folder, or
    ``base``), where it comes from, and how sure retrieval was."""
    return {
        "id": question.id,
        "row": question.row,
        "question": question.text,
        "answer": answer.text,
        "adapter": adapter,
        "citations": [
            {"n": c.n, "source": c.source, "page": c.page, "heading": c.heading}
            for c in answer.citations
        ],
        "retrieval_score": (
            round(max(s.similarity for s in answer.sources), 4) if answer.sources else None
        ),
        "abstained": answer.abstained,
        "abstain_reason": answer.abstain_reason,
        "latency_s": round(answer.timings.get("total_s", 0.0), 3),
    }


def flat(record: Record) -> list[Any]:
    """A record as spreadsheet cells: citations as ``[n] source, page p, heading; ...``."""
    citations = "; ".join(
        f"[{c['n']}] {c['source']}"
        + (f", page {c['page']}" if c["page"] is not None else "")
        + (f", {c['heading']}" if c["heading"] else "")
        for c in record["citations"]
    )
    return [citations if field == "citations" else record[field] for field in FIELDS]


class AnswerSink(Protocol):
    """Where answer records go; ``done`` holds the ids the file already had (resume)."""

    done: set[str]

    def write(self, records: Sequence[Record]) -> None: ...

    def close(self) -> None: ...


@contextmanager
def open_answers(path: Path, resume: bool) -> Iterator[AnswerSink]:
    """The sink for ``path``'s format; with ``resume``, continuing what it already holds."""
    suffix = check_suffix(path)
    journal = journal_path(path)
    if not resume and (path.exists() or (suffix == ".xlsx" and journal.exists())):
        raise BatchInputError(
            f"{str(path)!r} already exists: pass --resume to continue it, or remove it"
        )
    if resume and suffix == ".xlsx" and path.exists() and not journal.exists():
        raise BatchInputError(
            f"cannot resume {str(path)!r}: its journal {str(journal)!r} is missing"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    sink: AnswerSink
    if suffix == ".jsonl":
        sink = JsonlSink(path)
    elif suffix == ".csv":
        sink = CsvSink(path)
    else:
        sink = XlsxSink(path)
    try:
        yield sink
    finally:
        sink.close()


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + JOURNAL_SUFFIX)


def read_answers(path: Path) -> list[Record]:
    """The complete records of an answer file (for XLSX, of its journal), in order."""
    suffix = check_suffix(path)
    if suffix == ".csv":
        return [dict(zip(FIELDS, row, strict=True)) for row in _complete_csv(path)[0]]
    return _complete_jsonl(journal_path(path) if suffix == ".xlsx" else path)[0]


class JsonlSink:
    """Appends one JSON line per record."""

    def __init__(self, path: Path) -> None:
        records, end = _complete_jsonl(path)
        self.records = records
        self.done = {str(record["id"]) for record in records}
        self._file = _append_from(path, end)

    def write(self, records: Sequence[Record]) -> None:
        for record in records:
            _durable_write(self._file, json.dumps(record, ensure_ascii=False) + "\n")
        self.records.extend(records)

    def close(self) -> None:
        self._file.close()


class CsvSink:
    """Appends one CSV record per answer, after a header when the file is new."""

    def __init__(self, path: Path) -> None:
        rows, end = _complete_csv(path)
        self.done = {row[0] for row in rows}
        self._file = _append_from(path, end)
        if not end:
            _durable_write(self._file, _csv_line(list(FIELDS)))

    def write(self, records: Sequence[Record]) -> None:
        for record in records:
            cells = flat(record)
            cells[FIELDS.index("abstained")] = str(record["abstained"]).lower()
            _durable_write(self._file, _csv_line(["" if c is None else c for c in cells]))

    def close(self) -> None:
        self._file.close()


class XlsxSink:
    """Appends to the journal, and rewrites the workbook from it after each write."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._journal = JsonlSink(journal_path(path))
        self.done = self._journal.done

    def write(self, records: Sequence[Record]) -> None:
        self._journal.write(records)
        self._rewrite()

    def close(self) -> None:
        self._journal.close()
        self._rewrite()

    def _rewrite(self) -> None:
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("answers")
        sheet.append(list(FIELDS))
        for record in self._journal.records:
            sheet.append(flat(record))
        staging = self._path.with_name(f".{self._path.name}.tmp")
        workbook.save(staging)
        with staging.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(staging, self._path)


# --------------------------------------------------------------------------- crash recovery


def _complete_jsonl(path: Path) -> tuple[list[Record], int]:
    """The records of the whole lines of ``path``, and the byte offset where they end.

    Only the last line can be cut short by a crash; a bad line before it is an error.
    """
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    records: list[Record] = []
    end = 0
    lines = data.split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):  # the part after the last \n is cut
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "id" not in record:
                raise ValueError("not an answer record")
        except ValueError as error:
            if number < len(lines) - 1:
                raise BatchInputError(
                    f"cannot resume {str(path)!r}: line {number} is not an answer record "
                    f"({error}); fix or remove that line"
                ) from None
            break
        records.append(record)
        end += len(line) + 1
    return records, end


def _complete_csv(path: Path) -> tuple[list[list[str]], int]:
    """The whole records of an answer CSV after its header, and the byte offset where they end.

    A record is whole when the reader closed it at the end of a line with all its fields; what
    follows the last whole record was cut short by a crash.
    """
    data = path.read_bytes() if path.exists() else b""
    header = _csv_line(list(FIELDS)).encode()
    if not data.startswith(header):
        if header.startswith(data):  # nothing, or a header cut short
            return [], 0
        raise BatchInputError(
            f"cannot resume {str(path)!r}: its columns are not those of an answer file "
            f"({', '.join(FIELDS)})"
        )
    line_ends = [len(header)]

    def lines() -> Iterator[str]:
        for line in data[len(header) :].splitlines(keepends=True):
            line_ends.append(line_ends[-1] + len(line))
            yield line.decode("utf-8", errors="replace")

    records: list[list[str]] = []
    end = len(header)
    try:
        for record in csv.reader(lines()):
            at = line_ends[-1]
            if data[at - 1 : at] != b"\n" or len(record) != len(FIELDS):
                break
            records.append(record)
            end = at
    except csv.Error:
        pass  # a quoted field cut short
    return records, end


def _append_from(path: Path, end: int) -> io.TextIOWrapper:
    """``path`` opened for appending after dropping everything past byte ``end``."""
    if path.exists():
        with path.open("r+b") as handle:
            handle.truncate(end)
    return path.open("a", encoding="utf-8", newline="")


def _csv_line(cells: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


def _durable_write(handle: io.TextIOWrapper, text: str) -> None:
    handle.write(text)
    handle.flush()
    os.fsync(handle.fileno())
