"""Follow-up questions: when a question needs the conversation, how it is rewritten, and what
the answer's prompt shows; the engine over the tiny real models and the real embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.conversation import (
    Conversation,
    Turn,
    condense_messages,
    history_messages,
    keeps_words,
    search_text,
    standalone_question,
    stands_alone,
    with_conversation,
)
from assistant.core.protocols import Generator
from assistant.core.settings import Settings
from assistant.runtime import Runtime

API = Turn("Which command starts the HTTP API?", "lorag serve")


@pytest.mark.parametrize(
    ("question", "alone"),
    [
        ("Which command lists the documents in a collection?", True),
        ("Is there a way to delete a document?", True),
        ("What is the setting that sets the port?", True),
        ("How many embedder tokens long can a chunk be at most?", True),
        ("Which port does it listen on by default?", False),
        ("And how do I list them?", False),
        ("What does that command show for each one?", False),
        ("Which smaller one also comes packaged?", False),
        ("Which setting changes that overlap?", False),
        ("Where was she born?", False),
        ("Why?", False),
    ],
)
def test_a_question_that_points_back_does_not_stand_alone(question: str, alone: bool) -> None:
    assert stands_alone(question) is alone


def test_a_rewrite_must_keep_the_questions_own_words() -> None:
    assert keeps_words("Which setting changes it?", "Which setting changes the data folder?")
    assert not keeps_words("Which setting changes it?", "Where does lorag keep its data?")
    assert not keeps_words("Which setting changes it?", "")


def test_a_question_that_still_points_back_is_searched_with_the_questions_before_it() -> None:
    ui = Turn("Which command opens the browser UI?", "lorag ui")
    port = Turn("On which port does it listen?", "8501")
    assert search_text([ui, port], "Which key does it send?") == (
        "Which command opens the browser UI? On which port does it listen? Which key does it send?"
    )
    assert search_text([ui, port], "Which key does the UI send?") == "Which key does the UI send?"
    assert search_text([], "Which key does it send?") == "Which key does it send?"


def test_the_history_keeps_the_newest_whole_turns_that_fit() -> None:
    turns = [Turn(f"question {i}", "answer " * 10) for i in range(5)]

    def words(text: str) -> int:
        return len(text.split())

    assert history_messages(turns, words, budget_tokens=1000, most=2) == [
        {"role": "user", "content": "question 3"},
        {"role": "assistant", "content": turns[3].answer},
        {"role": "user", "content": "question 4"},
        {"role": "assistant", "content": turns[4].answer},
    ]
    one_turn = words("question 4") + words(turns[4].answer) + 8
    assert len(history_messages(turns, words, one_turn + 5, most=5)) == 2
    assert history_messages(turns, words, one_turn - 1, most=5) == []
    assert history_messages(turns, words, 1000, most=0) == []


def test_instructions_join_the_system_message_and_turns_go_before_the_question() -> None:
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    history = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    joined = with_conversation(messages, history, " Answer in German. ")
    assert joined[0] == {
        "role": "system",
        "content": "S\n\nThe user's instructions: Answer in German.",
    }
    assert joined[1:] == [*history, messages[1]]
    assert with_conversation(messages, [], "") == messages


class Recording:
    """A generator that passes every call to a real one and keeps the messages it was given."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.calls: list[list[dict[str, str]]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.generator, name)

    def stream(
        self, messages: list[dict[str, str]], *args: object, **kwargs: object
    ) -> Iterator[str]:
        self.calls.append(messages)
        return self.generator.stream(messages, *args, **kwargs)  # type: ignore[arg-type]


class Rewriting(Recording):
    """:class:`Recording`, but a condensing prompt is answered with ``rewrite``, as a model that
    rewrites well would."""

    def __init__(self, generator: Generator, rewrite: str) -> None:
        super().__init__(generator)
        self.rewrite = rewrite

    def stream(
        self, messages: list[dict[str, str]], *args: object, **kwargs: object
    ) -> Iterator[str]:
        if messages[0]["content"] == condense_messages([], "")[0]["content"]:
            self.calls.append(messages)
            return iter([f"Rewritten question: {self.rewrite}\nmore text"])
        return super().stream(messages, *args, **kwargs)


