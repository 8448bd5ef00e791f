"""Operations: health and readiness, Prometheus metrics, JSON request logs, the audit log."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.api import create_app
from assistant.api.logs import JsonFormatter
from assistant.core.settings import ApiKey, ApiSettings, Settings, StoreSettings
from tests.api.conftest import KEYS, QUESTION, Served, auth, serve

# qdrant-client warns that it cannot ask the (absent) server for its version.
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version")


def test_health_and_readiness(served: Served) -> None:
    assert served.client.get("/healthz").json() == {"status": "ok"}
    ready = served.client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["store"] == "ok"
    assert body["generator"] == served.settings.generator.model
    assert body["reranker"] is None


@pytest.fixture
def unreachable_store(tiny_settings: Settings) -> Iterator[TestClient]:
    """An app whose Qdrant server does not answer."""
    key, rights = KEYS["admin"]
    settings = tiny_settings.model_copy(
        update={
            "store": StoreSettings(url="http://127.0.0.1:9", timeout_s=1),
            "api": ApiSettings(keys=[ApiKey(id="admin", key=key, permissions=rights)]),
        }
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_not_ready_when_the_store_does_not_answer(unreachable_store: TestClient) -> None:
    response = unreachable_store.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not ready"
    assert response.json()["store"].startswith("unreachable")


def test_metrics_count_requests_latencies_tokens_and_the_queue(served: Served) -> None:
    client = served.client
    answer = client.post("/v1/ask", json={"question": QUESTION}, headers=auth("reader")).json()
    client.get("/v1/collections/nope/documents", headers=auth("admin"))
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'lorag_http_requests_total{method="POST",route="/v1/ask",status="200"}' in text
    assert (
        'lorag_http_requests_total{method="GET",route="/v1/collections/{name}/documents",'
        'status="404"}' in text
    )
    assert (
        'lorag_http_request_duration_seconds_bucket{le="0.5",method="POST",route="/v1/ask"}' in text
    )
    assert "lorag_generation_queue_depth 0.0" in text
    tokens = next(
        line for line in text.splitlines() if line.startswith("lorag_generated_tokens_total")
    )
    if answer["timings"]["first_token_ms"] is not None:
        assert float(tokens.split()[-1]) > 0


def test_each_request_is_logged_as_one_json_line(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="lorag.api.access"):
        served.client.get("/v1/adapters", headers={**auth("reader"), "X-Request-ID": "req-42"})
    [record] = [r for r in caplog.records if r.name == "lorag.api.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "request" and line["request_id"] == "req-42"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/v1/adapters", 200)
    assert line["key_id"] == "reader" and line["duration_ms"] >= 0
    assert KEYS["reader"][0] not in json.dumps(line)


def audit_lines(settings: Settings) -> list[dict[str, object]]:
    path = settings.data_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_answers_are_audited_without_the_question_by_default(served: Served) -> None:
    served.client.post("/v1/ask", json={"question": QUESTION}, headers=auth("reader"))
    last = [line for line in audit_lines(served.settings) if line["action"] == "answer"][-1]
    assert last["key_id"] == "reader" and last["collection"] == "kb"
    assert {"time", "adapter", "adapter_version", "sources", "request_id"} <= last.keys()
    assert last["sources"] and {"source", "chunk_id", "cited"} <= last["sources"][0].keys()
    assert "question" not in last and QUESTION not in json.dumps(last)


def test_the_question_is_audited_when_configured(
    tmp_path: Path, tiny_generator_dir: Path, tiny_embedder_dir: Path, loras: list[Path]
) -> None:
    with serve(
        tmp_path, tiny_generator_dir, tiny_embedder_dir, loras, log_question_text=True
    ) as app:
        app.client.post("/v1/ask", json={"question": QUESTION}, headers=auth("reader"))
    assert audit_lines(app.settings)[-1]["question"] == QUESTION
