"""Crash loops in CI, a few rounds each on the tiny models (``benchmarks/crash.py`` runs 20 on
the default ones): ``kill -9`` at random moments, run again to the end, and the result is the
one a run never killed leaves. Where a kill lands varies from run to run; what must hold does
not: every round identical."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from assistant.core.settings import Settings

pytestmark = pytest.mark.slow

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "crash.py"


def load_crash() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


crash = load_crash()


@pytest.fixture
def env(tiny_settings: Settings) -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}
    found["LORAG_GENERATOR__MODEL"] = tiny_settings.generator.model
    found["LORAG_EMBEDDER__MODEL"] = tiny_settings.embedder.model
    found["LORAG_CHUNKING__CHUNK_TOKENS"] = "24"
    found["LORAG_CHUNKING__OVERLAP_TOKENS"] = "0"
    found["LORAG_GENERATION__MAX_NEW_TOKENS"] = "8"
    return found


def settings_for(tiny_settings: Settings) -> Callable[[Path], Settings]:
    """``tiny_settings`` on another data folder, with the chunking of :func:`env`."""
    chunking = tiny_settings.chunking.model_copy(update={"chunk_tokens": 24, "overlap_tokens": 0})
    return lambda data_dir: tiny_settings.model_copy(
        update={"data_dir": data_dir, "chunking": chunking}
    )


def report(loop: object) -> str:
    return "\n".join(str(r) for r in loop.rounds)  # type: ignore[attr-defined]


def test_a_killed_ingest_run_again_equals_a_clean_one(
    env: dict[str, str], tiny_settings: Settings, tmp_path: Path
) -> None:
    docs = crash.write_corpus(tmp_path / "docs", 40)
    loop = crash.ingest_loop(tmp_path, docs, env, settings_for(tiny_settings), rounds=3, seed=5)
    print(report(loop))
    assert loop.identical == 3, report(loop)


def test_a_killed_batch_resumed_answers_every_question_once(
    env: dict[str, str], tmp_path: Path
) -> None:
    docs = crash.write_corpus(tmp_path / "docs", 8)
    questions = crash.write_questions(tmp_path / "questions.jsonl", 12)
    loop = crash.batch_loop(tmp_path, docs, questions, env, rounds=2, seed=6)
    print(report(loop))
    assert loop.identical == 2, report(loop)


def test_a_killed_finetune_resumed_learns_as_an_uninterrupted_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    dataset = crash.write_dataset(tmp_path / "facts.jsonl", 12)
    loop = crash.finetune_loop(tmp_path, dataset, env, rounds=2, seed=7, tolerance=1e-3)
    print(report(loop))
    assert loop.identical == 2, report(loop)
