"""What each background job does: ingest uploads, answer a question file, train an adapter.

Each function returns the job's work (a function of its :class:`JobContext`); the routes check
the request, stage its files and submit the work. The work reuses what the CLI runs:
:class:`~ingestion.pipeline.Ingestor`, :func:`~assistant.batch.runner.run_batch`,
:func:`~assistant.training.train_adapter`.
"""

from __future__ import annotations

import os
import shutil
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.api.answering import Answering
from assistant.api.jobs import JobCancelled, JobContext, Work
from assistant.core.errors import CollectionNotFoundError, LoragError
from assistant.core.registry import AdapterRecord
from assistant.runtime import BASE, Runtime
from assistant.training import FinetunePlan, run_dir_for, train_adapter

if TYPE_CHECKING:
    from assistant.batch.formats import Question
    from assistant.batch.runner import BatchProgress
    from assistant.core.types import Answer
    from finetune.trainer import StepReport
    from ingestion.pipeline import ChunkProgress, Ingestor, IngestReport

UPLOADS_DIR = "uploads"
INGEST_GROUP_FILES = 4
"""Files ingested together between two progress reports (and cancellation checks)."""


def clear_uploads(runtime: Runtime) -> None:
    """Remove the uploads an ingest job left when the server was killed (at start-up, when no
    job runs)."""
    shutil.rmtree(runtime.settings.data_dir / UPLOADS_DIR, ignore_errors=True)


def ingest_uploads(runtime: Runtime, collection: str, names: list[str]) -> Work:
    """Ingest the uploaded files ``names`` of the job's folder into ``collection``.

    Each file is moved to ``data_dir/uploads/<collection>/<name>`` for the ingest, so a document
    keeps one source (and id) across uploads, and a new upload of a name replaces it; once
    ingested, the file is removed from there and a copy kept with the originals
    (:class:`~assistant.sources.Originals`), so its citations open. Files that cannot be
    ingested are listed in the job's errors; the job fails when none could be.
    """

    def work(context: JobContext) -> dict[str, Any]:
        store = runtime.store
        if not store.has_collection(collection):
            raise CollectionNotFoundError(collection, store.list_collections())
        target = runtime.settings.data_dir / UPLOADS_DIR / collection
        target.mkdir(parents=True, exist_ok=True)
        ingestor = runtime.ingestor(collection)
        counts = {"added": 0, "unchanged": 0, "replaced": 0, "failed": 0, "chunks": 0}
        seconds = 0.0
        try:
            for start in range(0, len(names), INGEST_GROUP_FILES):
                context.check_cancelled()
                group = names[start : start + INGEST_GROUP_FILES]
                written = _chunk_progress(context, names, start)
                report = _ingest_group(runtime, ingestor, context.work_dir, target, group, written)
                for source, problem in report.failed.items():
                    context.error(Path(source).name, problem)
                counts["added"] += len(report.added)
                counts["unchanged"] += len(report.unchanged)
                counts["replaced"] += len(report.replaced)
                counts["failed"] += len(report.failed)
                counts["chunks"] += report.chunks_written
                seconds += report.seconds
                done = start + len(group)
                context.progress(done / len(names), f"{done} of {len(names)} files")
        finally:
            with suppress(OSError):
                target.rmdir()  # when no other upload is in flight there
        if counts["failed"] == len(names):
            raise LoragError(f"none of the {len(names)} files could be ingested (see errors)")
        return {**counts, "seconds": round(seconds, 3)}

    return work


def _chunk_progress(context: JobContext, names: list[str], start: int) -> ChunkProgress:
    """Reports each batch of chunks of the group of ``names`` from ``start``: a big file's
    ingest moves the job's progress as its chunks are written."""

    def written(source: str, stored: int, total: int) -> None:
        name = Path(source).name
        done = start + names[start:].index(name) + stored / total
        context.progress(done / len(names), f"{name}: {stored:,} of {total:,} chunks written")

    return written


