"""The API's traces, recorded in memory: each request is one trace, FastAPI's request span at
its root and the question's ``answer`` span (with its retrieve and generate spans) under it; a
caller's ``traceparent`` is continued."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.api.conftest import QUESTION, Served, auth, serve
from tests.fixtures.traces import ancestors, by_trace, named, root

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_generator_dir: Path,
    tiny_embedder_dir: Path,
    loras: list[Path],
) -> Iterator[Served]:
    """An app whose every question reaches the model once (no off-topic or support check)."""
    with serve(
        tmp_path_factory.mktemp("traced"), tiny_generator_dir, tiny_embedder_dir, loras
    ) as app:
        engine = app.runtime.engine
        engine.retrieval = engine.retrieval.model_copy(
            update={"min_similarity": -1.0, "min_question_coverage": 0.0}
        )
        engine.generation = engine.generation.model_copy(update={"min_support": 0.0})
        yield app


def _answered(trace: Sequence[ReadableSpan], route: str) -> ReadableSpan:
    """The trace's answer span, checked: under the request's span, with one retrieve and one
    generate span under it."""
    request = root(trace)
    assert request.kind is SpanKind.SERVER and request.name == f"POST {route}"
    assert request.attributes is not None and request.attributes["http.route"] == route
    [answer] = named(trace, "answer")
    assert ancestors(trace, answer)[-1] is request
    for name in ("retrieve", "generate"):
        [span] = named(trace, name)
        assert span.parent is not None and span.parent.span_id == answer.context.span_id
    return answer


def test_an_ask_request_is_one_trace_with_the_answer_under_the_request(
    served: Served, spans: InMemorySpanExporter
) -> None:
    response = served.client.post(
        "/v1/ask", json={"question": QUESTION, "collection": "kb"}, headers=auth("reader")
    )
    assert response.status_code == 200, response.text

    [trace] = by_trace(spans.get_finished_spans())
    answer = _answered(trace, "/v1/ask")
    request = root(trace).attributes
    assert request is not None and request["http.response.status_code"] == 200
    assert request["lorag.request_id"] == response.headers["x-request-id"]
    assert answer.attributes is not None and answer.attributes["lorag.collection"] == "kb"
    assert "lorag.question" not in answer.attributes  # api.log_question_text is off


def test_a_streamed_answer_continues_the_callers_trace(
    served: Served, spans: InMemorySpanExporter
) -> None:
    caller = f"00-{CALLER_TRACE}-b7ad6b7169203331-01"
    response = served.client.post(
        "/v1/ask",
        json={"question": QUESTION, "collection": "kb", "stream": True},
        headers={**auth("reader"), "traceparent": caller},
    )
    assert response.status_code == 200 and "event: done" in response.text

    [trace] = by_trace(spans.get_finished_spans())
    _answered(trace, "/v1/ask")
    request = root(trace)
    assert request.parent is not None and request.parent.is_remote
    assert format(request.context.trace_id, "032x") == CALLER_TRACE


def test_a_chat_completion_traces_the_tokens_it_reports(
    served: Served, spans: InMemorySpanExporter
) -> None:
    response = served.client.post(
        "/v1/chat/completions",
        json={
            "model": "lorag",
            "messages": [{"role": "user", "content": QUESTION}],
            "collection": "kb",
        },
        headers=auth("reader"),
    )
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]

    [trace] = by_trace(spans.get_finished_spans())
    _answered(trace, "/v1/chat/completions")
    [generate] = named(trace, "generate")
    assert generate.attributes is not None
    assert generate.attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    # both count the whole prompt the model read: instructions, sources and question
    assert generate.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert usage["prompt_tokens"] > 10 * len(QUESTION.split())


def test_a_refused_request_is_traced_with_its_status_and_no_answer(
    served: Served, spans: InMemorySpanExporter
) -> None:
    response = served.client.post(
        "/v1/ask", json={"question": QUESTION, "collection": "kb"}, headers=auth("outsider")
    )
    assert response.status_code == 403

    [trace] = by_trace(spans.get_finished_spans())
    attributes = root(trace).attributes
    assert attributes is not None and attributes["http.response.status_code"] == 403
    assert not named(trace, "answer")
