"""Answer a question file into an answer file, in batches, resumably.

``run_batch`` reads the questions, skips those the output already holds (``resume``), and
answers the rest ``batch_size`` at a time with :meth:`QueryEngine.ask_batch` (one embedding
batch, one generation batch). Each batch's rows are written as soon as it is done, so a killed
run loses at most the batch in flight. A batch that raises is answered again one question at a
time, so one bad row fails alone. After each batch ``progress`` gets the counts so far, and
``cancel`` is asked whether to stop: a background worker can show progress and cancel a run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.batch.formats import Question, read_questions
from assistant.batch.output import answer_record, open_answers
from assistant.core.errors import CollectionNotFoundError, LoragError
from assistant.core.types import Answer
from assistant.runtime import BASE

if TYPE_CHECKING:
    from assistant.engine import QueryEngine
    from assistant.runtime import Runtime

DEFAULT_BATCH_SIZE = 16
"""Questions per generation pass. On 2 CPU cores (benchmarks/batch.py, quoref questions) batches
of 8, 16 and 32 answered 2.26x, 2.76x and 2.03x as many questions per minute as a loop of ``ask``:
past 16 the padding and the longest answer in each pass cost more than batching saves."""
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowFailure:
    """A row without an answer: unreadable in the file, or failed when answered."""

    row: int
    id: str | None
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


@dataclass(frozen=True)
class BatchProgress:
    """Counts after a batch: ``done`` of ``total`` rows this run were handled."""

    done: int
    total: int
    answered: int
    abstained: int
    failed: int
    elapsed_s: float


@dataclass
class BatchSummary:
    """What a run did. ``rows`` counts the file's rows, ``skipped`` those answered before."""

    rows: int
    adapter: str = BASE
    """What answered: ``NAME@VERSION``, an adapter folder, or ``base``."""
    skipped: int = 0
    answered: int = 0
    abstained: int = 0
    failures: list[RowFailure] = field(default_factory=list)
    elapsed_s: float = 0.0
    cancelled: bool = False

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def questions_per_min(self) -> float:
        """Questions answered (abstentions included) per minute of this run."""
        return 60 * (self.answered + self.abstained) / self.elapsed_s if self.elapsed_s else 0.0


def run_batch(
    runtime: Runtime,
    questions_path: Path,
    output_path: Path,
    collection: str | None = None,
    adapter: str | None = None,
    resume: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[BatchProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    on_answer: Callable[[Question, Answer], None] | None = None,
) -> BatchSummary:
    """Answer every question of ``questions_path`` into ``output_path`` (formats by suffix).

    Bad input (file, columns, an existing output without ``resume``), an unknown collection,
    adapter or reranker raise :class:`LoragError` before anything is answered; bad rows are
    reported in the summary's ``failures`` with their row numbers. ``adapter`` is as for
    :meth:`Runtime.adapter_for` (``"base"``: the base model even on a bound collection); every
    row names the adapter that answered. ``on_answer`` sees each answer once it is written.
    """
    started = time.perf_counter()
    source = read_questions(questions_path)
    summary = BatchSummary(
        rows=source.rows,
        failures=[RowFailure(p.row, None, p.message) for p in source.problems],
    )
    name = collection or runtime.settings.collection
    if not runtime.store.has_collection(name):
        raise CollectionNotFoundError(name, runtime.store.list_collections())
    runtime.check_reranker()
    choice = runtime.adapter_for(adapter, name)
    summary.adapter = choice.ref if choice else BASE
    adapter_key = runtime.use_adapter(adapter, name)
    with open_answers(output_path, resume) as sink:
        todo = [q for q in source.questions if q.id not in sink.done]
        summary.skipped = len(source.questions) - len(todo)
        for start in range(0, len(todo), batch_size):
            if cancel is not None and cancel():
                summary.cancelled = True
                break
            batch = todo[start : start + batch_size]
            results = _answer(runtime.engine, batch, name, adapter_key)
            answers = [(q, r) for q, r in zip(batch, results, strict=True) if isinstance(r, Answer)]
            sink.write([answer_record(q, answer, summary.adapter) for q, answer in answers])
            if on_answer is not None:
                for q, answer in answers:
                    on_answer(q, answer)
            for question, result in zip(batch, results, strict=True):
                if isinstance(result, str):
                    summary.failures.append(RowFailure(question.row, question.id, result))
            summary.abstained += sum(answer.abstained for _, answer in answers)
            summary.answered += sum(not answer.abstained for _, answer in answers)
            summary.elapsed_s = time.perf_counter() - started
            if progress is not None:
                progress(
                    BatchProgress(
                        done=start + len(batch),
                        total=len(todo),
                        answered=summary.answered,
                        abstained=summary.abstained,
                        failed=summary.failed,
                        elapsed_s=summary.elapsed_s,
                    )
                )
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _answer(
    engine: QueryEngine, batch: list[Question], collection: str, adapter: str | None
) -> list[Answer | str]:
    """The batch's answers; if the batch fails, each question's own (or its failure message)."""
    if len(batch) > 1:
        try:
            return [*engine.ask_batch([q.text for q in batch], collection, adapter)]
        except LoragError:
            raise
        except Exception as error:
            log.warning("a batch failed (%s); answering its questions one at a time", error)
    results: list[Answer | str] = []
    for question in batch:
        try:
            results.extend(engine.ask_batch([question.text], collection, adapter))
        except LoragError:
            raise
        except Exception as error:
            results.append(f"{type(error).__name__}: {error}")
    return results
