"""Training on the tiny model: loss goes down, the run folder is complete and pickle-free, the
adapter serves, and packing / gradient checkpointing do not change what is learnt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from assistant.core.models import PICKLE_SUFFIXES, load_generator
from assistant.core.prompt import DEFAULT_TEMPLATE, PromptTemplate
from assistant.core.settings import Settings
from finetune.checkpoint import CheckpointError
from finetune.config import TrainConfig, load_config
from finetune.data import Example, fingerprint, parse_record
from finetune.modeling import build_model
from finetune.trainer import StepReport, TrainingError, step_examples, train
from tests.finetune.conftest import rag_record

RUN_FILES = {
    "adapter",
    "adapter/README.md",
    "adapter/adapter_config.json",
    "adapter/adapter_model.safetensors",
    "train_config.json",
    "prompt_template.json",
    "metrics.json",
    "loss.png",
}


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def _pickles(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES]


def test_lora_run_learns_and_leaves_a_complete_pickle_free_run_folder(
    train_settings: Settings, rag_examples: list[Example], fast_config: TrainConfig, tmp_path: Path
) -> None:
    config = fast_config.model_copy(update={"max_steps": 8, "save_every": 3, "eval_every": 4})
    reports: list[StepReport] = []
    run_dir = tmp_path / "run"
    result = train(
        train_settings,
        config,
        rag_examples[:10],
        rag_examples[10:],
        run_dir,
        progress=reports.append,
    )

    losses = [h["loss"] for h in result.history]
    assert len(losses) == result.steps == 8
    assert losses[-1] < 0.6 * losses[0]
    assert [r.step for r in reports] == list(range(1, 9))
    assert all(r.total_steps == 8 and r.tokens_per_second > 0 for r in reports)
    assert [h["step"] for h in result.eval_history] == [4, 8]
    assert result.eval_loss == result.eval_history[-1]["loss"] < result.eval_history[0]["loss"]

    checkpoints = {"checkpoints", "checkpoints/step-3", "checkpoints/step-6"}
    checkpoint_files = {
        f"{c}/{name}"
        for c in sorted(checkpoints - {"checkpoints"})
        for name in (
            "adapter.safetensors",
            "optimizer.safetensors",
            "optimizer.json",
            "rng.safetensors",
            "state.json",
        )
    }
    assert _files(run_dir) == RUN_FILES | checkpoints | checkpoint_files
    assert _pickles(run_dir) == []

    assert load_config(run_dir / "train_config.json", {}) == config
    template = json.loads((run_dir / "prompt_template.json").read_text())
    assert PromptTemplate.from_dict(template) == DEFAULT_TEMPLATE
    assert (run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["final_loss"] == losses[-1]
    assert metrics["data_fingerprint"] == fingerprint(rag_examples) == result.data_fingerprint
    assert metrics["tokens"] == result.tokens > 0
    assert metrics["tokens_per_second"] > 0 and metrics["peak_rss_mb"] > 0
    assert (metrics["train_examples"], metrics["eval_examples"]) == (10, 2)
    assert result.chunk_ids == sorted(f"chunk-{n}" for n in range(12))

    adapter_config = json.loads((run_dir / "adapter/adapter_config.json").read_text())
    assert adapter_config["peft_type"] == "LORA"
    assert adapter_config["base_model_name_or_path"] == train_settings.generator.model
    assert set(adapter_config["target_modules"]) == set(config.target_modules)

    # Training again into the same folder without resuming is refused.
    with pytest.raises(TrainingError, match="resume"):
        train(train_settings, config, rag_examples[:10], [], run_dir)


def test_the_trained_adapter_answers_through_the_serving_path(
    train_settings: Settings, rag_examples: list[Example], fast_config: TrainConfig, tmp_path: Path
) -> None:
    examples = rag_examples[:2]
    config = fast_config.model_copy(
        update={
            "max_steps": 25,
            "learning_rate": 2e-2,
            "lr_scheduler": "constant",
            "dropout": 0.0,
            "grad_accumulation": 1,
        }
    )
    result = train(train_settings, config, examples, [], tmp_path / "run")
    generator = load_generator(train_settings)
    assert generator.generate(examples[0].messages, 12) != examples[0].answer
    generator.load_adapter(str(result.adapter_dir), "colours")
    for example in examples:
        assert generator.generate(example.messages, 12, adapter="colours") == example.answer


def _final_adapter(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


@pytest.mark.parametrize("variant", ["packing", "gradient_checkpointing"])
def test_packing_and_checkpointing_change_speed_not_what_is_learnt(
    variant: str,
    train_settings: Settings,
    rag_examples: list[Example],
    fast_config: TrainConfig,
    tmp_path: Path,
) -> None:
    # The gradient of a step is the same whether its examples run packed or padded, with or
    # without recomputed activations; dropout 0 so that the random masks cannot differ.
    base = fast_config.model_copy(update={"max_steps": 3, "dropout": 0.0})
    changed = base.model_copy(update={variant: not getattr(base, variant)})
    one = train(train_settings, base, rag_examples, [], tmp_path / "one")
    two = train(train_settings, changed, rag_examples, [], tmp_path / "two")
    losses = ([h["loss"] for h in one.history], [h["loss"] for h in two.history])
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    first, second = _final_adapter(tmp_path / "one"), _final_adapter(tmp_path / "two")
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=1e-3, atol=1e-5)


def test_prompt_tuning_trains_soft_tokens(
    train_settings: Settings, rag_examples: list[Example], fast_config: TrainConfig, tmp_path: Path
) -> None:
    options = fast_config.model_dump(exclude={"packing"})
    options.update(method="prompt_tuning", virtual_tokens=8, learning_rate=0.1, max_steps=16)
    config = TrainConfig(**options)
    assert config.packing is False
    result = train(train_settings, config, rag_examples, [], tmp_path / "run")
    losses = [h["loss"] for h in result.history]
    # 8 soft tokens cannot do much for a random tiny model: 6.5 -> about 6.05 over the last 4
    # of 16 steps (each step's loss is one batch's, so one step alone is noisy).
    assert sum(losses[-4:]) / 4 < losses[0] - 0.3
    assert result.trainable_parameters == 8 * 64  # 8 soft tokens of the tiny model's width
    adapter_config = json.loads((tmp_path / "run/adapter/adapter_config.json").read_text())
    assert adapter_config["peft_type"] == "PROMPT_TUNING"
    assert _pickles(tmp_path / "run") == []
    generator = load_generator(train_settings)
    generator.load_adapter(str(result.adapter_dir), "soft")
    assert generator.generate(rag_examples[0].messages, 4, adapter="soft")


def test_qlora_loads_the_base_in_4_bit_and_trains_on_cpu(
    train_settings: Settings, rag_examples: list[Example], fast_config: TrainConfig, tmp_path: Path
) -> None:
    import bitsandbytes as bnb

    config = fast_config.model_copy(update={"method": "qlora", "max_steps": 8})
    trainable = build_model(train_settings, config)
    q_proj = trainable.model.base_model.model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, bnb.nn.Linear4bit)
    assert q_proj.base_layer.weight.quant_type == "nf4"
    del trainable

    result = train(train_settings, config, rag_examples, [], tmp_path / "run")
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.6 * losses[0]
    assert result.method == "qlora"
    assert _pickles(tmp_path / "run") == []


def test_resume_refuses_a_checkpoint_of_another_run(
    train_settings: Settings, rag_examples: list[Example], fast_config: TrainConfig, tmp_path: Path
) -> None:
    config = fast_config.model_copy(update={"max_steps": 4, "save_every": 2})
    train(train_settings, config, rag_examples, [], tmp_path / "run")
    other = config.model_copy(update={"learning_rate": 1e-3})
    with pytest.raises(CheckpointError, match="config differs"):
        train(train_settings, other, rag_examples, [], tmp_path / "run", resume=True)
    with pytest.raises(CheckpointError, match="data_fingerprint differs"):
        train(train_settings, config, rag_examples[:6], [], tmp_path / "run", resume=True)


def test_data_order_is_a_seeded_permutation_per_epoch() -> None:
    epoch = [i for step in range(3) for i in step_examples(10, 4, seed=1, step=step)]
    assert sorted(epoch) == list(range(10))  # 3 steps: 4 + 4 + 2 examples
    assert step_examples(10, 4, seed=1, step=3) != step_examples(10, 4, seed=1, step=0)
    assert step_examples(10, 4, seed=1, step=4) == step_examples(10, 4, seed=1, step=4)
    assert step_examples(10, 4, seed=2, step=0) != step_examples(10, 4, seed=1, step=0)


def test_no_examples_is_an_error(
    train_settings: Settings, fast_config: TrainConfig, tmp_path: Path
) -> None:
    with pytest.raises(TrainingError, match="no training examples"):
        train(train_settings, fast_config, [], [parse_record(rag_record(0))], tmp_path / "run")
