"""Training rows and the documents they came from.

A JSONL training dataset's rows may name the documents whose text they hold in ``doc_ids``
(RAFT rows from :mod:`finetune.synth` and feedback rows from :mod:`assistant.feedback_dataset`
do: the oracle's and the distractors' documents, or the answer's sources). That list is what
lets an erasure find the rows of a document: :func:`row_doc_ids` reads them, and
:func:`drop_rows_of` rewrites a dataset without them (atomically: the old file or the new one,
never half). Rows without ``doc_ids`` (alpaca, chat, prompt/completion) came from no document
lorag knows of and are kept.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from assistant.core.files import write_text_atomic

DOC_IDS = "doc_ids"
"""The field of a training row that lists the documents its text came from."""


def doc_ids_of(row: Any) -> set[str]:
    """The documents one parsed row names (none for a row that names none, or no object)."""
    found = row.get(DOC_IDS) if isinstance(row, dict) else None
    return {str(doc) for doc in found} if isinstance(found, list) else set()


def row_doc_ids(path: Path) -> list[str]:
    """Every document the rows of the JSONL dataset ``path`` name, sorted."""
    return sorted({doc for _, row in _rows(path) for doc in doc_ids_of(row)})


def drop_rows_of(path: Path, doc_ids: Collection[str]) -> int:
    """Rewrite ``path`` without the rows that name one of ``doc_ids``; how many went (the file
    is left untouched when none does, or when there is no file)."""
    if not path.is_file():
        return 0
    wanted = set(doc_ids)
    kept: list[str] = []
    dropped = 0
    for line, row in _rows(path):
        if doc_ids_of(row) & wanted:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        write_text_atomic(path, "".join(f"{line}\n" for line in kept))
    return dropped


def count_rows(path: Path) -> int:
    """The rows (non-blank lines) of a JSONL dataset."""
    return sum(1 for _ in _rows(path)) if path.is_file() else 0


def _rows(path: Path) -> list[tuple[str, Any]]:
    """The non-blank lines of ``path`` with their parsed JSON (``None`` for a line that is not
    JSON: it names no document and is kept as it is)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append((line, json.loads(line)))
        except ValueError:
            rows.append((line, None))
    return rows
