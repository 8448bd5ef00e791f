"""What the batch and load benchmarks share: a quoref-dev sample (questions with distinct text,
their gold documents plus others), staged in a temporary data dir that reuses the converted
model, and a description of the machine for the results file."""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
from pathlib import Path

from assistant.core.settings import Settings

REPO = Path(__file__).resolve().parents[1]
QUOREF = REPO.parent / "shared" / "data" / "quoref-dev"


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


def machine() -> dict[str, object]:
    """The CPU, the cores this process may use, torch's threads and the load when measured."""
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores_available": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": os.getloadavg()[0],
    }
