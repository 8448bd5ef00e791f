"""Training rows from feedback: what people said about answers, as lorag ``rag`` records.

For each answer from the collection, its last rating (:meth:`FeedbackLog.latest`) decides the
target the adapter should learn to give on the same question and the same sources:

- a correction (with either rating): the correction;
- thumbs up: the answer as given (the template's abstain answer, for an abstention);
- thumbs down without a correction: the abstain answer (it should not have said that); on an
  abstention there is nothing to learn from it, and it is skipped.

The sources are read again from the store by chunk id (feedback keeps their ids, not their
text), numbered as the answer saw them, and formatted as :mod:`finetune.synth` formats RAFT
sources; an answer whose sources are no longer all in the collection (their document changed
or went) is skipped. Each row names its documents (``doc_ids``), so an erasure finds it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.core.errors import LoragError
from assistant.core.files import write_jsonl
from assistant.core.prompt import DEFAULT_TEMPLATE
from assistant.core.types import Chunk, Hit
from assistant.feedback import Feedback, FeedbackLog

if TYPE_CHECKING:
    from assistant.core.protocols import VectorStore


@dataclass
class FeedbackDataset:
    """What :func:`build_feedback_dataset` wrote: rows by kind, and the answers it skipped."""

    out_path: Path
    rows: int
    targets: dict[str, int]
    """Rows by target: ``correction``, ``approved`` (thumbs up), ``abstain`` (thumbs down)."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Rated answers not made into rows: ``sources_changed``, ``nothing_to_learn``."""


def build_feedback_dataset(
    store: VectorStore, log: FeedbackLog, collection: str, out_path: Path
) -> FeedbackDataset:
    """Write the training rows the feedback on ``collection``'s answers makes to ``out_path``
    (atomically); :class:`LoragError` when it makes none, saying why."""
    rated = log.latest(collection)
    chunks = _ChunkLookup(store, collection)
    targets: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    records: list[dict[str, Any]] = []
    for feedback in rated:
        target = _target(feedback)
        if target is None:
            skipped["nothing_to_learn"] += 1
            continue
        sources = [chunks.get(source.doc_id, source.chunk_id) for source in feedback.sources]
        if any(chunk is None for chunk in sources):
            skipped["sources_changed"] += 1
            continue
        kind, answer = target
        targets[kind] += 1
        records.append(_record(feedback, [c for c in sources if c is not None], answer))
    if not records:
        reasons = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in sorted(skipped.items()))
        raise LoragError(
            f"no feedback on collection {collection!r} makes a training row "
            f"({len(rated)} rated answers{': ' + reasons if reasons else ''}); rate answers "
            "first (thumbs in the UI, POST /v1/feedback, or /up, /down in `lorag chat`)"
        )
    write_jsonl(out_path, records)
    return FeedbackDataset(
        out_path, len(records), dict(sorted(targets.items())), dict(sorted(skipped.items()))
    )


def _target(feedback: Feedback) -> tuple[str, str] | None:
    """The kind of row and the answer to learn (``None``: the rating teaches nothing)."""
    abstain = DEFAULT_TEMPLATE.abstain_answer
    if feedback.correction:
        return "correction", feedback.correction
    if feedback.rating == "up":
        return "approved", abstain if feedback.abstained else feedback.answer
    return None if feedback.abstained else ("abstain", abstain)


def _record(feedback: Feedback, chunks: list[Chunk], answer: str) -> dict[str, Any]:
    ordered = sorted(zip(feedback.sources, chunks, strict=True), key=lambda pair: pair[0].n)
    return {
        "question": feedback.query or feedback.question,
        "sources": [
            DEFAULT_TEMPLATE.format_source(n, Hit(chunk=chunk, score=0.0, similarity=0.0))
            for n, (_, chunk) in enumerate(ordered, start=1)
        ],
        "answer": answer,
        "chunk_ids": [chunk.id for _, chunk in ordered],
        "doc_ids": [chunk.doc_id for _, chunk in ordered],
        "origin": "feedback",
        "feedback_id": feedback.feedback_id,
    }


class _ChunkLookup:
    """A collection's chunks by id, read one document at a time as they are asked for."""

    def __init__(self, store: VectorStore, collection: str) -> None:
        self.store = store
        self.collection = collection
        self._documents: dict[str, dict[str, Chunk]] = {}

    def get(self, doc_id: str, chunk_id: str) -> Chunk | None:
        if doc_id not in self._documents:
            found = self.store.chunks(self.collection, doc_id=doc_id)
            self._documents[doc_id] = {chunk.id: chunk for chunk in found}
        return self._documents[doc_id].get(chunk_id)
