"""The query engine with tiny real models over the real embedded store."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core.errors import CollectionNotFoundError, InvalidQuestionError
from assistant.core.settings import Settings
from assistant.engine import Done, Token
from assistant.runtime import Runtime


@pytest.fixture
def runtime(tiny_settings: Settings, tmp_path: Path) -> Runtime:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text(
        "# Travel policy\n\nTrain tickets are reimbursed in second class.\n\n"
        "## Hotels\n\nThe hotel limit is 120 euros per night in Amsterdam.\n",
        encoding="utf-8",
    )
    (docs / "leave.txt").write_text(
        "Employees get 25 days of paid leave per year. Unused days expire in March.\n",
        encoding="utf-8",
    )
    rt = Runtime(tiny_settings)
    assert rt.ingestor("kb").ingest([docs]).ok
    yield rt
    rt.close()


def test_stream_yields_tokens_then_the_answer(runtime: Runtime) -> None:
    events = list(runtime.engine.stream("What is the hotel limit per night?", "kb"))
    assert isinstance(events[-1], Done)
    assert all(isinstance(e, Token) for e in events[:-1]) and len(events) > 1
    answer = events[-1].answer
    retrieved = {s.chunk_id for s in answer.sources}
    assert answer.sources and [s.n for s in answer.sources] == list(range(1, len(retrieved) + 1))
    assert {c.chunk_id for c in answer.citations} <= retrieved
    assert "retrieve_s" in answer.timings and "total_s" in answer.timings
    if not answer.abstained:
        assert answer.text == "".join(e.text for e in events[:-1]).strip()


def test_ask_returns_the_streamed_answer(runtime: Runtime) -> None:
    streamed = [e for e in runtime.engine.stream("paid leave days", "kb") if isinstance(e, Done)]
    asked = runtime.engine.ask("paid leave days", "kb")
    assert asked.text == streamed[0].answer.text  # greedy decoding is deterministic


def test_weak_retrieval_abstains_without_generating(runtime: Runtime) -> None:
    runtime.engine.retrieval = runtime.engine.retrieval.model_copy(update={"min_similarity": 1.01})
    events = list(runtime.engine.stream("What is the hotel limit?", "kb"))
    answer = events[-1].answer
    assert answer.abstained
    assert answer.text == runtime.engine.template.abstain_answer
    assert answer.citations == []
    assert [e.text for e in events[:-1]] == [answer.text]
    assert "first_token_s" not in answer.timings  # the model was not called


def test_a_withdrawn_draft_is_drafted_once_more_without_its_first_token(
    runtime: Runtime,
) -> None:
    engine = runtime.engine
    engine.generation = engine.generation.model_copy(update={"min_support": 1.01})  # none holds
    asked: list[tuple[str, ...]] = []
    stream = engine.generator.stream

    def recording(*args: object, avoid: tuple[str, ...] | list[str] = (), **kwargs: object):
        asked.append(tuple(avoid))
        return stream(*args, avoid=avoid, **kwargs)  # type: ignore[arg-type]

    engine.generator.stream = recording  # type: ignore[method-assign]
    events = list(engine.stream("What is the hotel limit per night?", "kb"))
    draft = "".join(e.text for e in events[:-1])
    answer = events[-1].answer
    assert asked == [(), (draft,)]  # the second draft may not start as the first did
    assert answer.abstained and answer.abstain_reason == "unsupported"
    assert "redraft_s" in answer.timings
    asked.clear()
    batch = engine.ask_batch(["What is the hotel limit per night?"], "kb")
    assert asked == [(draft,)] and batch[0].abstain_reason == "unsupported"  # drafts batched


@pytest.mark.parametrize("question", ["", "   \n"])
def test_empty_question_is_refused(runtime: Runtime, question: str) -> None:
    with pytest.raises(InvalidQuestionError, match="empty"):
        runtime.engine.ask(question, "kb")


def test_overlong_question_is_refused(runtime: Runtime) -> None:
    with pytest.raises(InvalidQuestionError, match="over the limit"):
        runtime.engine.ask("why " * 1000, "kb")


def test_unknown_collection_is_named(runtime: Runtime) -> None:
    with pytest.raises(CollectionNotFoundError, match=r"'nope'.*kb"):
        runtime.engine.ask("hotel limit", "nope")


def test_retrieval_finds_the_matching_section(runtime: Runtime) -> None:
    hits = runtime.engine.retrieve("hotel limit euros per night", "kb", top_k=3)
    assert hits[0].chunk.heading and "Hotels" in hits[0].chunk.heading
    assert hits[0].chunk.title == "Travel policy"
