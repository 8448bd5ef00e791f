"""``POST /v1/batch``: answer a question file in the background; then download the answers.

The file (CSV, JSONL or XLSX with a ``question`` column, as ``lorag batch`` reads) is checked
before the job is queued: its type, its columns, at least one readable question, the collection
(``read`` on it) and the adapter. The answers come back in the same format from
``GET /v1/batch/{job_id}/download`` once the job has succeeded, for keys that may see the job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from assistant.api.auth import Caller
from assistant.api.routes.jobs import find_job
from assistant.api.schemas import ERROR_RESPONSES, JobAccepted
from assistant.api.services import ServicesDep
from assistant.api.tasks import answer_file
from assistant.api.uploads import save_uploads
from assistant.batch.formats import SUFFIXES, BatchInputError, read_questions
from assistant.core.errors import CollectionNotFoundError

router = APIRouter(tags=["batch"], responses=ERROR_RESPONSES)

MEDIA_TYPES = {
    ".csv": "text/csv",
    ".jsonl": "application/x-ndjson",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@router.post("/v1/batch", status_code=202, response_model=JobAccepted)
async def start_batch(
    file: Annotated[UploadFile, File(description="Questions: .csv, .jsonl or .xlsx.")],
    caller: Caller,
    services: ServicesDep,
    collection: Annotated[str | None, Form(description="Default: the collection setting.")] = None,
    adapter: Annotated[
        str | None, Form(description='NAME, NAME@VERSION or "base"; default: the bound one.')
    ] = None,
) -> Any:
    """Start answering a question file: the batch job's id."""
    name = collection or services.settings.collection
    caller.require(name, "read")
    store = services.runtime.store
    if not store.has_collection(name):
        raise CollectionNotFoundError(name, caller.readable(store.list_collections()))
    record = services.answering.resolve_adapter(adapter, name)
    jobs = services.jobs
    with jobs.staging() as folder:
        [uploaded] = await save_uploads([file], folder, SUFFIXES)
        suffix = Path(uploaded).suffix.lower()
        questions = f"questions{suffix}"
        os.replace(folder / uploaded, folder / questions)
        try:
            source = await run_in_threadpool(read_questions, folder / questions)
        except BatchInputError as error:  # name the user's file, not the staging path
            staged = repr(str(folder / questions))
            raise BatchInputError(str(error).replace(staged, repr(uploaded))) from None
        if not source.questions:
            problems = "; ".join(str(problem) for problem in source.problems[:5])
            raise HTTPException(422, f"{uploaded!r} holds no question to answer: {problems}")
        work = answer_file(
            services.answering, name, record, questions, f"answers{suffix}", caller.key_id
        )
        job = jobs.submit("batch", name, caller.key_id, work, folder)
    services.audit.change(
        key_id=caller.key_id,
        action="batch.start",
        target={"collection": name, "file": uploaded, "job_id": job.id},
    )
    return {"job_id": job.id}


@router.get(
    "/v1/batch/{job_id}/download",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The answers, in the format of the uploaded file.",
            "content": {media: {} for media in MEDIA_TYPES.values()},
        }
    },
)
def download_answers(job_id: str, caller: Caller, services: ServicesDep) -> FileResponse:
    """The answers file of a finished batch job (409 while it runs or if it did not succeed)."""
    job = find_job(services, caller, job_id)
    if job.kind != "batch":
        raise HTTPException(404, f"job {job_id} is a {job.kind} job, not a batch job")
    if job.status != "succeeded" or job.output is None:
        raise HTTPException(
            409, f"job {job_id} is {job.status}: its answers can be downloaded once it succeeded"
        )
    suffix = Path(job.output).suffix
    return FileResponse(
        services.jobs.work_dir(job.id) / job.output,
        media_type=MEDIA_TYPES[suffix],
        filename=f"answers-{job.id[:8]}{suffix}",
    )
