"""run_finetune: the whole pipeline the CLI calls, from a JSONL file to an evaluated adapter."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.core.settings import Settings
from finetune.config import TrainConfig
from finetune.data import fingerprint, load_examples
from finetune.run import run_finetune
from tests.finetune.conftest import rag_record, write_jsonl


def test_run_finetune_trains_evaluates_and_reports(
    train_settings: Settings, fast_config: TrainConfig, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", [rag_record(n) for n in range(10)])
    config = fast_config.model_copy(update={"eval_split": 0.2})
    steps: list[int] = []

    result = run_finetune(
        train_settings, config, data, tmp_path / "run", progress=lambda r: steps.append(r.step)
    )

    assert steps == list(range(1, config.max_steps + 1))
    assert (result.train_examples, result.eval_examples) == (8, 2)
    assert result.data_fingerprint == fingerprint(load_examples(data))
    assert result.chunk_ids == sorted(f"chunk-{n}" for n in range(10))
    assert result.adapter_dir == tmp_path / "run" / "adapter"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["evaluation"] == result.evaluation
    assert metrics["evaluation"]["eval_examples"] == 2
    assert (
        metrics["evaluation"]["adapter"]["eval_loss"] < metrics["evaluation"]["base"]["eval_loss"]
    )
    assert metrics["steps"] == config.max_steps
