"""A run killed with SIGKILL after a checkpoint, then resumed, ends exactly where an
uninterrupted run ends: same losses, same adapter weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from assistant.core.settings import Settings
from finetune.checkpoint import checkpoint_dirs
from finetune.config import TrainConfig
from finetune.data import load_examples
from finetune.trainer import train
from tests.finetune.conftest import rag_record, write_jsonl

KILLED_RUN = """
import json, os, signal, sys
from pathlib import Path

from assistant.core.settings import Settings
from finetune.config import TrainConfig
from finetune.data import load_examples
from finetune.trainer import train

args = json.loads(sys.argv[1])
examples = load_examples(Path(args["data"]))


def kill_after(report):
    if report.step == args["kill_at"]:
        os.kill(os.getpid(), signal.SIGKILL)


train(
    Settings(_env_file=None, **args["settings"]),
    TrainConfig(**args["config"]),
    examples[:10],
    examples[10:],
    Path(args["run_dir"]),
    progress=kill_after,
)
"""


def test_a_run_killed_after_a_checkpoint_resumes_to_the_same_adapter(
    train_settings: Settings, fast_config: TrainConfig, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", [rag_record(n) for n in range(12)])
    examples = load_examples(data)
    # Dropout on, so the restored RNG state matters; eval in the loop, so its history does too.
    config = fast_config.model_copy(
        update={"max_steps": 8, "save_every": 2, "eval_every": 2, "dropout": 0.1}
    )
    full = train(train_settings, config, examples[:10], examples[10:], tmp_path / "full")

    killed_dir = tmp_path / "killed"
    args = {
        "data": str(data),
        "settings": train_settings.model_dump(mode="json"),
        "config": config.model_dump(mode="json"),
        "run_dir": str(killed_dir),
        "kill_at": 5,
    }
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    child = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert [p.name for p in checkpoint_dirs(killed_dir)] == ["step-2", "step-4"]
    assert not (killed_dir / "adapter").exists()
    # What a kill in the middle of writing a checkpoint leaves: ignored, then cleaned up.
    (killed_dir / "checkpoints" / ".step-6-half").mkdir()

    resumed = train(train_settings, config, examples[:10], examples[10:], killed_dir, resume=True)

    assert resumed.resumed_from_step == 4
    assert not (killed_dir / "checkpoints" / ".step-6-half").exists()
    assert abs(resumed.final_loss - full.final_loss) < 1e-5
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert resumed.eval_history == full.eval_history
    full_weights = load_file(tmp_path / "full" / "adapter" / "adapter_model.safetensors")
    resumed_weights = load_file(killed_dir / "adapter" / "adapter_model.safetensors")
    assert full_weights.keys() == resumed_weights.keys()
    for key, tensor in full_weights.items():
        torch.testing.assert_close(resumed_weights[key], tensor, rtol=0, atol=1e-7)
