"""Every setting lorag reads, in one typed place.

Settings come from environment variables with the prefix ``LORAG_`` (nested fields joined by
``__``, e.g. ``LORAG_RETRIEVAL__TOP_K=6``) and from an optional ``.env`` file. Nothing is read at
import time: call :func:`load_settings` where a process starts (CLI, API factory, tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assistant.core.errors import ConfigError

# Chosen on measurements here (benchmarks/results/prompts.json, README "Models and runtimes"):
# on the guide questions and quoref-dev, SmolLM2-135M-Instruct (still packaged, and the model of
# the fast tests' real-model checks) answers 1-2 of 10 guide questions; this one 10 of 10.
DEFAULT_GENERATOR = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"

DType = Literal["auto", "float32", "bfloat16", "float16"]
Permission = Literal["read", "write", "admin"]


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "lorag"


EmbeddedEngine = Literal["edge", "client"]


class StoreSettings(BaseModel):
    """Where the vectors live: an embedded engine in ``data_dir`` or a Qdrant server by URL."""

    url: str | None = Field(None, description="Qdrant server URL; unset = embedded in data_dir.")
    api_key: str | None = Field(None, description="API key for the Qdrant server.")
    embedded_engine: EmbeddedEngine = Field(
        "edge",
        description="Embedded engine: 'edge' (the Qdrant engine in-process, qdrant-edge-py) "
        "or 'client' (qdrant-client's pure-Python local mode).",
    )
    hnsw_ef: int = Field(
        256, ge=1, description="HNSW search beam width: recall@10 0.99 at 100k chunks, ~2 ms."
    )
    timeout_s: float = Field(30.0, gt=0, description="Request timeout for a Qdrant server.")
    shard_number: int | None = Field(
        None,
        ge=1,
        description="Shards of a collection lorag creates on a server (unset: the server's "
        "choice, one per node). Ignored, without error, by the embedded engines.",
    )
    replication_factor: int | None = Field(
        None,
        ge=1,
        description="Copies of each shard on a cluster (unset: the server's default, 1). Ignored "
        "by the embedded engines.",
    )
    write_consistency_factor: int | None = Field(
        None,
        ge=1,
        description="Replicas that must confirm a write before it returns (unset: the server's "
        "default, 1); at most replication_factor. Ignored by the embedded engines.",
    )
    on_disk: bool = Field(
        False,
        description="Serve a server collection's dense vectors and sparse index from disk "
        "(memory-mapped) instead of RAM: less memory, slower search. Ignored by the embedded "
        "engines.",
    )
    on_disk_payload: bool = Field(
        True,
        description="Keep a server collection's payloads (the chunk texts) on disk, the "
        "server's default; the indexed fields stay in RAM. Ignored by the embedded engines.",
    )

    @model_validator(mode="after")
    def _consistency_within_replicas(self) -> StoreSettings:
        writes, copies = self.write_consistency_factor, self.replication_factor
        if writes is not None and writes > (copies or 1):
            raise ValueError(
                "store.write_consistency_factor cannot exceed store.replication_factor "
                f"(got {writes} > {copies or 1})"
            )
        return self


class EmbedderSettings(BaseModel):
    model: str = Field(DEFAULT_EMBEDDER, description="Hugging Face id or local folder.")
    dtype: DType = "auto"
    batch_size: int = Field(32, ge=1)
    device: str = "cpu"


GeneratorBackend = Literal["auto", "transformers", "llamacpp", "remote"]
AdapterRuntime = Literal["llamacpp", "transformers"]
RemoteServer = Literal["vllm", "llamacpp", "lorag", "openai"]


class RemoteGeneratorSettings(BaseModel):
    """``generator.backend = "remote"``: an OpenAI-compatible server generates (vLLM, the
    llama.cpp server, TGI, LoRAX, another ``lorag serve``); lorag still retrieves, builds the
    prompt and checks the answer, with ``generator.model``'s tokenizer read here."""

    url: str | None = Field(
        None,
        description="The server's OpenAI base URL, ending in /v1 (vLLM http://HOST:8000/v1; a "
        "lorag serve http://HOST:8000/generate/v1).",
    )
    api_key: SecretStr | None = Field(None, description="The bearer key the server wants.")
    server: RemoteServer = Field(
        "vllm",
        description="How adapters reach the server: 'vllm' (/v1/load_lora_adapter, the server "
        "started with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True), 'lorag' (the "
        "same API on lorag serve's /generate/v1), 'llamacpp' (the adapter's GGUF given to "
        "llama-server with --lora, chosen per request), 'openai' (none are pushed: an adapter "
        "must already be served under its name).",
    )
    model: str | None = Field(
        None, description="The base model's name on the server; unset = generator.model."
    )
    adapter_dir: str | None = Field(
        None,
        description="Where the server sees lorag's adapter folders (data_dir/adapters), e.g. a "
        "shared volume's mount; unset = the same paths (a server on this machine).",
    )
    timeout_s: float = Field(120.0, gt=0, description="Longest wait for one server response.")
    max_retries: int = Field(
        3, ge=0, le=10, description="Retries (exponential backoff) of a refused or failed call."
    )
    concurrency: int = Field(
        8, ge=1, le=256, description="Requests a batch keeps in flight at once."
    )


