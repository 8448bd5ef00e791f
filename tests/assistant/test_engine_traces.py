"""The engine's traces, recorded in memory: one trace per question, with its retrieve and
generate spans, over the real embedded store and the tiny real models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from assistant.core.errors import AdapterError
from assistant.core.settings import RetrievalSettings, Settings
from assistant.runtime import Runtime
from tests.fixtures.traces import attribute_values, by_trace, named, root, shape

QUESTIONS = ["What is the hotel limit per night?", "How many days of paid leave are there?"]
ANSWERED = [("", "answer"), ("answer", "generate"), ("answer", "retrieve")]


def _settings(tiny_settings: Settings, **changes: object) -> Settings:
    """``tiny_settings`` where every question is answered by the model: no off-topic or support
    check withdraws the tiny model's answers (so each has exactly one generate span)."""
    retrieval = RetrievalSettings(min_similarity=-1.0, min_question_coverage=0.0)
    generation = tiny_settings.generation.model_copy(update={"min_support": 0.0})
    return tiny_settings.model_copy(
        update={"retrieval": retrieval, "generation": generation, **changes}
    )


def _runtime(settings: Settings, docs: Path) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    assert runtime.ingestor("kb").ingest([docs]).ok
    yield runtime
    runtime.close()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "travel.md").write_text(
        "# Travel policy\n\nTrain tickets are reimbursed in second class.\n\n"
        "## Hotels\n\nThe hotel limit is 120 euros per night in Amsterdam.\n",
        encoding="utf-8",
    )
    (folder / "leave.txt").write_text(
        "Employees get 25 days of paid leave per year. Unused days expire in March.\n",
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def runtime(tiny_settings: Settings, docs: Path) -> Iterator[Runtime]:
    yield from _runtime(_settings(tiny_settings), docs)


def test_two_questions_make_two_traces_each_with_retrieve_and_generate(
    runtime: Runtime, spans: InMemorySpanExporter
) -> None:
    spans.clear()  # the ingest's own trace
    streamed = [list(runtime.engine.stream(question, "kb")) for question in QUESTIONS]

    traces = by_trace(spans.get_finished_spans())
    assert len(traces) == 2
    model = runtime.settings.generator.model
    count = runtime.generator.count_tokens
    for trace, events in zip(traces, streamed, strict=True):
        answer, draft = events[-1].answer, "".join(event.text for event in events[:-1])
        assert shape(trace) == ANSWERED
        answered = root(trace)
        assert answered.attributes is not None
        assert answered.attributes["lorag.collection"] == "kb"
        assert answered.attributes["lorag.adapter"] == "base"
        assert answered.attributes["lorag.abstained"] is answer.abstained
        [retrieve] = named(trace, "retrieve")
        assert retrieve.attributes is not None
        assert retrieve.attributes["lorag.retrieval.hits"] == runtime.settings.retrieval.top_k
        assert retrieve.attributes["lorag.retrieval.top_score"] == answer.sources[0].score
        [generate] = named(trace, "generate")
        assert generate.attributes is not None
        assert generate.attributes["gen_ai.request.model"] == model
        assert generate.attributes["gen_ai.usage.input_tokens"] == answer.timings["prompt_tokens"]
        assert generate.attributes["gen_ai.usage.output_tokens"] == count(draft) > 0
        assert generate.attributes["gen_ai.request.max_tokens"] == 16
        # no question text by default (api.log_question_text is off), nor any answer text
        values = attribute_values(trace)
        assert not [v for v in values if answer.question in v or answer.text.strip() in v]
        assert "lorag.question" not in answered.attributes


def test_question_text_is_on_the_trace_only_when_the_audit_log_may_keep_it(
    tiny_settings: Settings, docs: Path, spans: InMemorySpanExporter
) -> None:
    api = tiny_settings.api.model_copy(update={"log_question_text": True})
    for runtime in _runtime(_settings(tiny_settings, api=api), docs):
        spans.clear()
        runtime.engine.ask(QUESTIONS[0], "kb")
    [trace] = by_trace(spans.get_finished_spans())
    attributes = root(trace).attributes
    assert attributes is not None and attributes["lorag.question"] == QUESTIONS[0]


def test_a_batch_gives_each_question_its_own_trace(
    runtime: Runtime, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    answers = runtime.engine.ask_batch(QUESTIONS, "kb")

    traces = by_trace(spans.get_finished_spans())
    assert len(traces) == len(answers) == 2
    for trace in traces:
        assert shape(trace) == ANSWERED
        for name in ("retrieve", "generate"):
            [span] = named(trace, name)
            assert span.attributes is not None and span.attributes["lorag.batch_size"] == 2
        [generate] = named(trace, "generate")
        assert generate.attributes is not None
        assert generate.attributes["gen_ai.usage.output_tokens"] > 0


def test_a_reranked_retrieval_has_its_rerank_span(
    tiny_settings: Settings, docs: Path, tiny_cross_encoder_dir: Path, spans: InMemorySpanExporter
) -> None:
    settings = _settings(tiny_settings)
    retrieval = settings.retrieval.model_copy(update={"reranker": str(tiny_cross_encoder_dir)})
    for runtime in _runtime(settings.model_copy(update={"retrieval": retrieval}), docs):
        spans.clear()
        answer = runtime.engine.ask(QUESTIONS[0], "kb")
    [trace] = by_trace(spans.get_finished_spans())
    assert shape(trace) == sorted([*ANSWERED, ("retrieve", "rerank")])
    [rerank] = named(trace, "rerank")
    assert rerank.attributes is not None
    assert rerank.attributes["lorag.rerank.model"] == str(tiny_cross_encoder_dir)
    assert rerank.attributes["lorag.rerank.top_score"] == answer.sources[0].rerank_score


def test_a_closed_book_answer_is_traced_without_retrieval(
    runtime: Runtime, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    list(runtime.engine.stream_closed_book(QUESTIONS[0]))
    [trace] = by_trace(spans.get_finished_spans())
    assert shape(trace) == [("", "answer"), ("answer", "generate")]


def test_an_answer_that_fails_leaves_its_trace_marked_failed(
    runtime: Runtime, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    with pytest.raises(AdapterError, match="nope"):  # the generator refuses an unknown adapter
        runtime.engine.ask(QUESTIONS[0], "kb", adapter="nope")
    [trace] = by_trace(spans.get_finished_spans())
    assert shape(trace) == ANSWERED
    for span in (root(trace), *named(trace, "generate")):
        assert span.status.status_code is StatusCode.ERROR
        assert span.events and span.events[0].name == "exception"
