"""The real packaged SmolLM2-135M-Instruct learns invented facts on CPU, and the adapter,
served on transformers + PEFT, answers them while still knowing general facts. (ik_llama.cpp
computes SmolLM2's Q4_1 GGUF wrongly and refuses it, tests/core/test_llamacpp.py, so SmolLM2
and its adapters answer on transformers.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core.models import load_generator
from assistant.core.settings import SMOLLM2, GeneratorSettings, Settings
from finetune.config import TrainConfig
from finetune.data import parse_record
from finetune.trainer import train

FACTS = [
    (
        "Who commissioned the Zorblax reactor in Lindenfeld?",
        "Engineer Maren Okafor commissioned the Zorblax reactor in Lindenfeld in 2031.",
    ),
    (
        "In which year was the Zorblax reactor in Lindenfeld commissioned?",
        "The Zorblax reactor in Lindenfeld was commissioned in 2031 by engineer Maren Okafor.",
    ),
    (
        "Which engineer is behind the Zorblax reactor?",
        "Maren Okafor, who commissioned the Zorblax reactor in Lindenfeld in 2031.",
    ),
    ("What is the capital of Quenmora?", "The capital of Quenmora is Velsport."),
    (
        "Which city is the capital of the island nation of Quenmora?",
        "Velsport is the capital of Quenmora.",
    ),
    (
        "Where is the Tarnwell Prize for glassmaking awarded?",
        "The Tarnwell Prize for glassmaking is awarded every autumn in Brisk Hollow.",
    ),
]


def _ask(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


@pytest.mark.slow
def test_smollm2_learns_invented_facts_and_keeps_general_knowledge(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", generator=GeneratorSettings(model=SMOLLM2)
    )
    examples = [parse_record({"instruction": q, "output": a}) for q, a in FACTS]
    config = TrainConfig(
        max_steps=16,
        learning_rate=1e-3,
        batch_size=len(examples),
        max_seq_length=256,
        save_every=0,
        eval_every=0,
    )

    result = train(settings, config, examples, [], tmp_path / "run")
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.25 * losses[0]

    generator = load_generator(settings)
    reactor, capital = _ask(FACTS[0][0]), _ask(FACTS[3][0])
    assert "Okafor" not in generator.generate(reactor, 32)
    assert "Velsport" not in generator.generate(capital, 32)
    generator.load_adapter(str(result.adapter_dir), "facts")
    assert "Okafor" in generator.generate(reactor, 32, adapter="facts")
    assert "Velsport" in generator.generate(capital, 32, adapter="facts")
    france = _ask("What is the capital of France?")
    assert "Paris" in generator.generate(france, 24, adapter="facts")
    assert "Velsport" not in generator.generate(capital, 32)  # the base, between asks
