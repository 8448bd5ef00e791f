"""The JSON bodies the lorag API returns, as the UI reads them (``docs/api.md`` is the contract).

Plain ``TypedDict``s: the client hands the API's JSON to the pages as is, typed for the reader.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

JobKind = Literal["ingest", "finetune", "batch"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
ACTIVE_STATUSES: frozenset[str] = frozenset({"queued", "running"})


class Citation(TypedDict):
    n: int
    source: str
    title: str
    page: int | None
    heading: str | None
    snippet: str
    score: float
    similarity: float
    doc_id: str
    chunk_id: str


class Passage(TypedDict):
    doc_id: str
    source: str
    title: str
    page: int | None
    heading: str | None
    before: str
    passage: str
    after: str
    file: str
    file_problem: str | None


class Timings(TypedDict):
    queue_ms: float
    retrieve_ms: float
    first_token_ms: float | None
    generate_ms: float
    total_ms: float


class Answer(TypedDict):
    answer_id: str
    answer: str
    abstained: bool
    abstain_reason: str | None
    citations: list[Citation]
    sources: list[Citation]
    query: str | None
    collection: str
    adapter: str | None
    adapter_version: int | None
    timings: Timings


class Collection(TypedDict):
    name: str
    documents: int
    chunks: int
    adapter: str | None


class Document(TypedDict):
    doc_id: str
    source: str
    title: str
    chunk_count: int
    ingested_at: float


class JobError(TypedDict):
    item: str
    detail: str


class LossPoint(TypedDict):
    step: int
    loss: float


class Job(TypedDict):
    id: str
    kind: JobKind
    collection: str | None
    status: JobStatus
    progress: float
    message: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    errors: list[JobError]
    losses: list[LossPoint]
    result: dict[str, Any] | None


class Taint(TypedDict):
    doc_id: str
    collection: str
    erased_at: str
    erasure_id: str
    trained_hash: str | None


class GateCheck(TypedDict):
    figure: str
    candidate: float | None
    against: float | None
    passed: bool
    reason: str


class Gate(TypedDict):
    candidate: str
    current: str
    collection: str
    questions: int
    checks: list[GateCheck]
    passed: bool
    failed: list[str]
    promoted: bool
    summary: str
    notes: list[str]


class Adapter(TypedDict):
    name: str
    version: int
    ref: str
    status: str
    method: str
    base_model: str
    created_at: str
    metrics: dict[str, Any]
    source_doc_ids: list[str]
    tainted: bool
    tainted_by: list[Taint]
    gate: Gate | None


class Feedback(TypedDict):
    feedback_id: str
    answer_id: str
    rating: Literal["up", "down"]
    corrected: bool
    collection: str
    adapter: str | None


class Erasure(TypedDict):
    erasure_id: str
    erased_at: str
    collection: str
    adapters_tainted: list[str]
    training_rows_removed: dict[str, int]
    feedback_removed: int
