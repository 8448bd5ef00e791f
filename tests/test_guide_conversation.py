"""A 3-turn conversation over the bundled guide on the default models, through the official
``openai`` client with ``model="guide"`` and nothing else, against a live server: the follow-ups
(which lean on the first turn) are answered from, and cite, the right guide page; asked
alone, without the conversation, one of them does not get there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from assistant.api import create_app
from assistant.core.settings import ApiKey, ApiSettings, Settings
from assistant.runtime import Runtime
from tests.api.conftest import live_server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CONVERSATIONS = REPO / "examples" / "guide-conversations.jsonl"
KEY = "guide-reader-0123456789"


def conversation(name: str) -> list[dict[str, Any]]:
    with CONVERSATIONS.open(encoding="utf-8") as lines:
        found = [json.loads(line) for line in lines if line.strip()]
    return next(c["turns"] for c in found if c["id"] == name)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("guide-chat") / "data",
        api=ApiSettings(keys=[ApiKey(id="reader", key=KEY, permissions={"guide": "read"})]),
    )
    runtime = Runtime(settings)
    try:
        assert runtime.ingestor("guide").ingest([REPO / "examples" / "docs"]).ok
        with live_server(create_app(settings, runtime)) as url:
            yield openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    finally:
        runtime.close()


def cited(completion: Any) -> set[str]:
    return {Path(c["source"]).name for c in (completion.model_extra or {})["citations"]}


@pytest.mark.parametrize("name", ["models", "deleting"])
def test_follow_ups_cite_the_right_page_with_model_guide_alone(
    client: openai.OpenAI, name: str
) -> None:
    turns = conversation(name)
    messages: list[dict[str, str]] = []
    for n, turn in enumerate(turns, start=1):
        messages.append({"role": "user", "content": turn["question"]})
        completion = client.chat.completions.create(model="guide", messages=messages)
        answer = completion.choices[0].message.content or ""
        extra = completion.model_extra or {}
        print(f"turn {n}: {turn['question']!r} asked as {extra['query']!r} -> {answer!r}")
        assert extra["collection"] == "guide"
        assert cited(completion) & set(turn["source"]), (n, answer, cited(completion))
        messages.append({"role": "assistant", "content": answer})
    missed = []
    for turn in turns[1:]:
        alone = client.chat.completions.create(
            model="guide", messages=[{"role": "user", "content": turn["question"]}]
        )
        print(f"alone: {turn['question']!r} -> {alone.choices[0].message.content!r}")
        if (alone.model_extra or {})["abstained"] or not (cited(alone) & set(turn["source"])):
            missed.append(turn["question"])
    assert missed  # without the first turn, a follow-up does not get to its page
