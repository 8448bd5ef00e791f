"""Every route: 401 without a valid key, 403 outside the key's rights, allowed within them;
the open operations routes; keys required unless anonymous access is configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.api import create_app
from assistant.core.errors import ConfigError
from assistant.core.settings import ApiSettings, Settings
from tests.api.conftest import DOCS, QUESTION, Served, auth, serve

CSV = b"id,question\n1,What is the hotel limit?\n"


@pytest.fixture(scope="module")
def job_ids(served: Served) -> dict[str, str]:
    """A finished ingest job and a finished batch job on ``kb``, started by the admin key."""
    client = served.client
    ingest = client.post(
        "/v1/collections/kb/documents",
        files=[("files", ("travel.md", DOCS["travel.md"].encode()))],
        headers=auth("admin"),
    ).json()["job_id"]
    batch = client.post(
        "/v1/batch",
        files={"file": ("q.csv", CSV)},
        data={"collection": "kb"},
        headers=auth("admin"),
    ).json()["job_id"]
    assert served.wait(ingest)["status"] == "succeeded"
    assert served.wait(batch)["status"] == "succeeded"
    return {"ingest": ingest, "batch": batch}


def routes(jobs: dict[str, str]) -> list[tuple[str, str, dict[str, Any], str | None]]:
    """Every protected route: method, path, request arguments, a key without the right."""
    chat = {"model": "lorag", "messages": [{"role": "user", "content": QUESTION}]}
    upload = {"files": [("files", ("new.txt", b"New text about trains."))]}
    lora = {"lora_name": "x", "lora_path": "/no/such/adapter"}
    return [
        ("POST", "/v1/ask", {"json": {"question": QUESTION, "collection": "kb"}}, "outsider"),
        ("POST", "/v1/chat/completions", {"json": {**chat, "collection": "kb"}}, "outsider"),
        ("GET", "/v1/models", {}, None),
        ("GET", "/v1/collections", {}, None),
        ("POST", "/v1/collections", {"json": {"name": "kb"}}, "writer"),
        ("DELETE", "/v1/collections/kb", {}, "writer"),
        ("GET", "/v1/collections/kb/documents", {}, "outsider"),
        ("DELETE", "/v1/collections/kb/documents/nope", {}, "reader"),
        ("GET", "/v1/collections/kb/documents/nope/file", {}, "outsider"),
        ("GET", "/v1/collections/kb/documents/nope/passages/nope", {}, "outsider"),
        ("POST", "/v1/collections/kb/documents", upload, "reader"),
        ("GET", "/v1/jobs", {}, None),
        ("GET", f"/v1/jobs/{jobs['ingest']}", {}, "outsider"),
        ("POST", f"/v1/jobs/{jobs['ingest']}/cancel", {}, "reader"),
        ("GET", "/v1/adapters", {}, None),
        ("GET", "/v1/adapters/ops", {}, None),
        ("POST", "/v1/adapters/ops/promote", {"json": {"version": 2}}, "writer"),
        ("POST", "/v1/adapters/ops/rollback", {}, "outsider"),
        ("POST", "/v1/finetune", {"data": {"name": "x", "collection": "kb"}}, "writer"),
        (
            "POST",
            "/v1/batch",
            {"files": {"file": ("q.csv", CSV)}, "data": {"collection": "kb"}},
            "outsider",
        ),
        ("GET", f"/v1/batch/{jobs['batch']}/download", {}, "outsider"),
        ("POST", "/v1/feedback", {"json": {"answer_id": "nope", "rating": "up"}}, None),
        ("GET", "/v1/collections/kb/documents/nope/erasure", {}, "outsider"),
        ("GET", "/generate/v1/models", {}, None),
        ("POST", "/generate/v1/chat/completions", {"json": chat}, None),
        ("POST", "/generate/v1/load_lora_adapter", {"json": lora}, "writer"),
        ("POST", "/generate/v1/unload_lora_adapter", {"json": {"lora_name": "x"}}, "writer"),
    ]


def test_every_route_refuses_a_missing_or_wrong_key_and_keys_outside_their_rights(
    served: Served, job_ids: dict[str, str]
) -> None:
    client = served.client
    table = routes(job_ids)
    paths = served.app.openapi()["paths"]
    operations = {
        (m.upper(), p)
        for p, ops in paths.items()
        if p.startswith(("/v1/", "/generate/"))
        for m in ops
    }
    assert len(table) == len(operations)  # no route left out
    for method, path, arguments, outsider in table:
        missing = client.request(method, path, **arguments)
        assert missing.status_code == 401, (method, path, missing.text)
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "missing API key" in missing.json()["detail"]
        wrong = client.request(
            method, path, headers={"Authorization": "Bearer not-a-key-at-all"}, **arguments
        )
        assert wrong.status_code == 401, (method, path, wrong.text)
        assert wrong.json()["detail"] == "invalid API key"
        if outsider is not None:
            refused = client.request(method, path, headers=auth(outsider), **arguments)
            assert refused.status_code == 403, (method, path, refused.text)
            assert f"key {outsider!r} has no" in refused.json()["detail"]


def test_lists_show_only_what_the_key_may_see(served: Served, job_ids: dict[str, str]) -> None:
    client = served.client
    assert client.get("/v1/collections", headers=auth("outsider")).json() == []
    assert [c["name"] for c in client.get("/v1/collections", headers=auth("reader")).json()] == [
        "kb"
    ]
    assert client.get("/v1/jobs", headers=auth("outsider")).json() == []
    seen = {job["id"] for job in client.get("/v1/jobs", headers=auth("reader")).json()}
    assert set(job_ids.values()) <= seen


def test_rights_allow_what_they_name(served: Served, job_ids: dict[str, str]) -> None:
    client = served.client
    reader, writer = auth("reader"), auth("writer")
    assert client.get("/v1/collections/kb/documents", headers=reader).status_code == 200
    assert client.get(f"/v1/jobs/{job_ids['ingest']}", headers=reader).status_code == 200
    download = client.get(f"/v1/batch/{job_ids['batch']}/download", headers=reader)
    assert download.status_code == 200 and download.text.startswith("id,")
    # A writer may delete documents of kb (404: no such document), not create collections.
    missing = client.delete("/v1/collections/kb/documents/nope", headers=writer)
    assert missing.status_code == 404 and "'nope'" in missing.json()["detail"]
    # Cancelling an ended job is a conflict, for a key that holds the starting right.
    ended = client.post(f"/v1/jobs/{job_ids['ingest']}/cancel", headers=writer)
    assert ended.status_code == 409 and "already succeeded" in ended.json()["detail"]


def test_the_right_is_checked_before_existence(served: Served) -> None:
    response = served.client.get("/v1/collections/secret/documents", headers=auth("reader"))
    assert response.status_code == 403
    assert "collection 'secret'" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_operations_routes_need_no_key(served: Served, path: str) -> None:
    assert served.client.get(path).status_code == 200


def test_an_app_without_keys_is_refused_unless_anonymous(tiny_settings: Settings) -> None:
    with pytest.raises(ConfigError, match=r"no API keys.*LORAG_API__KEYS"):
        create_app(tiny_settings)


@pytest.fixture
def anonymous(tiny_settings: Settings) -> Iterator[TestClient]:
    settings = tiny_settings.model_copy(update={"api": ApiSettings(allow_anonymous=True)})
    with TestClient(create_app(settings)) as client:
        yield client


def test_anonymous_access_is_admin(anonymous: TestClient, tiny_settings: Settings) -> None:
    created = anonymous.post("/v1/collections", json={"name": "notes"})
    assert created.status_code == 201
    assert anonymous.get("/v1/collections").json()[0]["name"] == "notes"
    assert Path(tiny_settings.data_dir / "audit.jsonl").read_text().count('"anonymous"') == 1
    assert anonymous.get("/docs").status_code == 200  # no keys: an open server shows its docs


def test_with_keys_the_docs_are_served_only_when_asked_for(
    served: Served,
    tmp_path: Path,
    tiny_generator_dir: Path,
    tiny_embedder_dir: Path,
    loras: list[Path],
) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert served.client.get(path).status_code == 404, path
    root = tmp_path / "public-docs"
    root.mkdir()
    with serve(root, tiny_generator_dir, tiny_embedder_dir, loras, public_docs=True) as shown:
        assert shown.client.get("/docs").status_code == 200
        assert "/v1/ask" in shown.client.get("/openapi.json").json()["paths"]


def test_a_key_over_its_requests_per_minute_gets_429_with_retry_after(served: Served) -> None:
    client = served.client
    assert [client.get("/v1/collections", headers=auth("limited")).status_code for _ in "ab"] == [
        200,
        200,
    ]
    refused = client.get("/v1/collections", headers=auth("limited"))
    assert refused.status_code == 429
    assert refused.json()["detail"] == "key 'limited' is over its limit of requests per minute"
    assert 1 <= int(refused.headers["retry-after"]) <= 30  # a token every 30 s
    assert client.get("/v1/collections", headers=auth("reader")).status_code == 200  # no budget
    metrics = client.get("/metrics").text
    assert 'lorag_rate_limited_total{key_id="limited"} 1.0' in metrics
