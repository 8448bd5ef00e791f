"""TrainConfig: defaults, shipped recipes, overrides, file formats, errors naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.core.errors import ConfigError
from finetune.config import (
    DEFAULT_TARGET_MODULES,
    RECIPES_DIR,
    TrainConfig,
    load_config,
    recipe_path,
)


def test_defaults_target_every_attention_and_mlp_projection() -> None:
    config = load_config(None, {})
    assert config.method == "lora"
    assert config.target_modules == [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ]
    assert config.bf16 == "auto"
    assert config.packing is True


@pytest.mark.parametrize("name", ["lora-cpu", "qlora"])
def test_shipped_recipes_load(name: str) -> None:
    config = load_config(recipe_path(name), {})
    assert config.method == ("qlora" if name == "qlora" else "lora")
    assert config.target_modules == list(DEFAULT_TARGET_MODULES)
    assert sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")) == ["lora-cpu", "qlora"]


def test_overrides_apply_on_top_of_the_recipe_with_conversion() -> None:
    config = load_config(
        recipe_path("lora-cpu"),
        {
            "rank": "16",
            "learning_rate": "1e-3",
            "target_modules": "q_proj, v_proj",
            "packing": "false",
            "epochs": None,  # an option not given on the command line
        },
    )
    recipe = load_config(recipe_path("lora-cpu"), {})
    assert config.rank == 16
    assert config.learning_rate == 1e-3
    assert config.target_modules == ["q_proj", "v_proj"]
    assert config.packing is False
    assert config.epochs == recipe.epochs
    assert config.alpha == recipe.alpha


def test_toml_and_json_recipes(tmp_path: Path) -> None:
    toml = tmp_path / "r.toml"
    toml.write_text('method = "qlora"\nrank = 4\ntarget_modules = ["q_proj"]\n')
    config = load_config(toml, {"seed": 7})
    assert (config.method, config.rank, config.target_modules, config.seed) == (
        "qlora",
        4,
        ["q_proj"],
        7,
    )
    # A run's train_config.json is a recipe too: it reads back to the same config.
    saved = tmp_path / "train_config.json"
    saved.write_text(json.dumps(config.model_dump(mode="json")))
    assert load_config(saved, {}) == config


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"rank": 0}, "rank"),
        ({"method": "full"}, "method"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"dropout": 1.5}, "dropout"),
        ({"eval_split": 1.0}, "eval_split"),
        ({"lr_scheduler": "step"}, "lr_scheduler"),
        ({"rnak": 8}, "rnak: unknown option"),
        ({"warmup_steps": 10, "warmup_ratio": 0.1}, "warmup_steps, warmup_ratio"),
        ({"method": "prompt_tuning", "packing": True}, "packing"),
        ({"target_modules": []}, "target_modules"),
    ],
)
def test_invalid_values_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, overrides)
    assert field in str(caught.value)


def test_recipe_errors_name_the_file(tmp_path: Path) -> None:
    bad_value = tmp_path / "bad.yaml"
    bad_value.write_text("rank: -1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*rank"):
        load_config(bad_value, {})
    broken = tmp_path / "broken.yaml"
    broken.write_text("rank: [8\n")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        load_config(broken, {})
    listed = tmp_path / "list.yaml"
    listed.write_text("- rank\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listed, {})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml", {})
    (tmp_path / "r.ini").write_text("x")
    with pytest.raises(ConfigError, match=r"\.yaml, \.toml or \.json"):
        load_config(tmp_path / "r.ini", {})
    with pytest.raises(ConfigError, match="lora-cpu, qlora"):
        recipe_path("nope")


def test_prompt_tuning_turns_packing_off_unless_asked() -> None:
    assert TrainConfig(method="prompt_tuning").packing is False


def test_steps_from_epochs_or_max_steps() -> None:
    config = TrainConfig(epochs=2, batch_size=4, grad_accumulation=2, min_steps=0)
    assert config.steps_per_epoch(17) == 3  # 8 examples a step, the last one short
    assert config.total_steps(17) == 6
    assert config.model_copy(update={"max_steps": 5}).total_steps(17) == 5
    assert TrainConfig(warmup_ratio=0.1).warmup(50) == 5
    assert TrainConfig(warmup_steps=3).warmup(50) == 3


def test_a_small_dataset_gets_the_step_floor_and_the_plan_says_so() -> None:
    config = TrainConfig(batch_size=4, grad_accumulation=2, epochs=3)
    assert config.total_steps(6) == 40  # 3 epochs would be 3 steps
    plan = config.plan(6, 0)
    assert plan.startswith("training on 6 examples (none held out): 40 optimiser steps of 8")
    assert "at least min_steps=40" in plan and "warning" not in plan
    with_replay = config.plan(26, 0, replay=20)
    assert with_replay.startswith(
        "training on 26 examples (6 of the data and 20 replay rows; none held out): 40 "
    )
    assert config.total_steps(1000) == 375  # big data: the epochs decide
    assert "3 epochs" in config.plan(1000, 100) and "100 held out" in config.plan(1000, 100)
    assert TrainConfig(max_steps=5).total_steps(6) == 5


def test_a_run_too_short_to_learn_is_warned_about() -> None:
    short = TrainConfig(batch_size=4, grad_accumulation=2, epochs=1, min_steps=0)
    assert "warning: under 3 passes" in short.plan(100, 10)
