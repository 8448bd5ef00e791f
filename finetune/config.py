"""The training configuration: one typed, validated ``TrainConfig``, read from a recipe file.

A recipe is a YAML, TOML or JSON file of ``TrainConfig`` fields (``finetune/recipes/`` ships
``lora-cpu.yaml`` and ``qlora.yaml``; a run's own ``train_config.json`` is one too); command-line
overrides are applied on top. Unknown keys and bad values are refused with a :class:`ConfigError`
that names the field to fix and where it came from.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from assistant.core.errors import ConfigError

RECIPES_DIR = Path(__file__).parent / "recipes"
MIN_PASSES = 3
"""Fewer passes over the training data than this, and the plan warns that little is learnt."""
DEFAULT_TARGET_MODULES = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)

Method = Literal["lora", "qlora", "prompt_tuning"]
Scheduler = Literal["cosine", "linear", "constant"]


class TrainConfig(BaseModel):
    """How to train one adapter. Every field has a default; a recipe sets only what it changes.

    An optimiser step takes ``batch_size * grad_accumulation`` examples and normalises the loss
    by the number of answer tokens in them. Without ``packing`` they run as ``grad_accumulation``
    micro-batches of ``batch_size`` examples, padded to the longest; with ``packing`` they are
    packed into rows of at most ``max_seq_length`` tokens, ``batch_size`` rows per forward pass
    (position ids restart per example, so examples do not attend to each other). On several
    processes (:mod:`finetune.distributed`) a step's examples are shared between them, each
    running its share the same way: ``batch_size * grad_accumulation`` is the global batch.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    method: Method = Field("lora", description="lora, qlora (4-bit NF4 base) or prompt_tuning.")
    rank: int = Field(8, ge=1, le=1024, description="LoRA rank r.")
    alpha: int = Field(16, ge=1, description="LoRA alpha (the update is scaled by alpha/r).")
    dropout: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Dropout on the LoRA input. Off by default: on CPU drawing the random masks "
        "took as long as the rest of a step (SmolLM2, 557 tokens: 3.1 s vs 1.6 s).",
    )
    target_modules: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TARGET_MODULES),
        min_length=1,
        description="Modules that get LoRA weights (a list, or comma-separated names).",
    )
    virtual_tokens: int = Field(20, ge=1, le=512, description="Soft tokens for prompt tuning.")
    learning_rate: float = Field(2e-4, gt=0.0, le=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, ge=0.0, description="Gradient clipping; 0 turns it off.")
    lr_scheduler: Scheduler = "cosine"
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps (or use warmup_ratio).")
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="Warm-up as a share of steps.")
    epochs: int = Field(3, ge=1, description="Passes over the training split (unless max_steps).")
    max_steps: int | None = Field(None, ge=1, description="Optimiser steps; overrides epochs.")
    min_steps: int = Field(
        40,
        ge=0,
        description="Optimiser steps a run takes at least, so a small dataset gets enough passes "
        "to be learnt (max_steps overrides it).",
    )
    replay_examples: int = Field(
        20,
        ge=0,
        description="Rows of the base model's own answers to general questions trained beside "
        "the data (finetune/replay.py), so a few facts do not overwrite what it knew; 0: none.",
    )
    batch_size: int = Field(4, ge=1, description="Examples per micro-batch.")
    grad_accumulation: int = Field(1, ge=1, description="Micro-batches per optimiser step.")
    max_seq_length: int = Field(1024, ge=16, description="Tokens per example (and packed row).")
    packing: bool = Field(True, description="Pack examples into rows (off for prompt tuning).")
    gradient_checkpointing: bool = False
    bf16: bool | Literal["auto"] = Field(
        "auto", description="bfloat16 base and autocast; auto = where the CPU/GPU supports it."
    )
    seed: int = 0
    save_every: int = Field(50, ge=0, description="Checkpoint every N steps; 0 = never.")
    eval_split: float = Field(0.1, ge=0.0, lt=1.0, description="Share of examples held out.")
    eval_min_examples: int = Field(
        10, ge=0, description="A dataset of fewer examples is trained on whole (none held out)."
    )
    eval_every: int = Field(50, ge=0, description="Eval loss every N steps; 0 = only at the end.")

    @field_validator("target_modules", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.warmup_steps and self.warmup_ratio:
            raise ValueError("warmup_steps, warmup_ratio: set one of them, not both")
        if self.method == "prompt_tuning" and self.packing:
            if "packing" in self.model_fields_set:
                raise ValueError(
                    "packing: prompt tuning prepends its soft tokens to each row, so packed "
                    "examples would attend to each other; set packing: false"
                )
            object.__setattr__(self, "packing", False)
        return self

    def steps_per_epoch(self, examples: int) -> int:
        """Optimiser steps in one pass over ``examples`` (the last one may be short)."""
        per_step = self.batch_size * self.grad_accumulation
        return max(1, -(-examples // per_step))

    def total_steps(self, examples: int) -> int:
        """Optimiser steps for the whole run on ``examples`` training examples: ``max_steps``,
        else ``epochs`` passes but at least ``min_steps``."""
        return self.max_steps or max(self.min_steps, self.epochs * self.steps_per_epoch(examples))

    def plan(self, train: int, held_out: int, replay: int = 0) -> str:
        """What a run on ``train`` examples (``held_out`` kept for its evaluation, ``replay``
        of them replay rows) will do, said before it starts, with a warning when it is too short
        to learn."""
        steps = self.total_steps(train)
        per_step = self.batch_size * self.grad_accumulation
        passes = steps * per_step / max(train, 1)
        why = (
            "max_steps"
            if self.max_steps
            else f"at least min_steps={self.min_steps}"
            if steps > self.epochs * self.steps_per_epoch(train)
            else f"{self.epochs} epochs"
        )
        kept = f"{held_out} held out for the evaluation" if held_out else "none held out"
        if replay:
            kept = f"{train - replay} of the data and {replay} replay rows; {kept}"
        text = (
            f"training on {train} examples ({kept}): {steps} optimiser steps of {per_step} "
            f"examples ({why}; about {passes:.0f} passes over the data)"
        )
        if passes < MIN_PASSES:
            text += (
                f"; warning: under {MIN_PASSES} passes, an adapter rarely learns its data "
                "(raise epochs or max_steps)"
            )
        return text

    def warmup(self, total_steps: int) -> int:
        """Warm-up steps for a run of ``total_steps``."""
        return self.warmup_steps or round(self.warmup_ratio * total_steps)


def recipe_path(name: str) -> Path:
    """The shipped recipe ``name`` (``lora-cpu``, ``qlora``), or :class:`ConfigError`."""
    path = RECIPES_DIR / f"{name}.yaml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
        raise ConfigError(f"unknown recipe {name!r} (shipped: {shipped})")
    return path


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The recipe at ``path`` (YAML, TOML or JSON; ``None`` = defaults) with ``overrides`` on top.

    Overrides whose value is ``None`` are ignored (an option not given on the command line);
    strings are converted to the field's type ("1e-4", "true", "q_proj,v_proj").
    """
    values = _read_recipe(path) if path is not None else {}
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        where = f"recipe {str(path)!r} with overrides" if path is not None else "training options"
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise ConfigError(f"invalid {where}: {problems}") from exc


def _describe(error: Any) -> str:
    """A pydantic error as ``field: problem (got value)``; model-level ones name their fields."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    field = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{field}: unknown option (options: {', '.join(TrainConfig.model_fields)})"
    return f"{field}: {message} (got {error['input']!r})"


def _read_recipe(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"recipe {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix not in {".yaml", ".yml", ".toml", ".json"}:
        raise ConfigError(f"recipe {str(path)!r}: use a .yaml, .toml or .json file")
    text = path.read_text(encoding="utf-8")
    try:
        data = _parse(text, suffix)
    except ValueError as exc:
        raise ConfigError(f"recipe {str(path)!r} cannot be parsed: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {str(path)!r} must be a mapping of option: value")
    return dict(data)


def _parse(text: str, suffix: str) -> object:
    """The recipe's data; any syntax error as a ``ValueError``."""
    if suffix == ".toml":
        return tomllib.loads(text)
    if suffix == ".json":
        return json.loads(text)
    import yaml

    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc
