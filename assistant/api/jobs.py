"""Background jobs (ingest, fine-tuning, batch): a record each, run in order by one worker per kind.

A job's record (status, progress, message, errors, losses, result) is kept in memory and written
to ``root/records/<id>.json`` at every change, so it outlives a restart; a job the server
stopped before it ended is marked failed when the next server starts. A job's files live in
``root/work/<id>/``: they are staged in a temporary folder while the request is checked and
moved there only when the job is accepted, and they are removed when the job ends, except the
output a job keeps for download (:meth:`JobContext.keep`).

The work itself is a function of a :class:`JobContext`, through which it reports progress and
learns that it was cancelled (:meth:`JobContext.check_cancelled` raises :class:`JobCancelled`).
A queued job is cancelled at once, a running one at its next check.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, get_args

from assistant.api.metrics import Metrics
from assistant.api.schemas import JobKind, JobStatus
from assistant.core.errors import LoragError
from assistant.core.files import write_json

log = logging.getLogger("lorag.api.jobs")
FINISHED: frozenset[JobStatus] = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class Job:
    """A job's record; ``owner`` (the key id that started it) and ``output`` stay internal."""

    id: str
    kind: JobKind
    collection: str | None
    owner: str
    created_at: float
    status: JobStatus = "queued"
    progress: float = 0.0
    message: str = "waiting for the worker"
    started_at: float | None = None
    finished_at: float | None = None
    errors: tuple[dict[str, str], ...] = ()
    losses: tuple[dict[str, float], ...] = ()
    result: dict[str, Any] | None = None
    output: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def public(self) -> dict[str, Any]:
        """The record as the API shows it."""
        data = asdict(self)
        del data["owner"], data["output"]
        return data


class JobCancelled(Exception):
    """Raised inside a job's work when it was asked to stop."""


