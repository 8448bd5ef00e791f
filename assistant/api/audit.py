"""The audit log: one JSON line per answer and per change, appended, never rewritten.

An answer's line holds the time, the key id, the collection, the adapter and its version, and the
sources given to the model (which of them the answer cites); the question's text only when
``api.log_question_text`` is set. Changes (uploads, deletions, promotions, jobs started or
cancelled) get a line with their action and target. Each line goes out in one ``write`` on a
file opened for appending, so concurrent lines never interleave.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.core.settings import Settings
from assistant.core.types import Answer

AUDIT_FILE = "audit.jsonl"


def audit_path(settings: Settings) -> Path:
    """Where the audit log is: ``api.audit_log``, else ``data_dir/audit.jsonl``."""
    return settings.api.audit_log or settings.data_dir / AUDIT_FILE


class AuditLog:
    """Appends audit records to a JSONL file."""

    def __init__(self, path: Path, *, question_text: bool) -> None:
        self.path = path
        self.question_text = question_text
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def answer(
        self,
        *,
        key_id: str,
        action: str,
        collection: str,
        adapter: str | None,
        adapter_version: int | None,
        answer: Answer,
        request_id: str | None,
    ) -> None:
        """Record an answer: who asked, where, with which adapter, from which sources."""
        cited = {citation.n for citation in answer.citations}
        record: dict[str, Any] = {
            "action": action,
            "key_id": key_id,
            "request_id": request_id,
            "collection": collection,
            "adapter": adapter,
            "adapter_version": adapter_version,
            "abstained": answer.abstained,
            "sources": [
                {
                    "n": source.n,
                    "source": source.source,
                    "page": source.page,
                    "chunk_id": source.chunk_id,
                    "cited": source.n in cited,
                }
                for source in answer.sources
            ],
        }
        if self.question_text:
            record["question"] = answer.question
        self._append(record)

    def change(self, *, key_id: str, action: str, target: dict[str, Any]) -> None:
        """Record a change: its action (``documents.upload``, ...) and what it touched."""
        self._append({"action": action, "key_id": key_id, **target})

    def _append(self, record: dict[str, Any]) -> None:
        stamped = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **record}
        line = (json.dumps(stamped, ensure_ascii=False, default=str) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
