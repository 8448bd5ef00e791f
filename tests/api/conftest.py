"""Fixtures for the API tests: an app on the tiny models over the real embedded store, with a
seeded collection, two registered adapters and five keys (one with a budget of requests per
minute); and a live uvicorn server.

Apps are built once per test module (``served``); a module that needs other limits builds its
own with :func:`serve`.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.api import create_app
from assistant.api.services import Services
from assistant.core.registry import AdapterRegistry, TrainingOrigin
from assistant.core.settings import (
    ApiKey,
    ApiSettings,
    EmbedderSettings,
    GenerationSettings,
    GeneratorSettings,
    Settings,
)
from assistant.runtime import Runtime
from tests.core.test_models import make_lora
from tests.core.test_registry import make_run

KEYS: dict[str, tuple[str, dict[str, Any]]] = {
    "admin": ("admin-key-0123456789", {"*": "admin"}),
    "reader": ("reader-key-0123456789", {"kb": "read"}),
    "writer": ("writer-key-0123456789", {"kb": "write"}),
    "outsider": ("outsider-key-0123456789", {"other": "admin"}),
    "limited": ("limited-key-0123456789", {"kb": "read"}),
}
PER_MINUTE = {"limited": 2}
"""The keys of :data:`KEYS` with a budget of requests per minute."""
DOCS = {
    "travel.md": "# Travel policy\n\nTrain tickets are reimbursed in second class.\n\n"
    "## Hotels\n\nThe hotel limit is 120 euros per night in Amsterdam.\n",
    "leave.txt": "Employees get 25 days of paid leave per year. Unused days expire in March.\n",
}
QUESTION = "What is the hotel limit per night?"


def auth(key: str) -> dict[str, str]:
    """The Authorization header of one of :data:`KEYS`."""
    return {"Authorization": f"Bearer {KEYS[key][0]}"}


def api_settings(data_dir: Path, generator: Path, embedder: Path, **api: Any) -> Settings:
    """Settings on the tiny models (as ``tiny_settings``), collection ``kb``, the test keys and
    ``api``."""
    keys = [
        ApiKey(id=name, key=key, permissions=rights, requests_per_minute=PER_MINUTE.get(name))
        for name, (key, rights) in KEYS.items()
    ]
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        collection="kb",
        generator=GeneratorSettings(model=str(generator)),
        embedder=EmbedderSettings(model=str(embedder), batch_size=8),
        generation=GenerationSettings(max_new_tokens=16, context_tokens=512),
        api=ApiSettings(keys=keys, **api),
    )


@dataclass
class Served:
    """A started app: its client, settings, runtime and services."""

    client: TestClient
    app: FastAPI
    settings: Settings
    runtime: Runtime

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def wait(self, job_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
        """The job's record once it has ended."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.client.get(f"/v1/jobs/{job_id}", headers=auth("admin")).json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not end within {timeout_s} s")


@pytest.fixture(scope="session")
def loras(tiny_generator_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two real LoRA adapters of the tiny model that change its answers."""
    root = tmp_path_factory.mktemp("api-loras")
    return [make_lora(tiny_generator_dir, root / f"lora-{seed}", seed) for seed in (1, 2)]


@contextmanager
def seeded_app(
    root: Path,
    generator: Path,
    embedder: Path,
    loras: list[Path],
    run_metrics: Mapping[int, dict[str, Any]] | None = None,
    **api: Any,
) -> Iterator[tuple[FastAPI, Settings, Runtime]]:
    """An app (not started) whose collection ``kb`` holds :data:`DOCS` and whose registry holds
    ``ops@1`` and ``ops@2`` (``ops@1`` promoted; ``run_metrics[version]`` as that version's
    metrics.json); its settings and runtime."""
    settings = api_settings(root / "data", generator, embedder, **api)
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    runtime = Runtime(settings)
    try:
        assert runtime.ingestor("kb").ingest([docs]).ok
        registry = AdapterRegistry.for_settings(settings)
        origin = TrainingOrigin.of(settings, method="lora", dataset_fingerprint="f" * 16)
        for version, lora in enumerate(loras, start=1):
            run = make_run(root / f"run-{version}", lora)
            if run_metrics and version in run_metrics:
                (run / "metrics.json").write_text(json.dumps(run_metrics[version]), "utf-8")
            registry.register("ops", run, origin, version=version)
        registry.promote("ops@1")
        yield create_app(settings, runtime), settings, runtime
    finally:
        runtime.close()


@contextmanager
def serve(
    root: Path, generator: Path, embedder: Path, loras: list[Path], **api: Any
) -> Iterator[Served]:
    """A :func:`seeded_app` started in a TestClient."""
    with (
        seeded_app(root, generator, embedder, loras, **api) as (app, settings, runtime),
        TestClient(app) as client,
    ):
        yield Served(client, app, settings, runtime)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_generator_dir: Path,
    tiny_embedder_dir: Path,
    loras: list[Path],
) -> Iterator[Served]:
    """The module's app, with the default API limits."""
    root = tmp_path_factory.mktemp("served")
    with serve(root, tiny_generator_dir, tiny_embedder_dir, loras) as app:
        yield app


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port in a thread; its base URL. Its start
    (the lifespan loads the models, which a first run also converts) is waited for as long as
    it takes, with no deadline to miss on a loaded machine; a start that fails ends the thread,
    and that is reported."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server did not start (its lifespan failed: see the log)")
        thread.join(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def start_lorag_serve(env: Mapping[str, str]) -> tuple[subprocess.Popen[str], str]:
    """``lorag serve --port 0`` in a process of its own with ``env``, and its base URL once it
    answers ``/readyz``: the port is the one it printed, and the wait lasts as long as the
    start does (a model conversion on a loaded machine), ending early if the process dies."""
    lorag = Path(sys.executable).parent / "lorag"
    server = subprocess.Popen(
        [str(lorag), "serve", "--port", "0"],
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()  # printed once the models are loaded and the port bound
    found = re.search(r"lorag API on (http://\S+?)(?: |$)", line)
    if found is None:
        server.kill()
        raise AssertionError(f"lorag serve did not start: {line!r}\n{server.communicate()[1]}")
    base = found.group(1)
    while True:
        if server.poll() is not None:
            raise AssertionError(f"lorag serve stopped: {server.communicate()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=None).status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
