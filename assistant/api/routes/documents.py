"""Collections and their documents: list, create, delete, upload files to ingest, and open
what a citation names (its passage in context, the document's original file).

Deleting a document or a collection is an erasure (:mod:`assistant.erasure`): it taints the
adapter versions trained on the documents and removes their training rows and feedback too; its
audit line names what it reached, and ``GET .../documents/{doc_id}/erasure`` returns its report.

Reading a collection (its documents, passages and files) needs ``read``, deleting or uploading
documents and reading an erasure report ``write``, creating or deleting a collection ``admin``.
An upload is checked whole (names, types, sizes) and answered 202 with the id of an ingest job
(``GET /v1/jobs/{id}`` follows it); a refused upload leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, HTTPException, Request, Response, UploadFile

from assistant.api.auth import Caller, Principal
from assistant.api.schemas import (
    ERROR_RESPONSES,
    CollectionCreate,
    CollectionCreated,
    CollectionOut,
    DocumentOut,
    ErasureReportOut,
    JobAccepted,
    PassageOut,
)
from assistant.api.services import Services, ServicesDep
from assistant.api.tasks import ingest_uploads
from assistant.api.uploads import save_uploads
from assistant.core.errors import CollectionNotFoundError, OriginalUnavailableError
from assistant.core.settings import Permission
from assistant.core.store.schema import check_name
from assistant.erasure import ErasureReport, erasure_reports
from assistant.sources import original_file, passage_in_context
from ingestion.loaders import SUPPORTED_SUFFIXES

router = APIRouter(tags=["documents"], responses=ERROR_RESPONSES)


@router.get("/v1/collections", response_model=list[CollectionOut])
def list_collections(caller: Caller, services: ServicesDep) -> Any:
    """The collections the key may read, with their document and chunk counts."""
    store = services.runtime.store
    bindings = services.runtime.registry.bindings()
    return [
        {
            "name": name,
            "documents": len(store.documents(name)),
            "chunks": store.count(name),
            "adapter": bindings.get(name),
        }
        for name in caller.readable(store.list_collections())
    ]


@router.post("/v1/collections", status_code=201, response_model=CollectionCreated)
def create_collection(body: CollectionCreate, caller: Caller, services: ServicesDep) -> Any:
    """Create an empty collection (409 if it exists)."""
    name = check_name(body.name)
    caller.require(name, "admin")
    runtime = services.runtime
    if runtime.store.has_collection(name):
        raise HTTPException(409, f"collection {name!r} already exists")
    runtime.store.create_collection(name, runtime.embedder.dimension)
    services.audit.change(
        key_id=caller.key_id, action="collections.create", target={"collection": name}
    )
    return {"name": name}


@router.delete("/v1/collections/{name}", status_code=204, response_class=Response)
def delete_collection(
    name: str, caller: Caller, request: Request, services: ServicesDep
) -> Response:
    """Delete a collection, its documents (an erasure, as for one document) and its adapter
    binding."""
    _existing(services, caller, name, "admin")
    request_id: str = request.state.request_id
    report = services.runtime.delete_collection(
        name, requested_by=caller.key_id, request_id=request_id
    )
    _audit_erasure(services, "collections.delete", report)
    return Response(status_code=204, headers={"X-Erasure-ID": report.erasure_id})


@router.get("/v1/collections/{name}/documents", response_model=list[DocumentOut])
def list_documents(name: str, caller: Caller, services: ServicesDep) -> Any:
    """The documents of a collection."""
    _existing(services, caller, name, "read")
    return [
        {
            "doc_id": info.doc_id,
            "source": info.source,
            "title": info.title,
            "chunk_count": info.chunk_count,
            "ingested_at": info.ingested_at,
        }
        for info in services.runtime.store.documents(name)
    ]


@router.delete(
    "/v1/collections/{name}/documents/{doc_id}", status_code=204, response_class=Response
)
def delete_document(
    name: str, doc_id: str, caller: Caller, request: Request, services: ServicesDep
) -> Response:
    """Erase one document: its chunks, its kept file, and what was made from it (the adapter
    versions trained on it are tainted); the erasure's id is in ``X-Erasure-ID``."""
    _existing(services, caller, name, "write")
    store = services.runtime.store
    if doc_id not in {info.doc_id for info in store.documents(name)}:
        raise HTTPException(404, f"collection {name!r} has no document {doc_id!r}")
    request_id: str = request.state.request_id
    report = services.runtime.delete_documents(
        name, [doc_id], requested_by=caller.key_id, request_id=request_id
    )
    _audit_erasure(services, "documents.delete", report)
    return Response(status_code=204, headers={"X-Erasure-ID": report.erasure_id})


