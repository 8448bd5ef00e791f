"""Evaluation: token F1, answer F1, and base-vs-adapter losses on held-out and general text."""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch

from assistant.core.models import load_causal_lm
from assistant.core.settings import Settings
from finetune.batches import make_batches, mean_loss
from finetune.config import TrainConfig
from finetune.data import Example, tokenize_example
from finetune.evaluate import answer_f1, evaluate_adapter, general_text, token_f1
from finetune.trainer import train


@pytest.mark.parametrize(
    ("prediction", "references", "f1"),
    [
        ("Paris", ["Paris"], 1.0),
        ("The Eiffel Tower!", ["eiffel   tower"], 1.0),  # case, punctuation, articles
        ("Paris, France", ["Paris"], 2 * 0.5 * 1.0 / 1.5),
        ("London", ["Paris"], 0.0),
        ("in Paris", ["Lyon", "Paris"], 2 * 0.5 * 1.0 / 1.5),  # the best reference counts
        ("", ["Paris"], 0.0),
        ("the", ["a"], 1.0),  # both empty once normalised
        ("red red blue", ["red blue blue"], 2 / 3),  # tokens counted with multiplicity
    ],
)
def test_token_f1_is_squad_f1(prediction: str, references: list[str], f1: float) -> None:
    assert token_f1(prediction, references) == pytest.approx(f1)


def test_answer_f1_averages_over_examples(rag_examples: list[Example]) -> None:
    answers = {e.answer: e.answer for e in rag_examples[:3]}
    answers[rag_examples[2].answer] = "no idea"

    def generate(example: Example) -> str:
        return answers[example.answer]

    # "It is red [1]." -> {it, is, red, 1}; "no idea" shares nothing with the third.
    assert answer_f1(generate, rag_examples[:3]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        answer_f1(generate, [])


def test_general_text_ships_with_the_package() -> None:
    text = general_text()
    assert 2000 < len(text.encode()) < 4000
    assert "Paris is the capital of France" in text


def test_evaluation_compares_the_adapter_with_the_untouched_base(
    train_settings: Settings,
    rag_examples: list[Example],
    fast_config: TrainConfig,
    tmp_path: Path,
) -> None:
    config = fast_config.model_copy(update={"max_steps": 10})
    train_examples, held_out = rag_examples[:9], rag_examples[9:]
    result = train(train_settings, config, train_examples, held_out, tmp_path / "run")

    evaluation = evaluate_adapter(train_settings, config, result.adapter_dir, held_out)

    base, adapter = evaluation["base"], evaluation["adapter"]
    assert evaluation["eval_examples"] == 3
    # The held-out questions share the training ones' shape: the adapter does much better.
    assert adapter["eval_loss"] < 0.7 * base["eval_loss"]
    assert adapter["eval_perplexity"] == pytest.approx(math.exp(adapter["eval_loss"]))
    assert adapter["eval_loss"] == pytest.approx(result.eval_loss, rel=1e-4)
    assert evaluation["forgetting_ratio"] == pytest.approx(
        adapter["general_perplexity"] / base["general_perplexity"]
    )

    # "base" is the base model itself: the same loss as a fresh model without any adapter.
    model, tokenizer = load_causal_lm(train_settings, dtype=torch.float32)
    tokens = [tokenize_example(e, tokenizer, config.max_seq_length) for e in held_out]
    batches = make_batches(
        tokens, packing=True, batch_size=2, max_len=config.max_seq_length, pad_id=0
    )
    plain = mean_loss(model, batches, torch.device("cpu"), nullcontext)
    assert base["eval_loss"] == pytest.approx(plain, rel=1e-5)
