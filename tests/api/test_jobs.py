"""The job manager: records saved at every change and recovered after a restart, work folders
kept or removed as jobs end, cancellation of queued and running jobs, a clean shutdown."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.api.jobs import Job, JobContext, JobManager
from assistant.api.metrics import Metrics
from assistant.core.errors import LoragError


def wait(manager: JobManager, job_id: str) -> Job:
    deadline = time.monotonic() + 30
    while not manager.get(job_id).finished:
        assert time.monotonic() < deadline, manager.get(job_id)
        time.sleep(0.01)
    return manager.get(job_id)


def test_a_job_reports_progress_losses_errors_and_keeps_its_output(tmp_path: Path) -> None:
    manager = JobManager(tmp_path, Metrics())

    def work(context: JobContext) -> dict[str, Any]:
        context.progress(0.5, "half way")
        context.loss(1, 2.5)
        context.error("row 3", "no question")
        context.keep("answers.csv").write_text("id,answer\n")
        (context.work_dir / "scratch.txt").write_text("temporary")
        return {"rows": 1}

    with manager.staging() as staged:
        (staged / "questions.csv").write_text("id,question\n")
        job = manager.submit("batch", "kb", "admin", work, staged)
    done = wait(manager, job.id)
    assert done.status == "succeeded" and done.progress == 1.0 and done.result == {"rows": 1}
    assert done.losses == ({"step": 1, "loss": 2.5},)
    assert done.errors == ({"item": "row 3", "detail": "no question"},)
    assert sorted(p.name for p in manager.work_dir(job.id).iterdir()) == ["answers.csv"]
    saved = json.loads((tmp_path / "records" / f"{job.id}.json").read_text())
    assert saved["status"] == "succeeded" and saved["output"] == "answers.csv"
    assert "owner" not in done.public() and "output" not in done.public()
    manager.shutdown()


def test_failed_jobs_say_why_and_leave_no_files(tmp_path: Path) -> None:
    manager = JobManager(tmp_path, Metrics())

    def refused(context: JobContext) -> dict[str, Any]:
        context.keep("answers.csv").write_text("partial")
        raise LoragError("the file has no question column")

    def broken(context: JobContext) -> dict[str, Any]:
        raise ValueError("bug")

    first = wait(manager, manager.submit("batch", "kb", "admin", refused).id)
    second = wait(manager, manager.submit("batch", "kb", "admin", broken).id)
    assert (first.status, first.message) == ("failed", "the file has no question column")
    assert (second.status, second.message) == ("failed", "ValueError: bug")
    assert not manager.work_dir(first.id).exists() and first.output is None
    manager.shutdown()


def endless_job(started: threading.Event) -> Callable[[JobContext], dict[str, Any]]:
    """A job that sets ``started`` and then runs until it is cancelled."""

    def endless(context: JobContext) -> dict[str, Any]:
        started.set()
        while True:
            context.check_cancelled()
            time.sleep(0.01)

    return endless


def test_running_and_queued_jobs_are_cancelled(tmp_path: Path) -> None:
    manager = JobManager(tmp_path, Metrics())
    started = threading.Event()
    endless = endless_job(started)
    running = manager.submit("ingest", "kb", "admin", endless)
    queued = manager.submit("ingest", "kb", "admin", endless)
    assert started.wait(10)
    assert manager.cancel(queued.id).status == "cancelled"
    assert manager.cancel(running.id).message == "cancelling"
    assert wait(manager, running.id).status == "cancelled"
    assert not manager.work_dir(running.id).exists()
    assert not manager.work_dir(queued.id).exists()
    manager.shutdown()


def test_records_outlive_a_restart_and_unfinished_jobs_are_failed(tmp_path: Path) -> None:
    manager = JobManager(tmp_path, Metrics())
    gate = threading.Event()
    finished = wait(manager, manager.submit("batch", "kb", "admin", lambda c: {"rows": 0}).id)
    hanging = manager.submit("ingest", "kb", "admin", lambda c: {"ok": gate.wait()})
    with manager.staging():
        pass
    (tmp_path / "work" / ".staging-left-by-a-crash").mkdir()
    # Simulate a killed server: its records stay as they were on disk.
    restarted = JobManager(tmp_path, Metrics())
    restarted.recover()
    assert restarted.get(finished.id).status == "succeeded"
    interrupted = restarted.get(hanging.id)
    assert interrupted.status == "failed" and "server stopped" in interrupted.message
    assert not list((tmp_path / "work").glob(".staging-*"))
    gate.set()
    manager.shutdown()
    restarted.shutdown()


def test_shutdown_stops_what_is_running_and_cancels_what_waits(tmp_path: Path) -> None:
    manager = JobManager(tmp_path, Metrics())
    started = threading.Event()
    endless = endless_job(started)
    running = manager.submit("finetune", None, "admin", endless)
    queued = manager.submit("finetune", None, "admin", endless)
    assert started.wait(10)
    manager.shutdown()
    assert manager.get(running.id).status == "cancelled"
    assert manager.get(queued.id).status == "cancelled"
