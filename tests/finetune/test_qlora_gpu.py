"""QLoRA on CUDA with the real default model: NF4 base (double quantisation, bf16 compute),
paged AdamW, and an adapter that answers invented facts it was trained on.

Marked ``gpu``: it skips itself without CUDA (CI has none) and runs wherever a GPU is lent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core.models import load_generator
from assistant.core.settings import GeneratorSettings, Settings
from finetune.config import TrainConfig
from finetune.data import parse_record
from finetune.modeling import build_model
from finetune.trainer import train
from tests.finetune.test_real_model import FACTS


@pytest.mark.gpu
def test_qlora_on_cuda_learns_invented_facts(tmp_path: Path) -> None:
    import bitsandbytes as bnb

    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        generator=GeneratorSettings(device="cuda"),
    )
    config = TrainConfig(
        method="qlora",
        max_steps=30,
        learning_rate=1e-3,
        batch_size=len(FACTS),
        max_seq_length=256,
        gradient_checkpointing=True,
        save_every=0,
        eval_every=0,
    )
    trainable = build_model(settings, config)
    q_proj = trainable.model.base_model.model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, bnb.nn.Linear4bit)
    assert q_proj.base_layer.weight.quant_type == "nf4"
    assert trainable.device.type == "cuda"
    del trainable

    examples = [parse_record({"instruction": q, "output": a}) for q, a in FACTS]
    result = train(settings, config, examples, [], tmp_path / "run")
    losses = [h["loss"] for h in result.history]
    assert result.method == "qlora"
    assert losses[-1] < 0.25 * losses[0]

    generator = load_generator(settings)
    question = [{"role": "user", "content": FACTS[3][0]}]
    assert "Velsport" not in generator.generate(question, 24)
    generator.load_adapter(str(result.adapter_dir), "facts")
    assert "Velsport" in generator.generate(question, 24, adapter="facts")
