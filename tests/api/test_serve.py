"""``lorag serve``: refuses to start without API keys; with keys from the environment it serves
on loopback, answers, logs requests as JSON lines and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.core.settings import Settings

KEY = "serve-key-0123456789"


def test_serve_refuses_to_start_without_keys(cli: CliRunner) -> None:
    result = cli.invoke(app, ["serve"])
    assert result.exit_code == 1
    assert "no API keys" in result.output and "LORAG_API__KEYS" in result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_runs_the_api_until_stopped(tiny_settings: Settings) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LORAG_DATA_DIR": str(tiny_settings.data_dir),
        "LORAG_GENERATOR__MODEL": tiny_settings.generator.model,
        "LORAG_EMBEDDER__MODEL": tiny_settings.embedder.model,
        "LORAG_API__KEYS": json.dumps([{"id": "ops", "key": KEY, "permissions": {"*": "admin"}}]),
    }
    lorag = Path(sys.executable).parent / "lorag"
    server = subprocess.Popen(
        [str(lorag), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "lorag serve did not start"
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {KEY}"}
        created = httpx.post(f"{base}/v1/collections", json={"name": "kb"}, headers=headers)
        assert created.status_code == 201
        assert httpx.get(f"{base}/v1/collections").status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=60)
    # uvicorn shuts down cleanly, then re-raises the signal it caught (exit status -SIGTERM).
    assert server.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete." in stderr
    assert f"lorag API on http://127.0.0.1:{port}" in stdout
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
