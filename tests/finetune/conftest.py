"""Fixtures for the fine-tuning tests: small RAG datasets and a fast training config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.core.settings import GeneratorSettings, Settings
from finetune.config import TrainConfig
from finetune.data import Example, parse_record

COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"]


def rag_record(n: int) -> dict[str, Any]:
    """An invented RAG example: which colour item ``n`` is, with its one source."""
    colour = COLOURS[n % len(COLOURS)]
    return {
        "question": f"What colour is the bread number {n}?",
        "sources": [f"Source [1]: The bread number {n} is {colour} and baked on Tuesday."],
        "answer": f"It is {colour} [1].",
        "chunk_ids": [f"chunk-{n}"],
    }


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def train_settings(tmp_path: Path, tiny_generator_dir: Path) -> Settings:
    """Settings on the tiny generator only (training never needs the embedder).

    One thread: the tiny model gains nothing from more, and runs compared bit for bit (full vs
    resumed) must use the same count.
    """
    return Settings(
        _env_file=None,
        threads=1,
        data_dir=tmp_path / "data",
        generator=GeneratorSettings(model=str(tiny_generator_dir)),
    )


@pytest.fixture
def rag_examples() -> list[Example]:
    return [parse_record(rag_record(n)) for n in range(12)]


@pytest.fixture
def fast_config() -> TrainConfig:
    """A few quick steps on the tiny model, float32 so comparisons can be tight."""
    return TrainConfig(
        max_steps=6,
        batch_size=2,
        grad_accumulation=2,
        learning_rate=1e-2,
        max_seq_length=512,
        bf16=False,
        save_every=0,
        eval_every=0,
    )
