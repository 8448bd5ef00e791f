"""Tokenising with answer-only labels, and packing without cross-example leakage."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from assistant.core.models import load_causal_lm, load_generator
from assistant.core.settings import Settings
from finetune.batches import loss_sum, make_batches
from finetune.data import (
    IGNORE_INDEX,
    Example,
    TokenizedExample,
    pack,
    parse_record,
    render_prompt,
    tokenize_example,
)
from tests.finetune.conftest import rag_record


@pytest.fixture(scope="module")
def tokenizer(tiny_generator_dir: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_generator_dir)


def test_prompt_is_rendered_exactly_as_at_query_time(train_settings: Settings) -> None:
    generator = load_generator(train_settings)
    example = parse_record(rag_record(1))
    assert render_prompt(generator._tokenizer, example.messages) == generator.render(
        example.messages
    )


def test_labels_mask_every_prompt_token_and_keep_answer_and_eos(tokenizer) -> None:  # type: ignore[no-untyped-def]
    example = parse_record(rag_record(2))
    prompt = tokenizer.apply_chat_template(
        example.messages, tokenize=False, add_generation_prompt=True
    )
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.answer, add_special_tokens=False)["input_ids"]

    tokens = tokenize_example(example, tokenizer, max_len=512)

    assert tokens.input_ids == prompt_ids + answer_ids + [tokenizer.eos_token_id]
    assert tokens.labels == [IGNORE_INDEX] * len(prompt_ids) + answer_ids + [tokenizer.eos_token_id]
    assert tokens.answer_tokens == len(answer_ids) + 1
    labelled = [t for t in tokens.labels if t != IGNORE_INDEX]
    assert tokenizer.decode(labelled) == example.answer + tokenizer.eos_token
    assert not tokens.truncated


def test_a_long_example_keeps_its_answer_and_the_end_of_its_prompt(tokenizer) -> None:  # type: ignore[no-untyped-def]
    example = parse_record(rag_record(3))
    whole = tokenize_example(example, tokenizer, max_len=512)
    cut = tokenize_example(example, tokenizer, max_len=24)
    answer = whole.answer_tokens
    assert cut.truncated
    assert len(cut.input_ids) == 24
    assert cut.input_ids == whole.input_ids[-24:]
    assert cut.labels[-answer:] == whole.labels[-answer:]
    assert cut.labels[:-answer] == [IGNORE_INDEX] * (24 - answer)


ROW = 256


def _tokenized(tokenizer) -> list[TokenizedExample]:  # type: ignore[no-untyped-def]
    """Examples of 30 to 230 tokens: two RAG ones and questions of growing length."""
    examples: list[Example] = [parse_record(rag_record(n)) for n in range(2)]
    for n in range(10):
        record = {"prompt": "Why? " * (3 * n) + f"Bread {n}?", "completion": f"Because {n}."}
        examples.append(parse_record(record))
    return [tokenize_example(e, tokenizer, max_len=ROW) for e in examples]


def test_pack_fills_rows_without_splitting_or_losing_examples(tokenizer) -> None:  # type: ignore[no-untyped-def]
    tokenized = _tokenized(tokenizer)
    rows = pack(tokenized, max_len=ROW)
    assert len(rows) < len(tokenized)
    assert all(len(row.input_ids) <= ROW for row in rows)
    pieces = []
    for row in rows:
        assert len(row.input_ids) == len(row.labels) == len(row.position_ids) == sum(row.lengths)
        start = 0
        for length in row.lengths:
            assert row.position_ids[start : start + length] == list(range(length))
            pieces.append(
                (row.input_ids[start : start + length], row.labels[start : start + length])
            )
            start += length
    expected = sorted((t.input_ids, t.labels) for t in tokenized)
    assert sorted(pieces) == expected
    assert pack(tokenized, ROW) == rows  # deterministic
    with pytest.raises(ValueError, match="does not fit"):
        pack(tokenized, max_len=100)


def test_packed_loss_equals_the_sum_of_per_example_losses(
    train_settings: Settings,
    tokenizer,  # type: ignore[no-untyped-def]
) -> None:
    model, _ = load_causal_lm(train_settings, dtype=torch.float32)
    model.eval()
    tokenized = _tokenized(tokenizer)
    pad = tokenizer.pad_token_id

    def total(batches) -> float:  # type: ignore[no-untyped-def]
        with torch.no_grad():
            return sum(float(loss_sum(model, b)) for b in batches)

    one_by_one = total(
        make_batches(tokenized, packing=False, batch_size=1, max_len=ROW, pad_id=pad)
    )
    packed_batches = make_batches(tokenized, packing=True, batch_size=1, max_len=ROW, pad_id=pad)
    padded_batches = make_batches(tokenized, packing=False, batch_size=4, max_len=ROW, pad_id=pad)
    stacked_batches = make_batches(tokenized, packing=True, batch_size=4, max_len=ROW, pad_id=pad)
    assert len(packed_batches) < len(tokenized)
    assert len(stacked_batches) < len(packed_batches)  # rows stacked, shorter ones filled up
    assert total(packed_batches) == pytest.approx(one_by_one, rel=1e-5)
    assert total(stacked_batches) == pytest.approx(one_by_one, rel=1e-5)
    assert sum(b.tokens for b in stacked_batches) == sum(len(t.input_ids) for t in tokenized)
    assert total(padded_batches) == pytest.approx(one_by_one, rel=1e-5)
    assert sum(b.tokens for b in packed_batches) == sum(len(t.input_ids) for t in tokenized)
    assert sum(b.answer_tokens for b in packed_batches) == sum(t.answer_tokens for t in tokenized)

    # The check can see leakage: the same rows with positions running on let examples attend
    # to the ones before them, and the loss changes.
    leaky = [
        type(b)(b.input_ids, b.targets, None, None, b.tokens, b.answer_tokens)
        for b in packed_batches
    ]
    assert abs(total(leaky) - one_by_one) > 1e-3 * one_by_one