@router.get("/v1/collections/{name}/documents/{doc_id}/erasure", response_model=ErasureReportOut)
def get_erasure_report(name: str, doc_id: str, caller: Caller, services: ServicesDep) -> Any:
    """What erasing the document reached: chunks removed, files erased, adapter versions
    tainted, training rows and feedback removed, and the audit's request id (404: it was never
    erased from this collection). The collection itself may be gone."""
    caller.require(name, "write")
    found = erasure_reports(services.settings.data_dir, doc_id, name)
    if not found:
        raise HTTPException(404, f"document {doc_id!r} was never erased from collection {name!r}")
    return {"doc_id": doc_id, "collection": name, "erasures": found}


@router.get(
    "/v1/collections/{name}/documents/{doc_id}/passages/{chunk_id}", response_model=PassageOut
)
def get_passage(
    name: str, doc_id: str, chunk_id: str, caller: Caller, services: ServicesDep
) -> Any:
    """A passage (a citation's ``chunk_id``) with the document's text around it, and where
    its original file is (or why it cannot be opened)."""
    _existing(services, caller, name, "read")
    runtime = services.runtime
    found = passage_in_context(runtime.store, name, doc_id, chunk_id)
    problem = None
    try:
        original_file(runtime.store, runtime.originals, runtime.settings, name, doc_id)
    except OriginalUnavailableError as error:
        problem = str(error)
    file = f"/v1/collections/{name}/documents/{doc_id}/file"
    return {**asdict(found), "file": file, "file_problem": problem}


@router.get(
    "/v1/collections/{name}/documents/{doc_id}/file",
    response_class=Response,
    responses={
        200: {
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The file, in its own media type (text/markdown, application/pdf, …).",
        },
        409: {"description": "The file changed after it was ingested."},
        410: {"description": "The file is no longer where it was ingested from."},
    },
)
def get_original(name: str, doc_id: str, caller: Caller, services: ServicesDep) -> Response:
    """The document's original file, as it was ingested (an upload's kept copy, or the file
    ingested from disk while it is unchanged). Browsers show it inline, never run it."""
    _existing(services, caller, name, "read")
    runtime = services.runtime
    try:
        found = original_file(runtime.store, runtime.originals, runtime.settings, name, doc_id)
    except OriginalUnavailableError as error:
        raise HTTPException(409 if error.changed else 410, str(error)) from error
    return Response(
        content=found.data,
        media_type=found.media_type,
        headers={
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(found.name)}",
            "Content-Security-Policy": "sandbox",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/v1/collections/{name}/documents", status_code=202, response_model=JobAccepted)
async def upload_documents(
    name: str,
    files: Annotated[
        list[UploadFile], File(description="Files to ingest (one or more).", min_length=1)
    ],
    caller: Caller,
    services: ServicesDep,
) -> Any:
    """Upload files and ingest them in the background: the ingest job's id."""
    _existing(services, caller, name, "write")
    jobs = services.jobs
    with jobs.staging() as folder:
        names = await save_uploads(files, folder, SUPPORTED_SUFFIXES)
        job = jobs.submit(
            "ingest",
            name,
            caller.key_id,
            ingest_uploads(services.runtime, name, names),
            files=folder,
        )
    services.audit.change(
        key_id=caller.key_id,
        action="documents.upload",
        target={"collection": name, "files": names, "job_id": job.id},
    )
    return {"job_id": job.id}


def _audit_erasure(services: Services, action: str, report: ErasureReport) -> None:
    """The erasure's audit line: what was deleted and what the erasure reached."""
    services.audit.change(key_id=report.requested_by, action=action, target=report.audit_target())


def _existing(services: Services, caller: Principal, name: str, level: Permission) -> None:
    """403 unless the key holds ``level`` on ``name``; then 404 unless the collection exists."""
    caller.require(name, level)
    store = services.runtime.store
    if not store.has_collection(name):
        raise CollectionNotFoundError(name, caller.readable(store.list_collections()))
