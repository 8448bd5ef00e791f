"""Feedback on answers: a thumbs up or down, and optionally the answer that should have been
given, kept with what was asked, the sources the answer was given and the adapter that wrote it.

The log is ``data_dir/feedback.jsonl``, one :class:`Feedback` per line, appended (a rating given
again to the same answer is a new line; the last one counts). It is rewritten only by an
erasure, which removes the feedback on answers that rested on an erased document (their text and
the correction may hold its content). A lock file beside it keeps appends and that rewrite from
crossing, in one process or several. It holds the sources' ids, not their text:
:mod:`assistant.feedback_dataset` reads the text from the store when it makes training rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from filelock import FileLock

from assistant.core.files import write_text_atomic
from assistant.core.settings import Settings
from assistant.core.types import Answer
from ingestion.chunking import document_id

FEEDBACK_FILE = "feedback.jsonl"
Rating = Literal["up", "down"]
MAX_CORRECTION_CHARS = 4000


@dataclass(frozen=True)
class RatedSource:
    """One passage the rated answer was given: its number in the prompt, and where it is."""

    n: int
    doc_id: str
    chunk_id: str
    source: str


@dataclass(frozen=True)
class Feedback:
    """One rating of one answer (``answer_id``: the API's request id, the id of the answer's
    audit line; the CLI's own id for a ``lorag chat`` answer)."""

    feedback_id: str
    answer_id: str
    given_at: str
    key_id: str
    rating: Rating
    correction: str | None
    question: str
    query: str | None
    """The standalone question a follow-up was rewritten to and answered as."""
    answer: str
    abstained: bool
    collection: str
    adapter: str | None
    """``NAME@VERSION`` (or the folder) of the adapter that answered; ``None``: the base model."""
    sources: tuple[RatedSource, ...]

    @classmethod
    def of_answer(
        cls,
        answer: Answer,
        *,
        answer_id: str,
        key_id: str,
        rating: Rating,
        correction: str | None,
        collection: str,
        adapter: str | None,
    ) -> Feedback:
        """The feedback ``rating`` (with ``correction``, blank = none) on ``answer``."""
        return cls(
            feedback_id=uuid.uuid4().hex[:16],
            answer_id=answer_id,
            given_at=datetime.now(UTC).isoformat(timespec="seconds"),
            key_id=key_id,
            rating=rating,
            correction=(correction or "").strip() or None,
            question=answer.question,
            query=answer.query,
            answer=answer.text,
            abstained=answer.abstained,
            collection=collection,
            adapter=adapter,
            sources=tuple(
                RatedSource(s.n, document_id(s.source), s.chunk_id, s.source)
                for s in answer.sources
            ),
        )

    @property
    def doc_ids(self) -> set[str]:
        """The documents the rated answer rested on."""
        return {source.doc_id for source in self.sources}

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Feedback:
        data = json.loads(line)
        data["sources"] = tuple(RatedSource(**source) for source in data["sources"])
        return cls(**data)


class FeedbackLog:
    """The feedback JSONL file at ``path``: append, read, and erase documents from it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(path.with_name(f".{path.name}.lock"))

    @classmethod
    def for_settings(cls, settings: Settings) -> FeedbackLog:
        """The log in ``settings.data_dir``."""
        return cls(settings.data_dir / FEEDBACK_FILE)

    def append(self, feedback: Feedback) -> None:
        """Add one rating (one whole line)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(feedback.to_json() + "\n")

    def read(self) -> list[Feedback]:
        """Every rating, oldest first."""
        if not self.path.is_file():
            return []
        with self._lock:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        return [Feedback.from_json(line) for line in lines if line.strip()]

    def latest(self, collection: str) -> list[Feedback]:
        """The last rating of each answer from ``collection``, in the order first rated."""
        found: dict[str, Feedback] = {}
        for feedback in self.read():
            if feedback.collection == collection:
                found[feedback.answer_id] = feedback
        return list(found.values())

    def drop_documents(self, doc_ids: Collection[str]) -> int:
        """Remove the feedback on answers that rested on one of ``doc_ids``; how many went."""
        if not self.path.is_file():
            return 0
        wanted = set(doc_ids)
        with self._lock:
            lines = [line for line in self.path.read_text("utf-8").splitlines() if line.strip()]
            kept = [line for line in lines if not Feedback.from_json(line).doc_ids & wanted]
            if len(kept) < len(lines):
                write_text_atomic(self.path, "".join(f"{line}\n" for line in kept))
        return len(lines) - len(kept)
