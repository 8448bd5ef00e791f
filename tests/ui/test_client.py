"""The UI's HTTP client against the real API: typed answers, the answer stream, and every kind
of refusal turned into one readable message."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import KEYS, QUESTION
from tests.ui.conftest import ADMIN_KEY, LiveApi
from ui.client import ApiError, LoragClient, StreamDone, StreamToken, parse_events

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def admin(live_api: LiveApi) -> Iterator[LoragClient]:
    client = LoragClient(live_api.url, ADMIN_KEY)
    yield client
    client.close()


def test_collections_documents_and_adapters_come_back_typed(admin: LoragClient) -> None:
    kb = next(c for c in admin.collections() if c["name"] == "kb")
    assert kb["documents"] == 2 and kb["chunks"] >= 2
    documents = admin.documents("kb")
    assert sorted(d["source"].rsplit("/", 1)[-1] for d in documents) == ["leave.txt", "travel.md"]
    assert all(d["chunk_count"] >= 1 and d["ingested_at"] > 0 for d in documents)
    assert {"ops@1", "ops@2"} <= {a["ref"] for a in admin.adapters()}


def test_a_streamed_answer_is_its_draft_then_the_same_answer_as_asked_whole(
    admin: LoragClient, live_api: LiveApi
) -> None:
    events = list(admin.ask_stream(QUESTION, "kb", adapter="base"))
    assert isinstance(events[-1], StreamDone)
    assert all(isinstance(event, StreamToken) for event in events[:-1]) and len(events) > 1
    body = {"question": QUESTION, "collection": "kb", "adapter": "base"}
    whole = httpx.post(f"{live_api.url}/v1/ask", json=body, headers=ADMIN_HEADERS).json()
    assert events[-1].answer["answer"] == whole["answer"]
    assert events[-1].answer["collection"] == "kb" and whole["adapter"] is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CASES: dict[str, tuple[str | None, Callable[[LoragClient], Any], int | None, list[str]]] = {
    "no key": (None, lambda c: c.collections(), 401, ["refused the key", "LORAG_UI__API_KEY"]),
    "wrong key": (
        "wrong-key-0123456789",
        lambda c: c.collections(),
        401,
        ["refused the key (401)", "sidebar"],
    ),
    "no right": (
        KEYS["reader"][0],
        lambda c: c.delete_document("kb", "x"),
        403,
        ["may not do that (403)", "key 'reader'", "administrator"],
    ),
    "unknown collection": (
        ADMIN_KEY,
        lambda c: c.documents("nope"),
        404,
        ["Not found (404)", "'nope'"],
    ),
    "existing collection": (
        ADMIN_KEY,
        lambda c: c.create_collection("kb"),
        409,
        ["Conflict (409)", "already exists"],
    ),
    "upload too large": (
        ADMIN_KEY,
        lambda c: c.upload("kb", [("big.txt", b"x" * (1024 * 1024 + 10))]),
        413,
        ["Too large (413)", "max_upload_mb"],
    ),
    "unsupported file": (
        ADMIN_KEY,
        lambda c: c.upload("kb", [("tool.exe", b"MZ")]),
        415,
        ["Unsupported file type (415)", "tool.exe"],
    ),
    "empty question": (
        ADMIN_KEY,
        lambda c: list(c.ask_stream("   ", "kb")),
        422,
        ["Invalid request (422)", "question is empty"],
    ),
    "bad stream request": (
        ADMIN_KEY,
        lambda c: list(c.ask_stream(QUESTION, "kb", adapter="ghost")),
        404,
        ["Not found (404)", "'ghost'"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_refusals_are_one_readable_message(live_api: LiveApi, case: str) -> None:
    key, call, status, named = CASES[case]
    client = LoragClient(live_api.url, key)
    with pytest.raises(ApiError) as raised:
        call(client)
    assert raised.value.status == status
    for part in named:
        assert part in raised.value.message
    assert "Traceback" not in raised.value.message


def test_an_api_that_is_not_there_is_named_with_what_to_do() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ApiError) as raised:
        LoragClient(url).collections()
    assert raised.value.status is None
    assert f"The lorag API at {url} cannot be reached" in raised.value.message
    assert "lorag serve" in raised.value.message


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (503, 2.0, "The assistant is busy or not ready (503): queue full. Try again in 2 s."),
        (429, 30.0, "Too many requests (429): queue full. Try again in 30 s."),
        (500, None, "The API failed (500): queue full."),
        (418, None, "The request was refused (418): queue full."),
    ],
)
def test_busy_and_failing_servers_read_as_sentences(
    status: int, retry_after: float | None, expected: str
) -> None:
    assert ApiError(status, "queue full", retry_after).message == expected


def test_server_sent_events_are_parsed_frame_by_frame() -> None:
    lines = [
        "event: token",
        'data: {"text": "Hel"}',
        "",
        ": a comment line",
        "event: token",
        'data: {"text": "lo"}',
        "",
        "event: done",
        'data: {"answer":',
        'data: "Hello"}',
        "",
    ]
    assert list(parse_events(lines)) == [
        ("token", {"text": "Hel"}),
        ("token", {"text": "lo"}),
        ("done", {"answer": "Hello"}),
    ]