def test_the_rewrite_is_read_from_the_first_line_and_checked(tiny_settings: Settings) -> None:
    runtime = Runtime(tiny_settings)
    generator = runtime.generator
    turns = [API]
    good = Rewriting(generator, "Which port does the HTTP API listen on by default?")
    asked = "Which port does it listen on by default?"
    assert standalone_question(good, turns, asked) == good.rewrite  # type: ignore[arg-type]
    assert good.calls == [condense_messages(turns, asked)]
    off = Rewriting(generator, "Which command starts the HTTP API?")  # drops "port", "listen"
    assert standalone_question(off, turns, asked) == asked  # type: ignore[arg-type]
    alone = Rewriting(generator, "unused")
    assert standalone_question(alone, turns, "Which command lists documents?") == (  # type: ignore[arg-type]
        "Which command lists documents?"
    )
    assert alone.calls == []
    real = standalone_question(generator, turns, asked)  # the tiny model's own rewrite, or none
    assert real == asked or keeps_words(asked, real)


@pytest.fixture
def runtime(tiny_settings: Settings, tmp_path: Path) -> Iterator[Runtime]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "api.md").write_text(
        "# The HTTP API\n\n`lorag serve` starts the HTTP API. It listens on port 8000 by "
        "default; `LORAG_API__PORT` changes the port.\n",
        encoding="utf-8",
    )
    (docs / "leave.txt").write_text(
        "Employees get 25 days of paid leave per year. Unused days expire in March.\n",
        encoding="utf-8",
    )
    rt = Runtime(tiny_settings)
    assert rt.ingestor("kb").ingest([docs]).ok
    rt.engine.retrieval = rt.engine.retrieval.model_copy(
        update={"min_similarity": 0.0, "min_question_coverage": 0.0}
    )
    yield rt
    rt.close()


def _spy(runtime: Runtime, generator: Recording) -> None:
    runtime.engine.generator = generator  # type: ignore[assignment]


def test_a_follow_up_is_rewritten_searched_and_answered_with_the_turns_before_it(
    runtime: Runtime,
) -> None:
    rewrite = "Which port does the HTTP API listen on by default?"
    spy = Rewriting(runtime.generator, rewrite)
    _spy(runtime, spy)
    conversation = Conversation(turns=(API,), instructions="Answer briefly.")
    answer = runtime.engine.ask(
        "Which port does it listen on by default?", "kb", conversation=conversation
    )
    assert answer.question == "Which port does it listen on by default?"
    assert answer.query == rewrite
    assert "condense_s" in answer.timings
    assert answer.sources[0].source.endswith("api.md")
    condense, prompt = spy.calls[0], spy.calls[1]
    assert condense == condense_messages([API], "Which port does it listen on by default?")
    assert prompt[0]["content"].endswith("The user's instructions: Answer briefly.")
    assert prompt[1:3] == [
        {"role": "user", "content": API.question},
        {"role": "assistant", "content": API.answer},
    ]
    assert prompt[3]["role"] == "user" and rewrite in prompt[3]["content"]


def test_a_question_that_stands_alone_is_not_rewritten(runtime: Runtime) -> None:
    spy = Recording(runtime.generator)
    _spy(runtime, spy)
    question = "How many days of paid leave do employees get?"
    answer = runtime.engine.ask(question, "kb", conversation=Conversation(turns=(API,)))
    assert answer.query is None and "condense_s" not in answer.timings
    assert [m["role"] for m in spy.calls[0]] == ["system", "user", "assistant", "user"]


def test_without_a_conversation_the_prompt_is_unchanged(runtime: Runtime) -> None:
    spy = Recording(runtime.generator)
    _spy(runtime, spy)
    runtime.engine.ask("How many days of paid leave?", "kb")
    with_none = spy.calls[0]
    runtime.engine.generation = runtime.engine.generation.model_copy(update={"history_turns": 0})
    runtime.engine.ask(
        "How many days of paid leave?", "kb", conversation=Conversation(turns=(API,))
    )
    assert [m["role"] for m in with_none] == ["system", "user"]
    assert spy.calls[-1] == with_none  # history_turns 0: the turns are not shown
