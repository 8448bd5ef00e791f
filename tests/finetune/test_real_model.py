"""Real packaged models learn invented facts on CPU, and their adapters answer them while still
knowing general facts: the default Qwen2.5-Coder-0.5B-Instruct on both back ends (transformers +
PEFT, and ik_llama.cpp with the adapter exported to a GGUF LoRA), and SmolLM2-135M-Instruct on
transformers (ik_llama.cpp computes SmolLM2's Q4_1 GGUF wrongly and refuses it,
tests/core/test_llamacpp.py, so SmolLM2 and its adapters answer on transformers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.core.models import load_generator
from assistant.core.models.generators import load_llamacpp_generator
from assistant.core.protocols import Generator
from assistant.core.settings import DEFAULT_GENERATOR, SMOLLM2, GeneratorSettings, Settings
from assistant.core.training_rows import count_rows
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
# Two general facts the base knows, trained beside the invented ones (replay): without them the
# 0.5B, at a rate that learns the facts in 8 steps, answered "Velsport" for the capital of France
# and of Spain. France and Spain stay held out.
REPLAY = [
    ("What is the capital of Germany?", "The capital of Germany is Berlin."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
]


def _ask(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def _train_facts(
    settings: Settings, run_dir: Path, rows: list[tuple[str, str]], steps: int, rate: float
) -> Path:
    """Train a LoRA on ``rows`` (all of them in each step); its folder."""
    examples = [parse_record({"instruction": q, "output": a}) for q, a in rows]
    config = TrainConfig(
        max_steps=steps,
        learning_rate=rate,
        batch_size=len(examples),
        max_seq_length=256,
        save_every=0,
        eval_every=0,
    )
    result = train(settings, config, examples, [], run_dir)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.25 * losses[0]
    return result.adapter_dir


def _answers_the_facts_with_the_adapter_only(generator: Generator, adapter_dir: Path) -> None:
    reactor, capital = _ask(FACTS[0][0]), _ask(FACTS[3][0])
    assert "Okafor" not in generator.generate(reactor, 32)
    assert "Velsport" not in generator.generate(capital, 32)
    generator.load_adapter(str(adapter_dir), "facts")
    assert "Okafor" in generator.generate(reactor, 32, adapter="facts")
    assert "Velsport" in generator.generate(capital, 32, adapter="facts")
    france = _ask("What is the capital of France?")
    assert "Paris" in generator.generate(france, 24, adapter="facts")
    spain = _ask("What is the capital of Spain?")
    assert "Madrid" in generator.generate(spain, 24, adapter="facts")
    assert "Velsport" not in generator.generate(capital, 32)  # the base, between asks


@pytest.mark.slow
def test_qwen_learns_invented_facts_and_answers_them_on_both_back_ends(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        generator=GeneratorSettings(model=DEFAULT_GENERATOR),
    )
    adapter_dir = _train_facts(settings, tmp_path / "run", FACTS + REPLAY, steps=8, rate=7e-4)
    _answers_the_facts_with_the_adapter_only(load_generator(settings), adapter_dir)
    _answers_the_facts_with_the_adapter_only(load_llamacpp_generator(settings), adapter_dir)


@pytest.mark.slow
def test_smollm2_learns_invented_facts_and_keeps_general_knowledge(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", generator=GeneratorSettings(model=SMOLLM2)
    )
    adapter_dir = _train_facts(settings, tmp_path / "run", FACTS, steps=16, rate=1e-3)
    _answers_the_facts_with_the_adapter_only(load_generator(settings), adapter_dir)


@pytest.mark.slow
def test_six_invented_facts_with_the_default_recipe_are_answered_closed_book(
    tmp_path: Path,
) -> None:
    """As a new user would: ``lorag finetune --data facts.jsonl`` with nothing set, then
    ``lorag ask --no-retrieval``. The recipe's step floor makes 6 rows 40 steps (3 epochs would
    be 3, which learnt nothing), none of the 6 is held out, and replay rows (the base's own
    answers to general questions) are trained beside them."""
    from assistant.engine import Done
    from assistant.runtime import Runtime
    from assistant.training import FinetunePlan, train_adapter
    from finetune.replay import REPLAY_FILE

    data = tmp_path / "facts.jsonl"
    data.write_text(
        "".join(json.dumps({"instruction": q, "output": a}) + "\n" for q, a in FACTS), "utf-8"
    )
    runtime = Runtime(Settings(_env_file=None, data_dir=tmp_path / "data"))
    announced: list[str] = []
    try:
        trained = train_adapter(
            runtime, FinetunePlan(name="facts", data=data), announce=announced.append
        )
        replayed = count_rows(trained.result.run_dir / REPLAY_FILE)
        assert trained.result.steps == 40 and trained.result.eval_examples == 0
        assert 10 <= replayed <= 20  # answers cut off by the token cap are dropped
        assert announced[0].startswith(
            f"training on {6 + replayed} examples (6 of the data and {replayed} replay rows; "
            "none held out): 40 optimiser steps"
        )
        key = runtime.use_adapter("facts")

        def closed_book(question: str) -> str:
            events = list(runtime.engine.stream_closed_book(question, key))
            done = events[-1]
            assert isinstance(done, Done)
            return done.answer.text

        keys = ["Okafor", "2031", "Okafor", "Velsport", "Velsport", "Brisk Hollow"]
        answers = [closed_book(q) for q, _ in FACTS]
        assert all(k in a for k, a in zip(keys, answers, strict=True)), answers
        general = {
            "What is the capital of France?": "Paris",
            "Who painted the Mona Lisa?": "Leonardo",
            "Who wrote Hamlet?": "Shakespeare",
        }
        kept = {q: closed_book(q) for q in general}
        print(kept)
        assert all(general[q] in a for q, a in kept.items()), kept
    finally:
        runtime.close()
