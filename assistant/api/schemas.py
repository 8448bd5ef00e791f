"""The JSON bodies the API reads and writes (``docs/api.md`` is the contract they follow).

Request models refuse unknown fields only where a typo would silently change the answer; the
OpenAI-compatible request accepts (and ignores) the OpenAI fields lorag does not use, so clients
that send them work unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.core.store.schema import NAME_PATTERN

NOT_BLANK = r"\S"
"""A JSON-schema pattern (it matches anywhere): at least one character that is not a space."""
JobKind = Literal["ingest", "finetune", "batch"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class OpenAIError(BaseModel):
    message: str
    type: str
    code: int


class ErrorBody(BaseModel):
    """Every error: one message naming the problem."""

    detail: str
    error: OpenAIError | None = Field(
        None, description="OpenAI-compatible routes only: the same message, OpenAI's shape."
    )


# ------------------------------------------------------------------------------------ asking


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=20000)
    answer: str = Field(max_length=20000)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        description="The question (capped at api.max_question_chars).",
        json_schema_extra={"pattern": NOT_BLANK},  # shown; checked by lorag, with its message
    )
    collection: str | None = Field(None, description="Default: the collection setting.")
    adapter: str | None = Field(
        None,
        description='"NAME", "NAME@VERSION", "base" (no adapter) or null (the adapter bound to '
        "the collection, else the base model).",
    )
    top_k: int | None = Field(None, ge=1, le=50, description="Sources given to the model.")
    max_new_tokens: int | None = Field(
        None, ge=1, description="Longest answer in tokens (capped by api.max_new_tokens)."
    )
    stream: bool = Field(False, description="Server-sent events: tokens, then the answer.")
    history: list[HistoryTurn] = Field(
        default_factory=list,
        max_length=100,
        description="The conversation so far, oldest first: a follow-up is rewritten to stand "
        "alone before retrieval, and the last turns are shown to the model.",
    )
    no_retrieval: bool = Field(
        False,
        description="Ask the model (or the adapter) alone, without documents: nothing is "
        "retrieved or cited (the collection still picks the bound adapter and the key's right).",
    )


class CitationOut(BaseModel):
    n: int
    source: str
    title: str
    page: int | None
    heading: str | None
    snippet: str
    score: float = Field(description="The search's score (RRF for hybrid retrieval).")
    similarity: float = Field(description="Cosine similarity between question and chunk.")
    rerank_score: float | None = Field(
        None, description="The cross-encoder's score when retrieval.reranker is set, else null."
    )
    doc_id: str
    chunk_id: str


class Timings(BaseModel):
    queue_ms: float = Field(description="Waiting for the generator.")
    retrieve_ms: float
    first_token_ms: float | None = Field(description="null when the model was not called.")
    generate_ms: float
    total_ms: float = Field(description="Retrieval and generation (queue wait excluded).")
    prompt_tokens: int | None = Field(None, description="The prompt's length; null: no prompt.")


class AskResponse(BaseModel):
    answer_id: str = Field(
        description="The request id (X-Request-ID, also in the answer's audit line): what "
        "POST /v1/feedback names."
    )
    answer: str
    abstained: bool
    abstain_reason: str | None
    citations: list[CitationOut]
    sources: list[CitationOut] = Field(
        description="The passages the model was given, best first: shown when it abstains, so "
        "an answer never leaves the reader empty-handed."
    )
    query: str | None = Field(
        None,
        description="The standalone question a follow-up was rewritten to and answered as; "
        "null when the question was answered as asked.",
    )
    collection: str
    adapter: str | None = Field(description="The adapter's name; null = the base model.")
    adapter_version: int | None
    timings: Timings


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer_id: str = Field(
        min_length=1,
        max_length=64,
        description="The answer's answer_id (its request id): one of the server's recent answers.",
    )
    rating: Literal["up", "down"]
    correction: str | None = Field(
        None, max_length=4000, description="The answer that should have been given."
    )


class FeedbackOut(BaseModel):
    feedback_id: str
    answer_id: str
    rating: Literal["up", "down"]
    corrected: bool
    collection: str
    adapter: str | None = Field(description="The adapter that answered (NAME@VERSION), or null.")


# ------------------------------------------------------------------------------------ OpenAI


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The content as text (the text parts of a list of parts, joined by spaces)."""
        if isinstance(self.content, list):
            return " ".join(
                str(part.get("text", "")) for part in self.content if part.get("type") == "text"
            )
        return self.content or ""


