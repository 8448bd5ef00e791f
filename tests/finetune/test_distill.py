"""On-policy distillation on tiny real models: a student (the tiny Llama) and teachers built on
the fly, one wider and deeper on the same tokenizer, one on another tokenizer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from assistant.core.settings import Settings
from finetune.checkpoint import checkpoint_dirs
from finetune.config import TrainConfig
from finetune.data import Example, load_examples
from finetune.distill import (
    Prompt,
    check_teacher,
    distill,
    held_out_divergence,
    load_teacher,
    prompts_of,
)
from finetune.distill_config import DistillConfig
from finetune.gkd import TokenizerMismatchError, divergence_sum
from finetune.modeling import build_model
from tests.finetune.conftest import rag_record, write_jsonl


def options(teacher: Path) -> DistillConfig:
    return DistillConfig(teacher=str(teacher), max_new_tokens=12)


def held_out(
    settings: Settings, config: TrainConfig, teacher: Path, examples: list[Example]
) -> float:
    """The divergence of a freshly built student (its LoRA a no-op) to ``teacher``."""
    student = build_model(settings, config)
    opts = options(teacher)
    prompts: list[Prompt] = prompts_of(examples, student.tokenizer, config, opts)
    return held_out_divergence(
        student, load_teacher(settings, str(teacher), student), prompts, config, opts
    )


def test_the_divergence_is_zero_for_the_same_distributions_and_positive_otherwise() -> None:
    logits = torch.randn(5, 40, generator=torch.Generator().manual_seed(0))
    other = torch.randn(5, 40, generator=torch.Generator().manual_seed(1))
    for beta in (0.0, 0.5, 1.0):
        assert float(divergence_sum(logits, logits, beta=beta, temperature=1.0)) < 1e-6
        assert float(divergence_sum(logits, other, beta=beta, temperature=1.0)) > 0.1


def test_a_student_distilled_from_itself_has_nothing_to_learn(
    train_settings: Settings,
    fast_config: TrainConfig,
    rag_examples: list[Example],
    tiny_generator_dir: Path,
    tiny_teacher_dir: Path,
) -> None:
    itself = held_out(train_settings, fast_config, tiny_generator_dir, rag_examples[10:])
    teacher = held_out(train_settings, fast_config, tiny_teacher_dir, rag_examples[10:])
    assert abs(itself) < 1e-6
    assert teacher > 0.01


def test_a_few_on_policy_steps_bring_the_student_closer_to_the_teacher_on_held_out_prompts(
    train_settings: Settings,
    fast_config: TrainConfig,
    rag_examples: list[Example],
    tiny_teacher_dir: Path,
    tmp_path: Path,
) -> None:
    before = held_out(train_settings, fast_config, tiny_teacher_dir, rag_examples[10:])
    result = distill(
        train_settings,
        fast_config,
        options(tiny_teacher_dir),
        rag_examples[:10],
        rag_examples[10:],
        tmp_path / "run",
    )
    assert result.eval_loss is not None
    assert result.eval_loss < 0.9 * before
    assert all(step["on_policy"] for step in result.history)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["distillation"]["teacher"] == str(tiny_teacher_dir)
    assert metrics["distillation"]["on_policy_steps"] == fast_config.max_steps
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()


def test_a_teacher_with_another_tokenizer_is_refused_before_anything_is_written(
    train_settings: Settings,
    fast_config: TrainConfig,
    rag_examples: list[Example],
    other_tokenizer_dir: Path,
    tmp_path: Path,
) -> None:
    with pytest.raises(TokenizerMismatchError, match="does not share the student's tokenizer"):
        check_teacher(train_settings, str(other_tokenizer_dir))
    with pytest.raises(TokenizerMismatchError, match=str(other_tokenizer_dir)):
        distill(
            train_settings,
            fast_config,
            options(other_tokenizer_dir),
            rag_examples[:10],
            rag_examples[10:],
            tmp_path / "run",
        )
    assert not (tmp_path / "run").exists()


KILLED_RUN = """
import json, os, signal, sys
from pathlib import Path

from assistant.core.settings import Settings
from finetune.config import TrainConfig
from finetune.data import load_examples
from finetune.distill import distill
from finetune.distill_config import DistillConfig

args = json.loads(sys.argv[1])
examples = load_examples(Path(args["data"]))


def kill_after(report):
    if report.step == args["kill_at"]:
        os.kill(os.getpid(), signal.SIGKILL)


distill(
    Settings(_env_file=None, **args["settings"]),
    TrainConfig(**args["config"]),
    DistillConfig(**args["options"]),
    examples[:10],
    examples[10:],
    Path(args["run_dir"]),
    progress=kill_after,
)
"""


def test_a_distillation_killed_after_a_checkpoint_resumes_to_the_same_adapter(
    train_settings: Settings, fast_config: TrainConfig, tiny_teacher_dir: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", [rag_record(n) for n in range(12)])
    examples = load_examples(data)
    # Half the steps on-policy (the sampling RNG must be restored), dropout on, eval in the loop.
    config = fast_config.model_copy(update={"save_every": 2, "eval_every": 2, "dropout": 0.1})
    opts = options(tiny_teacher_dir).model_copy(update={"lmbda": 0.5})
    full = distill(train_settings, config, opts, examples[:10], examples[10:], tmp_path / "full")
    assert 0 < sum(step["on_policy"] for step in full.history) < config.max_steps

    killed_dir = tmp_path / "killed"
    args = {
        "data": str(data),
        "settings": train_settings.model_dump(mode="json"),
        "config": config.model_dump(mode="json"),
        "options": opts.model_dump(mode="json"),
        "run_dir": str(killed_dir),
        "kill_at": 3,
    }
    child = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, json.dumps(args)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert [p.name for p in checkpoint_dirs(killed_dir)] == ["step-2"]

    resumed = distill(
        train_settings, config, opts, examples[:10], examples[10:], killed_dir, resume=True
    )

    assert resumed.resumed_from_step == 2
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert resumed.eval_history == full.eval_history
    full_weights = load_file(tmp_path / "full" / "adapter" / "adapter_model.safetensors")
    resumed_weights = load_file(killed_dir / "adapter" / "adapter_model.safetensors")
    for key, tensor in full_weights.items():
        torch.testing.assert_close(resumed_weights[key], tensor, rtol=0, atol=1e-7)
