"""Background jobs: list them, follow one (status, progress, losses, result), cancel one.

A key sees the jobs it started and those on collections it may read (a job on no collection,
such as fine-tuning on an uploaded dataset, needs the right on ``"*"``). Cancelling needs the
right the job needed to start (ingest: write, batch: read, fine-tuning: admin), or having
started it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from assistant.api.auth import Caller, Principal
from assistant.api.jobs import Job
from assistant.api.schemas import ERROR_RESPONSES, JobKind, JobOut
from assistant.api.services import Services, ServicesDep
from assistant.core.settings import Permission

router = APIRouter(tags=["jobs"], responses=ERROR_RESPONSES)

STARTING_RIGHT: dict[JobKind, Permission] = {
    "ingest": "write",
    "batch": "read",
    "finetune": "admin",
}


@router.get("/v1/jobs", response_model=list[JobOut])
def list_jobs(caller: Caller, services: ServicesDep) -> Any:
    """The jobs the key may see, newest first."""
    return [job.public() for job in services.jobs.list() if _visible(caller, job)]


@router.get("/v1/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: str, caller: Caller, services: ServicesDep) -> Any:
    """One job's status, progress, errors, losses and result."""
    return find_job(services, caller, job_id).public()


@router.post("/v1/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: str, caller: Caller, services: ServicesDep) -> Any:
    """Stop a job: a queued one at once, a running one at its next step (409 if it ended)."""
    job = find_job(services, caller, job_id)
    if job.owner != caller.key_id:
        caller.require(job.collection, STARTING_RIGHT[job.kind])
    if job.finished:
        raise HTTPException(409, f"job {job_id} has already {job.status}")
    cancelled = services.jobs.cancel(job_id)
    services.audit.change(key_id=caller.key_id, action="jobs.cancel", target={"job_id": job_id})
    return cancelled.public()


def find_job(services: Services, caller: Principal, job_id: str) -> Job:
    """The job ``job_id`` if the key may see it: 404 if there is none, 403 if it may not."""
    try:
        job = services.jobs.get(job_id)
    except KeyError:
        raise HTTPException(404, f"no job {job_id!r}") from None
    if not _visible(caller, job):
        where = f"collection {job.collection!r}" if job.collection else "every collection"
        raise HTTPException(403, f"key {caller.key_id!r} has no read right on {where}")
    return job


def _visible(caller: Principal, job: Job) -> bool:
    return job.owner == caller.key_id or caller.can(job.collection, "read")