class ChatRequest(BaseModel):
    """OpenAI's chat completion request; ``collection`` and ``top_k`` are lorag's extra fields."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(
        description='A collection ("team", with its bound adapter), "COLLECTION:ADAPTER" '
        '("team:legal@2", "team:base"), "lorag" (the base model) or an adapter: NAME or '
        "NAME@VERSION (answered from the collection field, else the one it is bound to)."
    )
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    collection: str | None = Field(
        None,
        description="lorag: the collection to answer from (default: one bound to the adapter, "
        "else the collection setting).",
    )
    top_k: int | None = Field(None, ge=1, le=50, description="lorag: sources given to the model.")


class GenerateRequest(BaseModel):
    """OpenAI's chat completion request to the plain model server (``/generate/v1``); fields it
    does not use (``logit_bias``, ``top_p``, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="The base model (generator.model) or a loaded adapter.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    avoid: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="lorag: the reply may not start with the first token of any of these.",
    )


class LoadLoraAdapterRequest(BaseModel):
    """vLLM's ``/v1/load_lora_adapter`` body."""

    lora_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$")
    lora_path: str = Field(min_length=1, description="A PEFT adapter folder on the server.")


class UnloadLoraAdapterRequest(BaseModel):
    """vLLM's ``/v1/unload_lora_adapter`` body."""

    model_config = ConfigDict(extra="allow")

    lora_name: str


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class Usage(BaseModel):
    prompt_tokens: int = Field(
        description="Tokens of the prompt the model read: instructions, retrieved sources and "
        "the question (0 when the answer abstained without asking the model)."
    )
    completion_tokens: int
    total_tokens: int