class GeneratorSettings(BaseModel):
    model: str = Field(DEFAULT_GENERATOR, description="Hugging Face id or local folder.")
    dtype: DType = "auto"
    device: str = "cpu"
    backend: GeneratorBackend = Field(
        "auto",
        description="Serving runtime: 'transformers' (torch; the training-parity reference), "
        "'llamacpp' (prebuilt ik_llama.cpp on the model's GGUF, adapters as GGUF LoRA files), "
        "'auto' (ik_llama.cpp for the base when the model has a GGUF it runs right, and for "
        "the adapters that passed their parity check; the others on transformers) or 'remote' "
        "(an OpenAI-compatible server: generator.remote).",
    )
    adapter_runtime: AdapterRuntime = Field(
        "llamacpp",
        description="Under backend 'auto', where adapters that passed their parity check "
        "answer: 'llamacpp' (the quantised GGUF: less memory, faster decoding) or "
        "'transformers' (faster prefill on some CPUs; the others always answer there).",
    )
    lora_parity_min_f1: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="A new adapter is served on llama.cpp only when its held-out answers there "
        "match its answers on transformers + PEFT by this mean token F1.",
    )
    gguf: Path | None = Field(
        None,
        description="The GGUF file the llamacpp back end loads; unset = the packaged GGUF of "
        "generator.model.",
    )
    decode_threads: int | None = Field(
        None,
        ge=1,
        description="llama.cpp threads per generated token (the prompt uses all of 'threads'); "
        "unset = half the cores, at least 1. Decoding a small model waits on memory and on "
        "thread hand-overs, not on arithmetic: on 2 cores one thread decoded the 0.5B 1.2x "
        "faster than two, and 2.1x faster with a LoRA adapter active.",
    )
    remote: RemoteGeneratorSettings = RemoteGeneratorSettings()

    @model_validator(mode="after")
    def _remote_has_url(self) -> GeneratorSettings:
        if self.backend == "remote" and not self.remote.url:
            raise ValueError(
                "generator.backend 'remote' needs generator.remote.url "
                "(LORAG_GENERATOR__REMOTE__URL), the server's OpenAI base URL"
            )
        return self


class ChunkingSettings(BaseModel):
    chunk_tokens: int = Field(200, ge=16, description="Chunk size in embedder tokens.")
    overlap_tokens: int = Field(32, ge=0, description="Overlap between chunks in embedder tokens.")

    @model_validator(mode="after")
    def _overlap_smaller_than_chunk(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                "chunking.overlap_tokens must be smaller than chunking.chunk_tokens "
                f"(got {self.overlap_tokens} >= {self.chunk_tokens})"
            )
        return self


class RetrievalSettings(BaseModel):
    top_k: int = Field(3, ge=1, description="Chunks put into the prompt.")
    candidates: int = Field(30, ge=1, description="Candidates per retriever before RRF fusion.")
    min_similarity: float = Field(
        0.2, description="Abstain when the best chunk's cosine similarity is below this."
    )
    min_question_coverage: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Abstain when no chunk holds this share of the question's terms (stemmed, "
        "stop words dropped), unless one is paraphrase_similarity similar; 0 turns it off.",
    )
    paraphrase_similarity: float = Field(
        0.6,
        description="A chunk at least this similar is answered from even when it shares few of "
        "the question's words.",
    )
    reranker: str = Field(
        "",
        description="A cross-encoder (sentence-transformers CrossEncoder: a Hugging Face id or a "
        "local folder) that rescores the fused hits before the prompt takes its top_k; empty = "
        "off. It runs on embedder.device in embedder.dtype.",
    )
    rerank_candidates: int = Field(
        20, ge=1, description="Fused hits the reranker rescores (at least top_k are)."
    )


class GenerationSettings(BaseModel):
    max_new_tokens: int = Field(128, ge=1, le=4096)
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy decoding.")
    context_tokens: int = Field(
        1536, ge=128, description="Token budget for the whole prompt (sources included)."
    )
    min_support: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Abstain when less than this share of the answer's new words (those not in "
        "the question) is found in the sources; 0 turns the check off.",
    )
    history_turns: int = Field(
        2,
        ge=0,
        le=20,
        description="Earlier turns of a conversation the model sees before a follow-up (at most "
        "a quarter of the prompt budget); 0: none, follow-ups are still rewritten to stand alone.",
    )


