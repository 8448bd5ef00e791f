"""Limits: a full generation queue (503 + Retry-After), the request timeout, body and upload
sizes (413), question length, the cap on generated tokens; the server answers normally after."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.api.auth import Principal
from tests.api.conftest import QUESTION, Served, auth, serve
from tests.api.test_ask import events

ASK = {"question": QUESTION, "collection": "kb"}


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_generator_dir: Path,
    tiny_embedder_dir: Path,
    loras: list[Path],
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("limited")
    with serve(
        root,
        tiny_generator_dir,
        tiny_embedder_dir,
        loras,
        queue_size=2,
        request_timeout_s=2.0,
        max_body_kb=1,
        max_upload_mb=0.01,
        max_question_chars=50,
        max_new_tokens=4,
    ) as app:
        yield app


@pytest.fixture
def busy(limited: Served) -> Iterator[threading.Event]:
    """The generation worker held by a task that waits for the event (set at the end)."""
    gate = threading.Event()
    held = limited.services.queue.submit(gate.wait)
    yield gate
    gate.set()
    held.result(timeout=30)


def test_a_full_queue_is_refused_with_503_and_retry_after(
    limited: Served, busy: threading.Event
) -> None:
    waiting = limited.services.queue.submit(lambda: None)  # the second and last place
    client = limited.client
    refused = [
        client.post("/v1/ask", json=ASK, headers=auth("reader")),
        client.post("/v1/ask", json={**ASK, "stream": True}, headers=auth("reader")),
        client.post(
            "/v1/chat/completions",
            json={"model": "lorag", "messages": [{"role": "user", "content": QUESTION}]},
            headers=auth("admin"),
        ),
    ]
    for response in refused:
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) >= 1
        assert "api.queue_size" in response.json()["detail"]
    busy.set()
    waiting.result(timeout=30)
    assert client.post("/v1/ask", json=ASK, headers=auth("reader")).status_code == 200
    metrics = client.get("/metrics").text
    [rejected] = [line for line in metrics.splitlines() if 'rejected_total{reason="full"}' in line]
    assert float(rejected.split()[-1]) >= 3
    assert "lorag_generation_queue_depth 0.0" in metrics


def test_an_answer_past_the_timeout_is_dropped_with_503(
    limited: Served, busy: threading.Event
) -> None:
    client = limited.client
    late = client.post("/v1/ask", json=ASK, headers=auth("reader"))
    assert late.status_code == 503
    assert "no answer within 2 s (api.request_timeout_s)" in late.json()["detail"]
    with client.stream(
        "POST", "/v1/ask", json={**ASK, "stream": True}, headers=auth("reader")
    ) as response:
        stream = events(response.read().decode())
    assert [kind for kind, _ in stream] == ["error"]
    assert "api.request_timeout_s" in stream[0][1]["detail"]


def test_the_server_answers_normally_after_overload(limited: Served) -> None:
    response = limited.client.post("/v1/ask", json=ASK, headers=auth("reader"))
    assert response.status_code == 200 and response.json()["answer"]


def test_a_body_over_the_limit_is_a_413(limited: Served) -> None:
    big = {**ASK, "question": "x" * 2000}
    response = limited.client.post("/v1/ask", json=big, headers=auth("reader"))
    assert response.status_code == 413
    assert "1 KiB (setting api.max_body_kb)" in response.json()["detail"]
    chunked = limited.client.post(
        "/v1/ask",
        content=iter([b'{"question": "', b"x" * 2000, b'"}']),
        headers={**auth("reader"), "Content-Type": "application/json"},
    )
    assert chunked.status_code == 413
    # a multipart body to a route that takes no file has the JSON limit, not the upload one
    multipart = limited.client.post(
        "/v1/ask", files=[("question", ("q.txt", b"x" * 5000))], headers=auth("reader")
    )
    assert multipart.status_code == 413
    assert "1 KiB (setting api.max_body_kb)" in multipart.json()["detail"]


def test_an_upload_over_the_limit_is_a_413_and_leaves_nothing(limited: Served) -> None:
    jobs_before = limited.client.get("/v1/jobs", headers=auth("admin")).json()
    response = limited.client.post(
        "/v1/collections/kb/documents",
        files=[("files", ("big.txt", b"word " * 5000))],
        headers=auth("admin"),
    )
    assert response.status_code == 413
    assert "api.max_upload_mb" in response.json()["detail"]
    assert limited.client.get("/v1/jobs", headers=auth("admin")).json() == jobs_before
    assert not list((limited.settings.data_dir / "api" / "work").iterdir())


def test_the_question_length_is_capped(limited: Served) -> None:
    response = limited.client.post(
        "/v1/ask", json={**ASK, "question": "why " * 20}, headers=auth("reader")
    )
    assert response.status_code == 422
    assert "over the limit of 50" in response.json()["detail"]


def test_generated_tokens_are_capped(limited: Served) -> None:
    question = limited.services.answering.question(
        Principal("admin", {"*": "admin"}),
        text=QUESTION,
        collection="kb",
        adapter=None,
        max_new_tokens=1000,
    )
    assert question.max_new_tokens == 4
    with limited.client.stream(
        "POST",
        "/v1/ask",
        json={**ASK, "max_new_tokens": 1000, "stream": True},
        headers=auth("reader"),
    ) as response:
        stream = events(response.read().decode())
    assert len([kind for kind, _ in stream if kind == "token"]) <= 4