class PlainCompletion(BaseModel):
    """A plain model server's chat completion (no lorag fields)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[CitationOut] = Field(description="lorag: the sources the answer rests on.")
    abstained: bool = Field(description="lorag: the documents did not hold the answer.")
    sources: list[CitationOut] = Field(
        description="lorag: the passages the model was given, best first (also on abstention)."
    )
    query: str | None = Field(
        description="lorag: the follow-up rewritten to stand alone (null: asked as it was)."
    )
    collection: str = Field(description="lorag: the collection answered from.")
    adapter: str | None = Field(
        description="lorag: the adapter that answered (NAME@VERSION; null: the base model)."
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "lorag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# ------------------------------------------------------------------------------------ collections


class CollectionOut(BaseModel):
    name: str
    documents: int
    chunks: int
    adapter: str | None


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="1-64 letters, digits, '_' or '-', starting with a letter/digit.",
        json_schema_extra={"pattern": NAME_PATTERN},  # shown; checked by lorag, with its message
    )


class CollectionCreated(BaseModel):
    name: str


class DocumentOut(BaseModel):
    doc_id: str
    source: str
    title: str
    chunk_count: int
    ingested_at: float = Field(description="Unix time.")


class ErasedDocumentOut(BaseModel):
    doc_id: str
    source: str
    content_hash: str = Field(description="The document's content hash as the store knew it.")
    chunks_removed: int


class ErasureOut(BaseModel):
    erasure_id: str = Field(description="Also in the erasure's audit line.")
    erased_at: str
    collection: str
    requested_by: str = Field(description="The key id (cli: the command line).")
    request_id: str | None = Field(description="The request that erased (its audit line's).")
    documents: list[ErasedDocumentOut]
    collection_deleted: bool
    adapters_tainted: list[str] = Field(description="Versions (NAME@VERSION) trained on them.")
    training_rows_removed: dict[str, int] = Field(
        description="Rows of the documents removed, by dataset file under the data dir."
    )
    feedback_removed: int = Field(description="Ratings of answers that rested on them.")
    files_erased: list[str] = Field(description="Files removed or rewritten, under the data dir.")
    store_rewritten: bool


class ErasureReportOut(BaseModel):
    doc_id: str
    collection: str
    erasures: list[ErasureOut] = Field(description="Every erasure of the document, oldest first.")


class PassageOut(BaseModel):
    doc_id: str
    source: str
    title: str
    page: int | None
    heading: str | None
    before: str = Field(description="The document's text just before the passage.")
    passage: str
    after: str = Field(description="The document's text just after the passage.")
    file: str = Field(description="The path of the document's original file on this API.")
    file_problem: str | None = Field(
        description="Why the original file cannot be opened (moved, or changed since it was "
        "ingested); null when it can."
    )


# ------------------------------------------------------------------------------------ jobs


class JobAccepted(BaseModel):
    job_id: str


class JobError(BaseModel):
    item: str
    detail: str


class LossPoint(BaseModel):
    step: int
    loss: float


class JobOut(BaseModel):
    id: str
    kind: JobKind
    collection: str | None
    status: JobStatus
    progress: float = Field(ge=0.0, le=1.0)
    message: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    errors: list[JobError]
    losses: list[LossPoint]
    result: dict[str, Any] | None


# ------------------------------------------------------------------------------------ adapters


class TaintOut(BaseModel):
    doc_id: str
    collection: str
    erased_at: str
    erasure_id: str
    trained_hash: str | None = Field(description="The content hash the adapter was trained on.")


class AdapterOut(BaseModel):
    name: str
    version: int
    ref: str
    status: str
    method: str
    base_model: str
    created_at: str
    metrics: dict[str, Any]
    lora_gguf_sha256: str | None = Field(
        None, description="Its GGUF LoRA file's sha256: it passed its llama.cpp parity check."
    )
    source_doc_ids: list[str] = Field(
        default_factory=list, description="The documents its training rows came from."
    )
    tainted: bool = Field(
        False, description="A document it was trained on was erased: it is not served."
    )
    tainted_by: list[TaintOut] = Field(default_factory=list)
    gate: dict[str, Any] | None = Field(
        None,
        description="The promotion gate's last report on this version: each figure (answer F1, "
        "citation precision, abstention accuracy, forgetting) against the current version's, "
        "passed, failed, promoted; null: never gated.",
    )


class AdapterDetail(BaseModel):
    name: str
    versions: list[AdapterOut]
    active_version: int


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)


# ------------------------------------------------------------------------------------ operations


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    generator: str | None
    embedder: str | None
    reranker: str | None = Field(None, description="The cross-encoder; null: no reranking.")
    adapters_loaded: list[str]
    store: str
    generator_server: str | None = Field(
        None,
        description='The remote generator server (generator.backend "remote"): "ok" or what is '
        "wrong with it; null: the model runs in this process.",
    )


# ------------------------------------------------------------------------------------ OpenAPI

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "Refused; `detail` names the problem."},
    503: {"model": ErrorBody, "description": "Busy (see Retry-After) or not ready."},
}


def streamed_200(events: list[str] | None, description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entry of a 200 ``text/event-stream`` response: the shape of one event
    (``events``: the event names it may carry; ``None``: events without a name)."""
    properties: dict[str, Any] = {"data": {"type": "string", "description": "JSON."}}
    required = ["data"]
    if events is not None:
        properties["event"] = {"type": "string", "enum": events}
        required.append("event")
    schema = {"type": "object", "properties": properties, "required": required}
    return {200: {"description": description, "content": {"text/event-stream": {"schema": schema}}}}
