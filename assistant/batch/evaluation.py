"""Compare configurations on a question file with expected answers and/or sources.

A configuration is a model (the base, or an adapter) and a way to find sources: hybrid
retrieval, dense retrieval, or none (the question alone). Retrieval runs once per kind for all
questions (``max(top_k, 10)`` chunks, enough for nDCG@10; reordered by the cross-encoder when
``retrieval.reranker`` is set) and is shared by every model; the first ``top_k`` chunks are the
sources each model answers from, in generation batches.

Scores (see :mod:`assistant.batch.metrics`), each a mean over the rows it applies to:

- ``recall_at_k``, ``mrr``, ``ndcg_at_10``: rows with an expected source (with retrieval);
- ``exact_match``, ``f1``, ``contains`` (the expected answer appears whole in the answer):
  answerable rows with an expected answer (an abstention scores 0; ``[n]`` markers are removed
  before scoring);
- ``source_cited``: answerable rows with an expected source (with retrieval): the answer cites
  a chunk of it (an abstention scores 0);
- ``citation_precision``: answerable rows with an expected answer whose answer cites something;
- ``abstention_accuracy``: all rows, when some are marked unanswerable;
- ``unanswerable_abstained``, ``false_abstention``: the share of unanswerable rows abstained
  on, and of answerable rows abstained on (when the file marks some rows unanswerable);
- ``abstain_rate``: all rows.

With retrieval, the report also lists the expected sources that match no document of the
collection at all (``unmatched_sources``): a typo there would otherwise read as recall 0.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Literal

from assistant.batch.formats import BatchInputError, Question, QuestionFile
from assistant.batch.metrics import (
    abstention_accuracy,
    answer_contains,
    citation_precision,
    cites_expected_source,
    exact_match,
    mrr,
    ndcg_at_10,
    recall_at_k,
    source_matches,
    token_f1,
)
from assistant.core.errors import CollectionNotFoundError
from assistant.core.types import Answer, Hit

if TYPE_CHECKING:
    from assistant.runtime import Runtime

Retrieval = Literal["hybrid", "dense", "none"]
METRICS = (
    "recall_at_k",
    "mrr",
    "ndcg_at_10",
    "exact_match",
    "f1",
    "contains",
    "source_cited",
    "citation_precision",
    "abstention_accuracy",
    "unanswerable_abstained",
    "false_abstention",
    "abstain_rate",
)
_WHOLE_ROWS = ("abstention_accuracy", "unanswerable_abstained", "false_abstention", "abstain_rate")
RANKED = 10  # chunks retrieved for the retrieval scores (nDCG@10)
_MARKERS = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")


@dataclass(frozen=True)
class Configuration:
    """A model (``adapter``: as for :meth:`Runtime.adapter_for`; ``None`` or ``"base"``: the
    base) and a way to find sources."""

    adapter: str | None = None
    retrieval: Retrieval = "hybrid"

    @property
    def name(self) -> str:
        model = PurePath(self.adapter).name if self.adapter else "base"
        return f"{model}/{self.retrieval}"


def configurations(
    adapters: Sequence[str] = (), dense: bool = False, no_retrieval: bool = False
) -> list[Configuration]:
    """The base and each adapter, each with hybrid retrieval and, if asked, dense and none."""
    kinds: list[Retrieval] = ["hybrid"]
    kinds += ["dense"] if dense else []
    kinds += ["none"] if no_retrieval else []
    return [Configuration(adapter, kind) for adapter in [None, *adapters] for kind in kinds]


@dataclass(frozen=True)
class RowResult:
    """One question's answer under one configuration, with what it is scored against."""

    id: str
    question: str
    answer: str
    abstained: bool
    retrieved: list[str]
    cited_texts: list[str]
    cited_sources: list[str]
    expected_answers: tuple[str, ...]
    expected_sources: tuple[str, ...]
    unanswerable: bool
    abstain_reason: str | None = None


@dataclass(frozen=True)
class ConfigResult:
    configuration: Configuration
    metrics: dict[str, float | None]
    questions_per_min: float
    rows: list[RowResult]


