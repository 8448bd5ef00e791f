"""How good an adapter is: held-out loss, forgetting, and answer token-F1.

- Held-out loss and perplexity on the answer tokens of the eval split, for the base and the
  adapter: one loaded model, the adapter switched off with ``disable_adapter()`` for the base.
- Forgetting: perplexity of plain general English (``finetune/data/general.txt``, shipped with
  the package) for the base and the adapter. A ratio (adapter / base) well above 1 means the
  adapter damaged the model's general language.
- :func:`token_f1` (SQuAD normalisation) and :func:`answer_f1` over any answering function, so
  the engine can be evaluated with retrieval in the loop.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assistant.core.settings import Settings
from finetune.batches import Batch, make_batches, mean_loss
from finetune.config import TrainConfig
from finetune.data import IGNORE_INDEX, Example, TokenizedExample, tokenize_example
from finetune.modeling import TrainableModel, load_trained


def general_text() -> str:
    """The shipped general-English text of the forgetting check (~2.7 KB, self-written)."""
    # Next to this module: importlib.resources cannot read it through setuptools' editable-
    # install finder (NotADirectoryError when run outside the repository).
    return (Path(__file__).parent / "data" / "general.txt").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Scores:
    """One model's figures; ``eval_*`` are ``None`` without held-out examples."""

    eval_loss: float | None
    eval_perplexity: float | None
    general_perplexity: float


def _text_examples(trainable: TrainableModel, text: str, max_len: int) -> list[TokenizedExample]:
    """``text`` in windows of ``max_len`` tokens, every token but each window's first labelled."""
    ids = list(trainable.tokenizer(text, add_special_tokens=False)["input_ids"])
    windows = [ids[start : start + max_len] for start in range(0, len(ids), max_len)]
    labelled = [TokenizedExample(w, [IGNORE_INDEX, *w[1:]]) for w in windows if len(w) > 1]
    return labelled


def _scores(
    trainable: TrainableModel,
    eval_batches: list[Batch],
    text_batches: list[Batch],
    virtual_tokens: int,
) -> Scores:
    def loss(batches: list[Batch]) -> float:
        return mean_loss(
            trainable.model, batches, trainable.device, trainable.autocast, virtual_tokens
        )

    eval_loss = loss(eval_batches) if eval_batches else None
    return Scores(
        eval_loss=eval_loss,
        eval_perplexity=math.exp(eval_loss) if eval_loss is not None else None,
        general_perplexity=math.exp(loss(text_batches)),
    )


def evaluate_adapter(
    settings: Settings, config: TrainConfig, adapter_dir: Path, eval_examples: Sequence[Example]
) -> dict[str, Any]:
    """Base and adapter scores on the held-out examples and the general text, and their ratio."""
    trainable = load_trained(settings, config, adapter_dir)

    def batches(examples: Sequence[TokenizedExample]) -> list[Batch]:
        return make_batches(
            examples,
            packing=config.packing,
            batch_size=config.batch_size,
            max_len=config.max_seq_length,
            pad_id=trainable.pad_id,
        )

    tokenizer, length = trainable.tokenizer, config.max_seq_length
    eval_batches = batches([tokenize_example(e, tokenizer, length) for e in eval_examples])
    text_batches = batches(_text_examples(trainable, general_text(), config.max_seq_length))
    with trainable.model.disable_adapter():
        base = _scores(trainable, eval_batches, text_batches, virtual_tokens=0)
    adapter = _scores(trainable, eval_batches, text_batches, trainable.virtual_tokens)
    return {
        "eval_examples": len(eval_examples),
        "base": asdict(base),
        "adapter": asdict(adapter),
        "forgetting_ratio": adapter.general_perplexity / base.general_perplexity,
    }


# --------------------------------------------------------------------------- answer F1


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """The best SQuAD token F1 of ``prediction`` against any of ``references``.

    An empty normalised prediction or reference scores 1 only when both are empty.
    """
    if not references:
        raise ValueError("token_f1 needs at least one reference answer")
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for reference in references:
        gold = normalize_answer(reference).split()
        if not predicted or not gold:
            best = max(best, float(predicted == gold))
            continue
        common = sum((Counter(predicted) & Counter(gold)).values())
        if common:
            precision, recall = common / len(predicted), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def answer_f1(generate: Callable[[Example], str], examples: Sequence[Example]) -> float:
    """Mean token F1 of ``generate(example)`` against each example's answer."""
    if not examples:
        raise ValueError("answer_f1 needs at least one example")
    return sum(token_f1(generate(e), [e.answer]) for e in examples) / len(examples)