def _ingest_group(
    runtime: Runtime,
    ingestor: Ingestor,
    staged: Path,
    target: Path,
    names: list[str],
    written: ChunkProgress,
) -> IngestReport:
    """Move ``names`` from ``staged`` to ``target``, ingest them there (each batch of chunks
    reported to ``written``), keep a copy of each one ingested, remove them."""
    paths = [target / name for name in names]
    try:
        for name, path in zip(names, paths, strict=True):
            os.replace(staged / name, path)
        report = ingestor.ingest(paths, on_chunks=written)
        for source in [*report.added, *report.replaced, *report.unchanged]:
            runtime.originals.keep(ingestor.collection, Path(source))
        return report
    finally:
        for path in paths:
            path.unlink(missing_ok=True)


def answer_file(
    answering: Answering,
    collection: str,
    adapter: AdapterRecord | None,
    questions: str,
    output: str,
    key_id: str,
) -> Work:
    """Answer the question file ``questions`` of the job's folder into ``output``, kept for
    download, with ``adapter`` (``None``: the base model, even on a bound collection); the rows
    that failed are the job's errors, and each answer gets its audit line (as ``key_id``'s)."""
    from assistant.batch.runner import run_batch

    def work(context: JobContext) -> dict[str, Any]:
        answering.attach(adapter, collection)

        def progress(state: BatchProgress) -> None:
            done = state.done / state.total if state.total else 1.0
            context.progress(done, f"{state.done} of {state.total} questions")

        def audited(_: Question, answer: Answer) -> None:
            answering.audit.answer(
                key_id=key_id,
                action="batch.answer",
                collection=collection,
                adapter=adapter.name if adapter else None,
                adapter_version=adapter.version if adapter else None,
                answer=answer,
                request_id=context.job_id,
            )

        summary = run_batch(
            answering.runtime,
            context.work_dir / questions,
            context.keep(output),
            collection=collection,
            adapter=adapter.ref if adapter else BASE,
            progress=progress,
            cancel=context.cancelled,
            on_answer=audited,
        )
        if summary.cancelled:
            raise JobCancelled
        for failure in summary.failures:
            context.error(f"row {failure.row}", failure.message)
        return {
            "rows": summary.rows,
            "answered": summary.answered,
            "abstained": summary.abstained,
            "failed": summary.failed,
            "seconds": round(summary.elapsed_s, 3),
            "adapter": summary.adapter,
            "download": f"/v1/batch/{context.job_id}/download",
        }

    return work


def train(
    runtime: Runtime, plan: FinetunePlan, dataset: str | None, eval_set: str | None = None
) -> Work:
    """Train ``plan`` (on the job folder's ``dataset`` file, when given; with its ``eval_set``
    question file as the collection's evaluation set, when given) as the next version of its
    name, gated where the plan says; losses and progress are reported per step, and a cancel
    stops it at the next step. A run that does not finish leaves no run folder behind and the
    registry untouched. The result carries the gate's report (``None``: not gated)."""

    def work(context: JobContext) -> dict[str, Any]:
        versions = [r.version for r in runtime.registry.list() if r.name == plan.name]
        run = replace(
            plan,
            version=max(versions) + 1 if versions else None,
            data=context.work_dir / dataset if dataset else None,
            eval_set=context.work_dir / eval_set if eval_set else None,
        )

        def progress(step: StepReport) -> None:
            context.loss(step.step, step.loss)
            context.progress(
                step.step / step.total_steps,
                f"step {step.step} of {step.total_steps}, loss {step.loss:.4f}",
            )
            context.check_cancelled()

        source = "dataset"
        if plan.from_collection:
            source = f"collection {plan.from_collection!r}"
        elif plan.from_feedback:
            source = f"feedback on collection {plan.from_feedback!r}"
        context.progress(0.0, f"preparing the training data from the {source}")
        try:
            trained = train_adapter(
                runtime, run, progress=progress, announce=lambda text: context.progress(0.0, text)
            )
        except BaseException:
            shutil.rmtree(run_dir_for(runtime, run.name, run.version), ignore_errors=True)
            raise
        return {
            "adapter": trained.record.ref,
            "status": trained.record.status,
            "metrics": trained.record.metrics,
            "gate": trained.gate.to_dict() if trained.gate else None,
        }

    return work
