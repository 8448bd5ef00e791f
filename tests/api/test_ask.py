"""``POST /v1/ask``: answers and their citations, streamed or whole, with the base model or
adapters (one base, several adapters, never reloaded), and the requests it refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import QUESTION, Served, auth


def events(text: str) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a server-sent event stream."""
    parsed = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        parsed.append((lines["event"], json.loads(lines["data"])))
    return parsed


def test_an_answer_comes_with_its_sources_adapter_and_timings(served: Served) -> None:
    response = served.client.post(
        "/v1/ask", json={"question": QUESTION, "collection": "kb"}, headers=auth("reader")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["collection"] == "kb" and body["answer"]
    assert body["adapter"] is None and body["adapter_version"] is None
    assert isinstance(body["abstained"], bool)
    timings = body["timings"]
    assert timings["total_ms"] >= timings["retrieve_ms"] >= 0 and timings["queue_ms"] >= 0
    if timings["first_token_ms"] is not None:  # the model was given a prompt: its length
        assert timings["prompt_tokens"] > len(QUESTION.split())
    for citation in body["citations"]:
        assert citation["source"].endswith(("travel.md", "leave.txt")) and citation["chunk_id"]
    # The passages given to the model come back whatever the answer, abstention included.
    assert body["sources"] and [s["n"] for s in body["sources"]] == list(
        range(1, len(body["sources"]) + 1)
    )
    cited = {(c["n"], c["chunk_id"]) for c in body["citations"]}
    assert cited <= {(s["n"], s["chunk_id"]) for s in body["sources"]}
    assert all(s["rerank_score"] is None for s in body["sources"])  # no reranker configured
    assert response.headers["x-request-id"]


def test_a_streamed_answer_is_tokens_then_the_answer(served: Served) -> None:
    with served.client.stream(
        "POST",
        "/v1/ask",
        json={"question": QUESTION, "collection": "kb", "stream": True},
        headers=auth("reader"),
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response.read().decode())
    kinds = [kind for kind, _ in stream]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"token"} and len(kinds) > 1
    done = stream[-1][1]
    assert {"answer", "citations", "abstained", "timings", "adapter"} <= done.keys()
    whole = served.client.post(
        "/v1/ask", json={"question": QUESTION, "collection": "kb"}, headers=auth("reader")
    ).json()
    assert done["answer"] == whole["answer"]  # greedy decoding: the same answer either way


def test_one_base_serves_every_adapter_without_reloading(served: Served) -> None:
    generator = served.runtime.generator
    answers = {}
    for adapter in ("ops@1", "ops@2", "ops", "base", None):
        body = served.client.post(
            "/v1/ask",
            json={"question": QUESTION, "collection": "kb", "adapter": adapter, "top_k": 1},
            headers=auth("reader"),
        ).json()
        answers[adapter] = body
    assert (answers["ops@2"]["adapter"], answers["ops@2"]["adapter_version"]) == ("ops", 2)
    assert answers["ops"]["adapter_version"] == 1  # the promoted version
    assert answers["base"]["adapter"] is None and answers[None]["adapter"] is None
    assert served.runtime.generator is generator
    assert set(generator.adapters) == {"ops@1", "ops@2"}
    audit = [json.loads(line) for line in served.settings.data_dir.joinpath("audit.jsonl").open()]
    answered = [line for line in audit if line["action"] == "answer"]
    assert {(a["adapter"], a["adapter_version"]) for a in answered} >= {("ops", 1), ("ops", 2)}


def test_the_collection_binding_picks_the_adapter_unless_base_is_asked(served: Served) -> None:
    def ask(**extra: Any) -> dict[str, Any]:
        body = {"question": QUESTION, "collection": "kb", **extra}
        return served.client.post("/v1/ask", json=body, headers=auth("reader")).json()

    served.runtime.registry.bind("kb", "ops@2")
    try:
        bound, base = ask(), ask(adapter="base")
    finally:
        served.runtime.registry.bind("kb", None)
    assert (bound["adapter"], bound["adapter_version"]) == ("ops", 2)
    assert base["adapter"] is None


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"question": QUESTION, "collection": "nope"}, 404, "unknown collection 'nope'"),
        ({"question": QUESTION, "collection": "kb", "adapter": "ghost"}, 404, "'ghost'"),
        ({"question": QUESTION, "collection": "kb", "adapter": "ops@9"}, 404, "no version 9"),
        ({"question": QUESTION, "collection": "kb", "adapter": "../etc"}, 404, "'../etc'"),
        ({"question": "why " * 600, "collection": "kb"}, 422, "over the limit of 2000"),
        ({"question": "   ", "collection": "kb"}, 422, "question is empty"),
        ({"collection": "kb"}, 422, "body.question: Field required"),
        ({"question": QUESTION, "colection": "kb"}, 422, "body.colection"),
        ({"question": QUESTION, "top_k": 0}, 422, "body.top_k"),
        ({"question": 3}, 422, "body.question"),
    ],
)
def test_bad_requests_are_refused_naming_the_problem(
    served: Served, body: dict[str, Any], status: int, named: str
) -> None:
    response = served.client.post("/v1/ask", json=body, headers=auth("admin"))
    assert response.status_code == status, response.text
    assert named in response.json()["detail"]


def test_malformed_json_is_a_400(served: Served) -> None:
    response = served.client.post(
        "/v1/ask",
        content=b'{"question": "hotel',
        headers={**auth("admin"), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


def test_a_key_that_can_read_no_collection_is_told_how_to_make_one(served: Served) -> None:
    # "outsider" may read only "other", which does not exist yet
    chat = {
        "model": "lorag",
        "collection": "other",
        "messages": [{"role": "user", "content": "hi"}],
    }
    for path, body in (
        ("/v1/ask", {"question": QUESTION, "collection": "other"}),
        ("/v1/chat/completions", chat),
    ):
        response = served.client.post(path, json=body, headers=auth("outsider"))
        assert response.status_code == 400, response.text
        detail = response.json()["detail"]
        assert "no collection yet" in detail and "lorag ingest PATH --collection NAME" in detail


def test_history_makes_a_follow_up(served: Served) -> None:
    body = {
        "question": "What is the limit there per night?",
        "collection": "kb",
        "history": [{"question": "Which city has a hotel limit?", "answer": "Amsterdam"}],
    }
    response = served.client.post("/v1/ask", json=body, headers=auth("reader"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "query" in answer and answer["sources"]
    malformed = {**body, "history": [{"question": "only a question"}]}
    refused = served.client.post("/v1/ask", json=malformed, headers=auth("reader"))
    assert refused.status_code == 422 and "history.0.answer" in refused.json()["detail"]


def test_no_retrieval_answers_from_the_model_alone(served: Served) -> None:
    body = {"question": QUESTION, "collection": "kb", "no_retrieval": True}
    answer = served.client.post("/v1/ask", json=body, headers=auth("reader")).json()
    assert answer["sources"] == [] and answer["citations"] == []
    assert answer["timings"]["retrieve_ms"] == 0.0 and answer["timings"]["prompt_tokens"]
    refused = served.client.post(
        "/v1/ask", json={**body, "collection": "other"}, headers=auth("reader")
    )
    assert refused.status_code == 403  # the key's rights still apply
