"""The soak's traffic in CI, on the tiny models (``benchmarks/soak.py`` runs 32 clients for 10
minutes on the default ones): a ``lorag serve`` process with room for one answer at a time, six
clients doing six seeded actions each (every kind of action among them); no 5xx other than a
503 with ``Retry-After``, no broken transfer or stream, and every job followed to its end."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from pathlib import Path
from types import ModuleType

import pytest

from assistant.core.settings import Settings

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str, module_name: str) -> ModuleType:
    """``benchmarks/NAME.py`` as the module ``module_name`` (the benchmarks folder is not put
    on ``sys.path``: its file names would shadow other modules)."""
    path = BENCHMARKS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


harness = load_benchmark("harness", "harness")  # what soak.py imports, as when it is run
soak = load_benchmark("soak", "soak_benchmark")


@pytest.fixture
def env(tiny_settings: Settings) -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}
    found["LORAG_GENERATOR__MODEL"] = tiny_settings.generator.model
    found["LORAG_EMBEDDER__MODEL"] = tiny_settings.embedder.model
    found["LORAG_GENERATION__MAX_NEW_TOKENS"] = "8"
    found["LORAG_API__QUEUE_SIZE"] = "1"
    found["LORAG_COLLECTION"] = "guide"
    return found


def test_mixed_traffic_gets_no_server_error(env: dict[str, str], tmp_path: Path) -> None:
    server, url = harness.start_server(tmp_path / "data", tmp_path / "server.log", soak.KEY, env)
    tally = soak.Tally(counting=True)
    try:
        soak.prepare(url)
        questions = [q["question"] for q in soak.load_questions()]
        plan = soak.Traffic(clients=6, seconds=float("inf"), think_s=0.0, seed=1, actions=6)
        soak.traffic(url, tally, questions, plan)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    routes = {reply.route for reply in tally.replies}
    print(soak.route_stats(tally.replies), dict(tally.jobs))
    assert soak.server_errors(tally.replies) == []
    assert soak.failed(tally.replies) == []
    assert {
        "POST /v1/ask",
        "POST /v1/chat/completions (stream)",
        "GET /v1/collections/{name}/documents",
        "POST /v1/collections/{name}/documents",
        "POST /v1/batch",
        "GET /v1/batch/{job_id}/download",
    } <= routes
    assert set(tally.jobs) == {"ingest succeeded", "batch succeeded"}