class ApiKey(BaseModel):
    """One API key: its id (named in logs and the audit log), the secret, its rights."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    key: SecretStr = Field(min_length=16, description="The bearer secret, 16 characters or more.")
    permissions: dict[str, Permission] = Field(
        default_factory=dict,
        description='Collection name (or "*" for every collection) → read < write < admin.',
    )
    requests_per_minute: int | None = Field(
        None, ge=1, description="Requests this key may make per minute (none: no limit); 429."
    )


class ApiSettings(BaseModel):
    """``lorag serve``: address, API keys, limits and the audit log."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    keys: list[ApiKey] = Field(
        default_factory=list, description="API keys, as JSON in LORAG_API__KEYS."
    )
    allow_anonymous: bool = Field(
        False,
        description="With no keys configured, serve every request as admin (loopback only).",
    )
    max_upload_mb: float = Field(50.0, gt=0, description="Largest upload request (all files).")
    max_body_kb: int = Field(64, ge=1, description="Largest JSON request body.")
    max_question_chars: int = Field(2000, ge=1, le=2000, description="Longest question.")
    max_new_tokens: int = Field(512, ge=1, le=4096, description="Cap on tokens per answer.")
    queue_size: int = Field(
        8,
        ge=1,
        description="Answers admitted at once (running + waiting); more get 503 + Retry-After.",
    )
    request_timeout_s: float = Field(
        120.0, gt=0, description="An answer not finished by then (queue wait included) is dropped."
    )
    audit_log: Path | None = Field(
        None, description="Append-only JSONL audit log; unset = data_dir/audit.jsonl."
    )
    log_question_text: bool = Field(False, description="Write question texts to the audit log.")
    feedback_answers: int = Field(
        1000,
        ge=1,
        description="Answers remembered (in memory) for POST /v1/feedback to rate; older ones, "
        "or answers given before a restart, cannot be rated.",
    )
    public_docs: bool | None = Field(
        None,
        description="Serve /docs and /openapi.json (without a key). Default: only when no API "
        "keys are set (an open loopback server); with keys, the contract is docs/api.md.",
    )

    @model_validator(mode="after")
    def _unique_keys(self) -> ApiSettings:
        ids = [key.id for key in self.keys]
        secrets = [key.key.get_secret_value() for key in self.keys]
        if len(set(ids)) < len(ids) or len(set(secrets)) < len(secrets):
            raise ValueError("api.keys: every key needs its own id and its own secret")
        return self


class UiSettings(BaseModel):
    """``lorag ui``: the browser UI, and the API it talks to over HTTP."""

    api_url: str | None = Field(
        None, description="The lorag API's base URL; unset = http://<api.host>:<api.port>."
    )
    api_key: SecretStr | None = Field(
        None, description="The bearer key the UI sends; unset = none (an anonymous local API)."
    )
    host: str = Field("127.0.0.1", description="Address the UI listens on.")
    port: int = Field(8501, ge=1, le=65535, description="Port the UI listens on.")
    timeout_s: float = Field(300.0, gt=0, description="Longest wait for one API response.")


class TracingSettings(BaseModel):
    """OpenTelemetry traces of answers, ingests and training steps, sent over OTLP/HTTP.

    Nothing is traced or sent unless ``otlp_endpoint`` is set. Question texts go on the traces
    only when ``api.log_question_text`` allows them in the audit log; answer texts never do."""

    otlp_endpoint: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        description="OTLP/HTTP collector base URL (spans go to <url>/v1/traces), e.g. "
        "http://localhost:4318 (Jaeger), http://localhost:6006 (Phoenix); unset = no traces.",
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Headers sent with every export, as JSON (e.g. {"Authorization": "Basic '
        '..."} for Langfuse); kept secret.',
    )
    service_name: str = Field("lorag", min_length=1, description="The traces' service.name.")
    sample_ratio: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of traces kept (a trace's spans all or none)."
    )


class Settings(BaseSettings):
    """lorag's configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="LORAG_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    collection: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    threads: int | None = Field(None, ge=1, description="torch threads; unset = cores available.")
    store: StoreSettings = StoreSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    generator: GeneratorSettings = GeneratorSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    generation: GenerationSettings = GenerationSettings()
    api: ApiSettings = ApiSettings()
    ui: UiSettings = UiSettings()
    tracing: TracingSettings = TracingSettings()

    @property
    def cache_dir(self) -> Path:
        """Converted models and other derived files."""
        return self.data_dir / "cache"

    @property
    def qdrant_dir(self) -> Path:
        """Embedded Qdrant storage."""
        return self.data_dir / "qdrant"

    @property
    def snapshot_dir(self) -> Path:
        """Snapshots of embedded collections, one folder per collection."""
        return self.data_dir / "snapshots"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (and ``.env``), then apply keyword overrides. A
    setting that breaks its rule is a :class:`ConfigError` naming each such setting, its
    environment variable and the rule, never the value given (it may be a secret)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(invalid_settings(error)) from None


def invalid_settings(error: ValidationError) -> str:
    """``error`` as one line per broken setting, without the values."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        names = [str(part) for part in problem["loc"] if isinstance(part, str)]
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        variable = "LORAG_" + "__".join(names[:2]).upper() if names else "LORAG_*"
        lines.append(f"invalid setting {where} ({variable}): {problem['msg']}")
    return "; ".join(lines)
