"""``lorag serve``: refuses to start without API keys; with keys from the environment it serves
on loopback, answers, logs requests as JSON lines and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.core.settings import Settings
from tests.api.conftest import start_lorag_serve

KEY = "serve-key-0123456789"


def test_serve_refuses_to_start_without_keys(cli: CliRunner) -> None:
    result = cli.invoke(app, ["serve"])
    assert result.exit_code == 1
    assert "no API keys" in result.output and "LORAG_API__KEYS" in result.output


def test_serve_runs_the_api_until_stopped(tiny_settings: Settings) -> None:
    env = {
        **os.environ,
        "LORAG_DATA_DIR": str(tiny_settings.data_dir),
        "LORAG_GENERATOR__MODEL": tiny_settings.generator.model,
        "LORAG_EMBEDDER__MODEL": tiny_settings.embedder.model,
        "LORAG_API__KEYS": json.dumps([{"id": "ops", "key": KEY, "permissions": {"*": "admin"}}]),
    }
    server, base = start_lorag_serve(env)
    try:
        headers = {"Authorization": f"Bearer {KEY}"}
        created = httpx.post(f"{base}/v1/collections", json={"name": "kb"}, headers=headers)
        assert created.status_code == 201
        assert httpx.get(f"{base}/v1/collections").status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    # uvicorn shuts down cleanly, then re-raises the signal it caught (exit status -SIGTERM).
    assert server.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete." in stderr
    assert base.startswith("http://127.0.0.1:") and not base.endswith(":0")
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    requests = [line for line in logged if line.get("logger") == "lorag.api.access"]
    assert {(r["route"], r["status"], r["key_id"]) for r in requests} >= {
        ("/v1/collections", 201, "ops"),
        ("/v1/collections", 401, None),
    }
    assert (Path(tiny_settings.data_dir) / "audit.jsonl").is_file()


@pytest.fixture
def cli(tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("LORAG_DATA_DIR", str(tiny_settings.data_dir))
    monkeypatch.setenv("LORAG_GENERATOR__MODEL", tiny_settings.generator.model)
    monkeypatch.setenv("LORAG_EMBEDDER__MODEL", tiny_settings.embedder.model)
    monkeypatch.delenv("LORAG_API__KEYS", raising=False)
    return CliRunner()
