"""What the benchmarks share: a quoref-dev sample (questions with distinct text, their gold
documents plus others), staged in a temporary data dir that reuses the converted model;
``lorag serve`` started on a free loopback port; percentiles; and a description of the machine
for the results file."""

from __future__ import annotations

import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from assistant.core.settings import Settings

REPO = Path(__file__).resolve().parents[1]
QUOREF = REPO.parent / "shared" / "data" / "quoref-dev"
SERVER_START_S = 600
"""How long a server may take to load its models (a first run also converts the generator)."""


def sample(count: int, others: int, seed: int) -> tuple[list[dict[str, object]], list[Path]]:
    """``count`` question rows with distinct text, and their gold documents plus ``others``."""
    rng = random.Random(seed)
    with (QUOREF / "questions.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    rng.shuffle(rows)
    picked = list({row["question"]: row for row in rows}.values())[:count]
    gold = sorted({row["source"] for row in picked})
    rest = sorted(p.name for p in (QUOREF / "docs").glob("*.txt") if p.name not in gold)
    docs = gold + rng.sample(rest, min(others, len(rest)))
    return picked, [QUOREF / "docs" / name for name in docs]


def stage(work: Path, docs: list[Path]) -> tuple[Settings, Path]:
    """Settings on a new data dir under ``work`` (its model cache linked to the default one, so
    the converted model is reused) and a folder holding copies of ``docs``."""
    data_dir = work / "data"
    data_dir.mkdir()
    cached = Settings(_env_file=None).cache_dir
    if cached.is_dir():
        (data_dir / "cache").symlink_to(cached)
    folder = work / "docs"
    folder.mkdir()
    for doc in docs:
        shutil.copy(doc, folder / doc.name)
    return Settings(_env_file=None, data_dir=data_dir), folder


def start_server(
    data_dir: Path, log: Path, key: str, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``lorag serve --port 0`` over ``data_dir`` with one admin key ``key`` (and ``env`` on
    top of this process's), its output in ``log``; the process and its URL once ``/readyz``
    answers 200. The port is the one the server printed."""
    environment = {
        **os.environ,
        **(env or {}),
        "PYTHONUNBUFFERED": "1",
        "LORAG_DATA_DIR": str(data_dir),
        "LORAG_API__KEYS": json.dumps([{"id": "bench", "key": key, "permissions": {"*": "admin"}}]),
    }
    lorag = Path(sys.executable).parent / "lorag"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(lorag), "serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"],
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline and server.poll() is None:
        found = re.search(r"lorag API on (http://\S+?)(?: |$)", log.read_text(), re.MULTILINE)
        try:
            if found and httpx.get(f"{found.group(1)}/readyz").status_code == 200:
                return server, found.group(1)
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit(f"lorag serve did not become ready:\n{log.read_text()[-3000:]}")


def percentile(values: list[float], share: float) -> float | None:
    """The ``share`` quantile of ``values`` (nearest rank), or None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def machine() -> dict[str, object]:
    """The CPU, the cores this process may use, torch's threads and the load when measured."""
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores_available": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": os.getloadavg()[0],
    }