@dataclass(frozen=True)
class EvalReport:
    """The scores of each configuration; ``unmatched_sources``: the expected sources (each once,
    in file order) that match no document of ``collection`` (empty without retrieval)."""

    questions: str
    collection: str
    top_k: int
    results: list[ConfigResult]
    unmatched_sources: tuple[str, ...] = ()
    reranker: str | None = None
    """The cross-encoder that reordered the retrieved chunks (``None``: none did)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "questions": self.questions,
            "collection": self.collection,
            "top_k": self.top_k,
            "reranker": self.reranker,
            "rows": len(self.results[0].rows) if self.results else 0,
            "unmatched_sources": list(self.unmatched_sources),
            "configurations": [
                {
                    "name": result.configuration.name,
                    "adapter": result.configuration.adapter,
                    "retrieval": result.configuration.retrieval,
                    "metrics": result.metrics,
                    "questions_per_min": result.questions_per_min,
                    "rows": [
                        {
                            **{k: v for k, v in asdict(row).items() if k != "cited_texts"},
                            "scores": row_scores(
                                row, self.top_k, result.configuration.retrieval != "none"
                            ),
                        }
                        for row in result.rows
                    ],
                }
                for result in self.results
            ],
        }


def evaluate(
    runtime: Runtime,
    source: QuestionFile,
    configurations: Sequence[Configuration],
    collection: str | None = None,
    top_k: int | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Answer the first ``limit`` questions of ``source`` under each configuration and score them.

    Each configuration is scored once, under the exact model that answers it (see
    :func:`exact`), which the report names. ``progress(done, total)`` is called after each
    generation batch.
    """
    if not source.fields & {"expected_answers", "expected_sources", "unanswerable"}:
        raise BatchInputError(
            f"nothing to evaluate in {str(source.path)!r}: it has no expected answer, expected "
            f"source or unanswerable column (columns: {', '.join(source.columns)})"
        )
    questions = source.questions[:limit]
    texts = [question.text for question in questions]
    k = top_k or runtime.settings.retrieval.top_k
    name = collection or runtime.settings.collection
    retrieving = any(c.retrieval != "none" for c in configurations)
    if retrieving and not runtime.store.has_collection(name):
        raise CollectionNotFoundError(name, runtime.store.list_collections())
    if retrieving:  # a wrong reranker fails before any model loads
        runtime.check_reranker()
    unmatched = (
        unmatched_sources(
            [e for question in questions for e in question.expected_sources],
            [document.source for document in runtime.store.documents(name)],
        )
        if retrieving
        else ()
    )
    # an unknown adapter fails here, before any model loads
    scored = list(dict.fromkeys(exact(runtime, c) for c in configurations))
    engine = runtime.engine
    retrieved: dict[Retrieval, list[list[Hit]]] = {}
    total, done = len(texts) * len(scored), 0
    results: list[ConfigResult] = []
    for configuration in scored:
        adapter_key = runtime.use_adapter(configuration.adapter) if configuration.adapter else None
        kind = configuration.retrieval
        if kind != "none" and kind not in retrieved:
            retrieved[kind] = engine.retrieve_batch(texts, name, max(k, RANKED), kind)
        ranked = retrieved.get(kind)
        started = time.perf_counter()
        answers: list[Answer] = []
        for start in range(0, len(texts), batch_size):
            hits = None if ranked is None else [h[:k] for h in ranked[start : start + batch_size]]
            answers += engine.answer_batch(texts[start : start + batch_size], hits, adapter_key)
            done += len(texts[start : start + batch_size])
            if progress is not None:
                progress(done, total)
        elapsed = time.perf_counter() - started
        rows = [
            _row(question, answer, ranked[i] if ranked is not None else [], k)
            for i, (question, answer) in enumerate(zip(questions, answers, strict=True))
        ]
        results.append(
            ConfigResult(
                configuration=configuration,
                metrics=score(rows, k, with_retrieval=ranked is not None),
                questions_per_min=60 * len(rows) / elapsed if elapsed else 0.0,
                rows=rows,
            )
        )
    reranker = runtime.settings.retrieval.reranker or None
    return EvalReport(str(source.path), name, k, results, unmatched, reranker)


