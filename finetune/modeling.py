"""The model being trained: the base from ``load_causal_lm`` with a PEFT adapter on top.

One switch (``TrainConfig.method``) picks the adapter:

- ``lora``: LoRA on ``target_modules``; the frozen base in bfloat16 where supported (adapter
  weights stay float32, peft's default), else float32.
- ``qlora``: the base loaded 4-bit (NF4, double quantisation, bf16 compute) by bitsandbytes,
  ``prepare_model_for_kbit_training``, then LoRA. Runs on CPU too (slowly).
- ``prompt_tuning``: ``virtual_tokens`` trained soft tokens prepended to every input, initialised
  from the embeddings of sampled vocabulary tokens.

The base comes through :func:`assistant.core.models.load_causal_lm`, the loader serving uses, so
the weights, tokenizer and chat template cannot drift between training and serving.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.core.errors import ConfigError
from assistant.core.settings import Settings
from finetune.config import TrainConfig

# Non-reentrant activation checkpointing: no need for inputs that require grad, RNG preserved.
NON_REENTRANT = {"use_reentrant": False}

if TYPE_CHECKING:
    import torch
    from peft import PeftConfig, PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class TrainableModel:
    """A PEFT model with what the loop needs to run it."""

    model: PeftModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    bf16: bool
    virtual_tokens: int

    @property
    def autocast(self) -> Callable[[], AbstractContextManager[object]]:
        """A factory of the precision context for one forward pass (bf16 autocast or nothing)."""
        import torch

        device_type, enabled = self.device.type, self.bf16
        return lambda: torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled)

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)


def use_bf16(config: TrainConfig, device: str) -> bool:
    """Whether to train in bfloat16: ``config.bf16``, with ``auto`` = the hardware supports it."""
    import torch

    from assistant.core.models import resolve_dtype

    if config.bf16 == "auto":
        return resolve_dtype("auto", device) == torch.bfloat16
    return bool(config.bf16)


def _load_base(
    settings: Settings, config: TrainConfig, bf16: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    import torch

    from assistant.core.models import load_causal_lm

    dtype = torch.bfloat16 if bf16 else torch.float32
    if config.method != "qlora":
        model, tokenizer = load_causal_lm(settings, dtype=dtype)
        if config.gradient_checkpointing:
            # transformers 5.x renamed it; the old name still works and warns.
            enable = getattr(model, "activation_checkpointing_enable", None)
            (enable or model.gradient_checkpointing_enable)(NON_REENTRANT)
    else:
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        model, tokenizer = load_causal_lm(
            settings,
            dtype=dtype,
            quantization_config=quantization,
            device_map={"": settings.generator.device},
        )
        with _quiet_peft():
            model = prepare_model_for_kbit_training(
                model,
                use_gradient_checkpointing=config.gradient_checkpointing,
                gradient_checkpointing_kwargs=NON_REENTRANT,
            )
    model.config.use_cache = False
    return model, tokenizer


def peft_config(config: TrainConfig) -> PeftConfig:
    """The PEFT configuration for ``config.method``."""
    from peft import LoraConfig, PromptTuningConfig, PromptTuningInit

    if config.method == "prompt_tuning":
        return PromptTuningConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=config.virtual_tokens,
            prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB,
        )
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        bias="none",
    )


def build_model(settings: Settings, config: TrainConfig) -> TrainableModel:
    """The base with a freshly initialised adapter (seeded by ``config.seed``), in train mode.

    The adapter records ``settings.generator.model`` as its base, which is what serving checks.
    """
    import torch
    from peft import get_peft_model
    from transformers import set_seed

    bf16 = use_bf16(config, settings.generator.device)
    base, tokenizer = _load_base(settings, config, bf16)
    set_seed(config.seed)
    try:
        with _quiet_peft():
            model = get_peft_model(base, peft_config(config))
    except ValueError as exc:
        if "target_modules" in str(exc) or "not found in the base model" in str(exc):
            raise ConfigError(f"target_modules: {exc}") from exc
        raise
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()  # train soft tokens in float32 too
    model.peft_config["default"].base_model_name_or_path = settings.generator.model
    model.train()
    return _wrap(model, tokenizer, bf16, config)


def load_trained(settings: Settings, config: TrainConfig, adapter_dir: Path) -> TrainableModel:
    """The base as it was trained (4-bit for QLoRA) with the saved adapter, in eval mode."""
    from peft import PeftModel

    bf16 = use_bf16(config, settings.generator.device)
    as_trained = config.model_copy(update={"gradient_checkpointing": False})
    base, tokenizer = _load_base(settings, as_trained, bf16)
    with _quiet_peft():
        model = PeftModel.from_pretrained(base, str(adapter_dir))
    model.eval()
    return _wrap(model, tokenizer, bf16, config)


@contextmanager
def _quiet_peft() -> Iterator[None]:
    """Silence the deprecations peft 0.21 triggers in transformers 5 (old checkpointing names)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`")
        warnings.filterwarnings("ignore", "`gradient_checkpointing_enable`")
        yield


def _wrap(model: Any, tokenizer: Any, bf16: bool, config: TrainConfig) -> TrainableModel:
    virtual = config.virtual_tokens if config.method == "prompt_tuning" else 0
    return TrainableModel(model, tokenizer, next(model.parameters()).device, bf16, virtual)


def trainable_parameters(model: PeftModel) -> list[torch.nn.Parameter]:
    """The parameters the optimiser updates (the adapter's)."""
    return [p for p in model.parameters() if p.requires_grad]
