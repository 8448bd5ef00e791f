"""OpenAPI links: how one operation's response names what the next one works on.

A client (or a stateful fuzzer such as schemathesis) follows them through the documents
workflow: create a collection, upload files to it, follow the ingest job, ask the collection,
open a cited passage, give feedback on the answer, list and erase its documents, read the
erasure report, delete the collection; a batch job is followed to its download the same way.

:data:`LINKS` is the one list of them; :func:`install_links` adds them to the app's
``/openapi.json`` (the routes stay as they are). Operations are named by method and path (an
``operationRef``), the contract itself, not by the generated operation ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI


@dataclass(frozen=True)
class Link:
    """One link: the response ``status`` of ``source`` (method, path) feeds ``target``.

    ``parameters`` map ``LOCATION.NAME`` of the target to a runtime expression on the source's
    request or response; ``body`` holds fields (expressions too) of the target's request body.
    """

    name: str
    source: tuple[str, str]
    status: int
    target: tuple[str, str]
    description: str
    parameters: dict[str, str] = field(default_factory=dict)
    body: dict[str, str] | None = None


COLLECTIONS = "/v1/collections"
COLLECTION = "/v1/collections/{name}"
DOCUMENTS = "/v1/collections/{name}/documents"
DOCUMENT = "/v1/collections/{name}/documents/{doc_id}"
CREATED_NAME = {"path.name": "$response.body#/name"}
SAME_NAME = {"path.name": "$request.path.name"}

LINKS: tuple[Link, ...] = (
    Link(
        "ListDocuments",
        ("GET", COLLECTIONS),
        200,
        ("GET", DOCUMENTS),
        "The documents of the first collection listed.",
        {"path.name": "$response.body#/0/name"},
    ),
    Link(
        "UploadDocuments",
        ("POST", COLLECTIONS),
        201,
        ("POST", DOCUMENTS),
        "Upload files to the new collection.",
        CREATED_NAME,
    ),
    Link(
        "ListDocuments",
        ("POST", COLLECTIONS),
        201,
        ("GET", DOCUMENTS),
        "The new collection's documents.",
        CREATED_NAME,
    ),
    Link(
        "Ask",
        ("POST", COLLECTIONS),
        201,
        ("POST", "/v1/ask"),
        "Ask the new collection.",
        body={"collection": "$response.body#/name"},
    ),
    Link(
        "DeleteCollection",
        ("POST", COLLECTIONS),
        201,
        ("DELETE", COLLECTION),
        "Delete the new collection.",
        CREATED_NAME,
    ),
    Link(
        "GetJob",
        ("POST", DOCUMENTS),
        202,
        ("GET", "/v1/jobs/{job_id}"),
        "Follow the ingest job.",
        {"path.job_id": "$response.body#/job_id"},
    ),
    Link(
        "CancelJob",
        ("POST", DOCUMENTS),
        202,
        ("POST", "/v1/jobs/{job_id}/cancel"),
        "Cancel the ingest job.",
        {"path.job_id": "$response.body#/job_id"},
    ),
    Link(
        "ListDocuments",
        ("POST", DOCUMENTS),
        202,
        ("GET", DOCUMENTS),
        "The collection's documents, the upload's among them once ingested.",
        SAME_NAME,
    ),
    Link(
        "Ask",
        ("POST", DOCUMENTS),
        202,
        ("POST", "/v1/ask"),
        "Ask the collection the files were uploaded to.",
        body={"collection": "$request.path.name"},
    ),
    Link(
        "DeleteCollection",
        ("POST", DOCUMENTS),
        202,
        ("DELETE", COLLECTION),
        "Delete the collection the files were uploaded to.",
        SAME_NAME,
    ),
    Link(
        "DeleteDocument",
        ("GET", DOCUMENTS),
        200,
        ("DELETE", DOCUMENT),
        "Erase the first document listed.",
        {**SAME_NAME, "path.doc_id": "$response.body#/0/doc_id"},
    ),
    Link(
        "GetFile",
        ("GET", DOCUMENTS),
        200,
        ("GET", f"{DOCUMENT}/file"),
        "The original file of the first document listed.",
        {**SAME_NAME, "path.doc_id": "$response.body#/0/doc_id"},
    ),
    Link(
        "GetErasure",
        ("DELETE", DOCUMENT),
        204,
        ("GET", f"{DOCUMENT}/erasure"),
        "What erasing the document reached.",
        {**SAME_NAME, "path.doc_id": "$request.path.doc_id"},
    ),
    Link(
        "GetPassage",
        ("POST", "/v1/ask"),
        200,
        ("GET", f"{DOCUMENT}/passages/{{chunk_id}}"),
        "The first source's passage in its document.",
        {
            "path.name": "$response.body#/collection",
            "path.doc_id": "$response.body#/sources/0/doc_id",
            "path.chunk_id": "$response.body#/sources/0/chunk_id",
        },
    ),
    Link(
        "GiveFeedback",
        ("POST", "/v1/ask"),
        200,
        ("POST", "/v1/feedback"),
        "Rate the answer.",
        body={"answer_id": "$response.body#/answer_id"},
    ),
    Link(
        "GetJob",
        ("POST", "/v1/batch"),
        202,
        ("GET", "/v1/jobs/{job_id}"),
        "Follow the batch job.",
        {"path.job_id": "$response.body#/job_id"},
    ),
    Link(
        "DownloadAnswers",
        ("POST", "/v1/batch"),
        202,
        ("GET", "/v1/batch/{job_id}/download"),
        "The batch job's answers (409 until it has succeeded).",
        {"path.job_id": "$response.body#/job_id"},
    ),
)


def operation_ref(method: str, path: str) -> str:
    """The JSON pointer to an operation of this schema (``~1`` for each ``/`` of the path)."""
    return f"#/paths/{path.replace('~', '~0').replace('/', '~1')}/{method.lower()}"


def add_links(schema: dict[str, Any], links: tuple[Link, ...] = LINKS) -> dict[str, Any]:
    """``schema`` (an OpenAPI document) with ``links`` added to their source responses, in
    place; ``KeyError`` names a link whose source or target is not in it."""
    paths = schema["paths"]
    for link in links:
        method, path = link.target
        if method.lower() not in paths.get(path, {}):
            raise KeyError(f"link {link.name!r}: no operation {method} {path}")
        source = paths[link.source[1]][link.source[0].lower()]
        definition: dict[str, Any] = {
            "operationRef": operation_ref(method, path),
            "description": link.description,
        }
        if link.parameters:
            definition["parameters"] = dict(link.parameters)
        if link.body is not None:
            definition["requestBody"] = dict(link.body)
        source["responses"][str(link.status)].setdefault("links", {})[link.name] = definition
    return schema


def install_links(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) carry :data:`LINKS`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_links(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
