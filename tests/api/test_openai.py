"""The OpenAI-compatible routes through the official ``openai`` client and LangChain's
``ChatOpenAI``, unchanged, against a live uvicorn server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.api.conftest import KEYS, QUESTION, live_server, seeded_app

KEY = KEYS["reader"][0]


@pytest.fixture(scope="module")
def base_url(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_generator_dir: Path,
    tiny_embedder_dir: Path,
    loras: list[Path],
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("live")
    with (
        seeded_app(root, tiny_generator_dir, tiny_embedder_dir, loras) as (app, _, _),
        live_server(app) as url,
    ):
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)


def test_models_are_listed(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids == ["lorag", "kb", "ops", "ops@1", "ops@2", "kb:ops", "kb:ops@1", "kb:ops@2"]


def test_a_completion_carries_its_citations(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="lorag",
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": QUESTION},
        ],
        extra_body={"collection": "kb"},
    )
    assert completion.object == "chat.completion" and completion.model == "lorag"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    extra = completion.model_extra or {}
    assert extra["collection"] == "kb" and isinstance(extra["citations"], list)
    assert isinstance(extra["abstained"], bool)
    assert completion.usage is not None and completion.usage.completion_tokens >= 0
    # the whole prompt the model read (instructions, three sources, the question): ~400 tokens
    assert completion.usage.prompt_tokens > 10 * len(QUESTION.split())
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_a_stream_ends_with_the_citations(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="ops@2",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        max_tokens=8,
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(chunk.model == "ops@2" for chunk in chunks)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason in ("stop", "length")
    assert isinstance((last.model_extra or {})["citations"], list)
    assert text or (last.model_extra or {})["abstained"]


def test_errors_reach_the_client_as_openai_errors(base_url: str, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="unknown adapter 'gpt-4o'"):
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": QUESTION}]
        )
    stranger = openai.OpenAI(base_url=base_url, api_key="wrong-key-0123456789", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()
    with pytest.raises(openai.PermissionDeniedError, match="collection 'other'"):
        client.chat.completions.create(
            model="lorag",
            messages=[{"role": "user", "content": QUESTION}],
            extra_body={"collection": "other"},
        )


def test_langchain_chat_openai_works_unchanged(base_url: str) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=base_url, api_key=KEY, model="ops", max_retries=0)
    reply = chat.invoke(QUESTION)
    assert isinstance(reply.content, str) and reply.content
    assert reply.response_metadata["model_name"] == "ops"


def test_a_collection_is_a_model_and_picks_its_adapter(client: openai.OpenAI) -> None:
    asked = [{"role": "user", "content": QUESTION}]
    by_collection = client.chat.completions.create(model="kb", messages=asked, max_tokens=8)
    assert (by_collection.model_extra or {})["collection"] == "kb"
    assert (by_collection.model_extra or {})["adapter"] is None  # kb is bound to no adapter
    with_adapter = client.chat.completions.create(model="kb:ops@2", messages=asked, max_tokens=8)
    extra = with_adapter.model_extra or {}
    assert extra["collection"] == "kb" and extra["adapter"] == "ops@2"
    promoted = client.chat.completions.create(model="kb:ops", messages=asked, max_tokens=8)
    assert (promoted.model_extra or {})["adapter"] == "ops@1"
    base = client.chat.completions.create(model="kb:base", messages=asked, max_tokens=8)
    assert (base.model_extra or {})["adapter"] is None
    with pytest.raises(openai.BadRequestError, match="names the collection 'kb' but the"):
        client.chat.completions.create(
            model="kb", messages=asked, extra_body={"collection": "other"}
        )
    with pytest.raises(openai.PermissionDeniedError, match="collection 'other'"):
        client.chat.completions.create(model="other:ops", messages=asked)


def test_earlier_messages_are_the_conversation(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="kb",
        messages=[
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Which city has a hotel limit?"},
            {"role": "assistant", "content": "Amsterdam"},
            {"role": "user", "content": "What is the limit there per night?"},
        ],
        max_tokens=8,
    )
    extra = completion.model_extra or {}
    assert "query" in extra  # the follow-up's rewrite, or null when none was usable
    assert extra["query"] is None or "limit" in extra["query"].lower()
    assert completion.choices[0].message.content
