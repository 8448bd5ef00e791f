"""OpenTelemetry traces: where lorag's spans go, and the helpers its modules make them with.

lorag's modules make spans through the OpenTelemetry API alone (:func:`span`,
:func:`current_span`, :func:`record_span`). The spans go nowhere until :func:`install_tracing`,
called where a process starts (the CLI, the API factory), installs the SDK's tracer provider:
it does so only when ``tracing.otlp_endpoint`` is set, and then spans are batched and sent over
OTLP/HTTP to ``<endpoint>/v1/traces`` (Jaeger, Phoenix, Langfuse and the OpenTelemetry
Collector read it). Unset, the API's no-op provider stays: nothing is recorded, nothing is sent
and the SDK is not even imported. A provider something else installed first (``opentelemetry-
instrument``, a test) is kept.

The spans, with attribute names from OpenTelemetry's GenAI conventions where one exists::

    answer        one per question, the root of its trace (in the API, under the request's span):
                  lorag.collection, lorag.adapter, gen_ai.request.model, lorag.abstained,
                  lorag.question (only when api.log_question_text allows it)
      condense    a follow-up rewritten to stand alone
      retrieve    lorag.retrieval.hits, .top_score, .top_similarity (and .batch_size)
        rerank    lorag.rerank.model, .candidates, .top_score
      generate    gen_ai.request.model, gen_ai.usage.input_tokens / output_tokens, lorag.adapter
    ingest        one per ingest run (files, chunks); ingest.file per file; ingest.embed per batch
    finetune      one per training run; train.step per optimiser step (loss, tokens)

Answer texts and document texts are never put on a span; files are named by document id.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from opentelemetry.util.types import Attributes, AttributeValue

from assistant.core.settings import Settings, TracingSettings
from assistant.core.types import Answer, Hit

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

TRACER_NAME = "lorag"
TRACES_PATH = "/v1/traces"

# Attribute names, in one place (the GenAI ones are OpenTelemetry's).
MODEL = "gen_ai.request.model"
OPERATION = "gen_ai.operation.name"
MAX_TOKENS = "gen_ai.request.max_tokens"
TEMPERATURE = "gen_ai.request.temperature"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
QUESTION = "lorag.question"
COLLECTION = "lorag.collection"
ADAPTER = "lorag.adapter"
BATCH_SIZE = "lorag.batch_size"


def tracer() -> Tracer:
    """lorag's tracer: the installed provider's, or the API's no-op one."""
    return trace.get_tracer(TRACER_NAME)


def tracing_installed() -> bool:
    """Whether this process has a tracer provider that records spans (not the API's no-op)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def install_tracing(settings: Settings) -> bool:
    """Send this process's spans to ``tracing.otlp_endpoint`` (installed once per process);
    ``False``, with nothing installed, when no endpoint is set."""
    if settings.tracing.otlp_endpoint is None:
        return False
    if not tracing_installed():
        trace.set_tracer_provider(build_provider(settings.tracing))
    return True


def build_provider(tracing: TracingSettings) -> TracerProvider:
    """An SDK tracer provider that batches spans to ``tracing.otlp_endpoint`` over OTLP/HTTP,
    keeping ``tracing.sample_ratio`` of the traces (a sampled caller's trace is always kept).
    Its spans are flushed when the process exits."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if tracing.otlp_endpoint is None:
        raise ValueError("tracing.otlp_endpoint is not set: there is nowhere to send spans")
    exporter = OTLPSpanExporter(
        endpoint=traces_url(tracing.otlp_endpoint),
        headers={name: value.get_secret_value() for name, value in tracing.headers.items()},
    )
    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(tracing.sample_ratio)),
        resource=Resource.create({SERVICE_NAME: tracing.service_name}),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector's base ``endpoint`` (kept when it is one)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(TRACES_PATH) else endpoint + TRACES_PATH


@contextmanager
def span(name: str, parent: Span | None = None, attributes: Attributes = None) -> Iterator[Span]:
    """A span for the block, under ``parent`` (default: the current span), ended with the block
    and marked failed by an exception it raises. It is not made current, so a generator may hold
    it across its yields; use :func:`current_span` for a block whose callees make spans."""
    context = trace.set_span_in_context(parent) if parent is not None else None
    opened = tracer().start_span(name, context=context, attributes=attributes)
    try:
        yield opened
    except Exception as error:
        opened.record_exception(error)
        opened.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        raise
    finally:
        opened.end()


@contextmanager
def spans(
    name: str, each: Sequence[Attributes], parents: Sequence[Span] | None = None
) -> Iterator[list[Span]]:
    """One :func:`span` per item of ``each`` (its attributes), under the same item of
    ``parents`` (default: the current span), all open for the block: the roots of a batch's
    questions, one trace each, or a batch step's span in each question's trace."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(span(name, parents[i] if parents else None, attributes))
            for i, attributes in enumerate(each)
        ]


def current_span(
    name: str, parent: Span | None = None, attributes: Attributes = None
) -> AbstractContextManager[Span]:
    """A span made current for a block that does not yield (the spans its callees make go
    under it), under ``parent`` (default: the current span)."""
    context = trace.set_span_in_context(parent) if parent is not None else None
    return tracer().start_as_current_span(name, context=context, attributes=attributes)


def record_span(name: str, seconds: float, attributes: Attributes = None) -> None:
    """A span, under the current one, for work that has just taken ``seconds``: for a loop that
    measures its own steps, where a ``with`` block would not fit."""
    ended = time.time_ns()
    done = tracer().start_span(name, start_time=ended - int(seconds * 1e9), attributes=attributes)
    done.end(end_time=ended)


def hit_attributes(hits: Sequence[Hit]) -> dict[str, AttributeValue]:
    """What a retrieval found: how many hits, the best one's scores."""
    found: dict[str, AttributeValue] = {"lorag.retrieval.hits": len(hits)}
    if hits:
        found["lorag.retrieval.top_score"] = float(hits[0].score)
        found["lorag.retrieval.top_similarity"] = float(hits[0].similarity)
    return found


def answer_attributes(answer: Answer) -> dict[str, AttributeValue]:
    """How a question was answered: abstained (and why), how many citations."""
    found: dict[str, AttributeValue] = {
        "lorag.abstained": answer.abstained,
        "lorag.citations": len(answer.citations),
    }
    if answer.abstain_reason is not None:
        found["lorag.abstain_reason"] = answer.abstain_reason
    return found