def exact(runtime: Runtime, configuration: Configuration) -> Configuration:
    """``configuration`` naming the model that answers exactly: ``NAME`` becomes the
    ``NAME@VERSION`` it is now, a folder its full path, and ``"base"`` the base (``None``).

    A collection's bound adapter plays no part: a configuration without an adapter is the base.
    """
    choice = runtime.adapter_for(configuration.adapter) if configuration.adapter else None
    return replace(configuration, adapter=choice.ref if choice else None)


def unmatched_sources(expected: Sequence[str], stored: Sequence[str]) -> tuple[str, ...]:
    """The ``expected`` sources (each once, in order) that match none of the ``stored`` ones."""
    by_name: dict[str, list[str]] = {}  # a match always has the expected source's file name
    for source in stored:
        by_name.setdefault(PurePath(source).name, []).append(source)
    return tuple(
        wanted
        for wanted in dict.fromkeys(expected)
        if not any(source_matches(s, wanted) for s in by_name.get(PurePath(wanted).name, []))
    )


def score(rows: Sequence[RowResult], k: int, with_retrieval: bool) -> dict[str, float | None]:
    """Each metric's mean over the rows it applies to (``None`` where none does)."""
    per_row = [row_scores(row, k, with_retrieval) for row in rows]
    metrics = {
        metric: _mean(scores[metric] for scores in per_row)
        for metric in METRICS
        if metric not in _WHOLE_ROWS
    }
    marked = any(row.unanswerable for row in rows)
    metrics["abstention_accuracy"] = (
        abstention_accuracy([r.abstained for r in rows], [r.unanswerable for r in rows])
        if marked
        else None
    )
    metrics["unanswerable_abstained"] = (
        _mean(float(row.abstained) for row in rows if row.unanswerable) if marked else None
    )
    metrics["false_abstention"] = (
        _mean(float(row.abstained) for row in rows if not row.unanswerable) if marked else None
    )
    metrics["abstain_rate"] = _mean(float(row.abstained) for row in rows)
    return {metric: metrics[metric] for metric in METRICS}


def row_scores(row: RowResult, k: int, with_retrieval: bool) -> dict[str, float | None]:
    """A row's retrieval, answer and citation scores (``None`` where they do not apply)."""
    sourced = with_retrieval and bool(row.expected_sources) and not row.unanswerable
    answerable = bool(row.expected_answers) and not row.unanswerable
    prediction = "" if row.abstained else _MARKERS.sub(" ", row.answer)
    expected, answers = row.expected_sources, row.expected_answers
    return {
        "recall_at_k": recall_at_k(row.retrieved, expected, k) if sourced else None,
        "mrr": mrr(row.retrieved, expected) if sourced else None,
        "ndcg_at_10": ndcg_at_10(row.retrieved, expected) if sourced else None,
        "exact_match": exact_match(prediction, answers) if answerable else None,
        "f1": token_f1(prediction, answers) if answerable else None,
        "contains": answer_contains(prediction, answers) if answerable else None,
        "source_cited": (
            cites_expected_source([] if row.abstained else row.cited_sources, expected)
            if sourced
            else None
        ),
        "citation_precision": citation_precision(row.cited_texts, answers) if answerable else None,
    }


def _row(question: Question, answer: Answer, ranked: list[Hit], k: int) -> RowResult:
    texts = {hit.chunk.id: hit.chunk.text for hit in ranked[:k]}
    return RowResult(
        id=question.id,
        question=question.text,
        answer=answer.text,
        abstained=answer.abstained,
        retrieved=[hit.chunk.source for hit in ranked],
        cited_texts=[texts[citation.chunk_id] for citation in answer.citations],
        cited_sources=[citation.source for citation in answer.citations],
        expected_answers=question.expected_answers,
        expected_sources=question.expected_sources,
        unanswerable=question.unanswerable,
        abstain_reason=answer.abstain_reason,
    )


def _mean(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None