class JobContext:
    """What a running job's work sees: its folder, its cancel flag, ways to report progress."""

    def __init__(self, manager: JobManager, job_id: str, cancel: threading.Event) -> None:
        self._manager = manager
        self.job_id = job_id
        self._cancel = cancel

    @property
    def work_dir(self) -> Path:
        return self._manager.work_dir(self.job_id)

    def cancelled(self) -> bool:
        """Whether the job was asked to stop."""
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if the job was asked to stop."""
        if self._cancel.is_set():
            raise JobCancelled

    def progress(self, fraction: float, message: str | None = None) -> None:
        changes: dict[str, Any] = {"progress": round(min(max(fraction, 0.0), 1.0), 4)}
        if message is not None:
            changes["message"] = message
        self._manager.update(self.job_id, **changes)

    def loss(self, step: int, loss: float) -> None:
        job = self._manager.get(self.job_id)
        self._manager.update(self.job_id, losses=(*job.losses, {"step": step, "loss": loss}))

    def error(self, item: str, detail: str) -> None:
        job = self._manager.get(self.job_id)
        self._manager.update(self.job_id, errors=(*job.errors, {"item": item, "detail": detail}))

    def keep(self, name: str) -> Path:
        """Keep the file ``name`` of the work folder after the job (for download); its path."""
        self._manager.update(self.job_id, output=name)
        return self.work_dir / name


Work = Callable[[JobContext], dict[str, Any]]


class JobManager:
    """Holds the jobs' records and runs their work, one job at a time per kind."""

    def __init__(self, root: Path, metrics: Metrics) -> None:
        self.root = root
        self._metrics = metrics
        self._jobs: dict[str, Job] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.RLock()
        self._lanes = {
            kind: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lorag-{kind}")
            for kind in get_args(JobKind)
        }
        (root / "records").mkdir(parents=True, exist_ok=True)
        (root / "work").mkdir(parents=True, exist_ok=True)

    def recover(self) -> None:
        """Load the records of earlier runs; jobs they left unfinished are marked failed."""
        for staging in (self.root / "work").glob(".staging-*"):
            shutil.rmtree(staging, ignore_errors=True)
        for path in sorted((self.root / "records").glob("*.json")):
            try:
                data = json.loads(path.read_text())
                job = Job(
                    **{**data, "errors": tuple(data["errors"]), "losses": tuple(data["losses"])}
                )
            except (OSError, ValueError, TypeError, KeyError) as exc:
                log.warning("skipping unreadable job record %s: %s", path, exc)
                continue
            self._jobs[job.id] = job
            if not job.finished:
                self._finish(job.id, "failed", "interrupted: the server stopped before it ended")

    def work_dir(self, job_id: str) -> Path:
        return self.root / "work" / job_id

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A temporary folder for a job's files while its request is checked; it is removed
        unless :meth:`submit` adopted it."""
        folder = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root / "work"))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def submit(
        self,
        kind: JobKind,
        collection: str | None,
        owner: str,
        work: Work,
        files: Path | None = None,
    ) -> Job:
        """Queue ``work``; ``files`` (a :meth:`staging` folder) becomes the job's work folder."""
        job = Job(
            id=uuid.uuid4().hex,
            kind=kind,
            collection=collection,
            owner=owner,
            created_at=time.time(),
        )
        folder = self.work_dir(job.id)
        if files is not None:
            os.replace(files, folder)
        else:
            folder.mkdir()
        cancel = threading.Event()
        with self._lock:
            self._jobs[job.id] = job
            self._cancel[job.id] = cancel
            self._save(job)
            self._futures[job.id] = self._lanes[kind].submit(self._run, job.id, work, cancel)
        return job

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; ``KeyError`` if there is none."""
        with self._lock:
            return self._jobs[job_id]

    def list(self) -> list[Job]:
        """Every job, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: job.created_at, reverse=True)

    def cancel(self, job_id: str) -> Job:
        """Ask the job to stop: a queued one is cancelled now, a running one at its next check."""
        with self._lock:
            job = self._jobs[job_id]
            if job.finished:
                return job
            self._cancel[job_id].set()
            if self._futures[job_id].cancel():
                return self._finish(job_id, "cancelled", "cancelled before it started")
            return self.update(job_id, message="cancelling")

    def update(self, job_id: str, **changes: Any) -> Job:
        """Change a job's record and save it."""
        with self._lock:
            job = replace(self._jobs[job_id], **changes)
            self._jobs[job_id] = job
            self._save(job)
            return job

    def shutdown(self) -> None:
        """Stop: queued jobs are cancelled, running ones asked to stop and waited for."""
        with self._lock:
            for job_id in [job.id for job in self._jobs.values() if not job.finished]:
                self.cancel(job_id)
        for lane in self._lanes.values():
            lane.shutdown(wait=True, cancel_futures=True)

    def _run(self, job_id: str, work: Work, cancel: threading.Event) -> None:
        self.update(job_id, status="running", started_at=time.time(), message="running")
        context = JobContext(self, job_id, cancel)
        try:
            context.check_cancelled()
            result = work(context)
        except JobCancelled:
            self._finish(job_id, "cancelled", "cancelled")
        except LoragError as error:
            self._finish(job_id, "failed", str(error))
        except Exception as error:
            log.exception("job %s failed", job_id)
            self._finish(job_id, "failed", f"{type(error).__name__}: {error}")
        else:
            self._finish(job_id, "succeeded", "done", result=result, progress=1.0)

    def _finish(self, job_id: str, status: JobStatus, message: str, **changes: Any) -> Job:
        """Settle the job's work folder (a failed or cancelled job keeps nothing), then write
        its final record once: a client never sees a finished job whose output is not final."""
        output = changes.get("output", self.get(job_id).output)
        if output is None or status != "succeeded":
            shutil.rmtree(self.work_dir(job_id), ignore_errors=True)
            changes["output"] = None
        else:
            for path in self.work_dir(job_id).iterdir():
                if path.name != output:
                    _remove(path)
        with self._lock:
            job = self.update(
                job_id, status=status, message=message, finished_at=time.time(), **changes
            )
            self._cancel.pop(job_id, None)
            self._futures.pop(job_id, None)
        self._metrics.jobs.labels(job.kind, status).inc()
        return job

    def _save(self, job: Job) -> None:
        write_json(self.root / "records" / f"{job.id}.json", asdict(job), indent=None, default=str)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
