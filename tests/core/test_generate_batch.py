"""Batched greedy generation: the same texts as one-by-one generation, in one pass per token."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core.errors import AdapterError
from assistant.core.models import HFGenerator, load_generator
from assistant.core.settings import GeneratorSettings, Settings
from tests.core.test_models import make_lora

CHATS = [
    [{"role": "user", "content": "What does the river do?"}],
    [
        {"role": "system", "content": "Answer from the sources, and cite them like [1]."},
        {
            "role": "user",
            "content": "Source [1]: Bread is made from flour, water, salt and "
            "yeast, then baked in a hot oven until golden.\n\nQuestion: how is bread made?",
        },
    ],
    [{"role": "user", "content": "Marie Curie won two Nobel prizes."}],
    [{"role": "user", "content": "In 1969 the first people walked on the Moon."}],
]


@pytest.fixture(scope="module")
def generator(tiny_generator_dir: Path) -> HFGenerator:
    # float32: bfloat16 rounding differs with the padded shape and can flip a near-tie argmax.
    spec = GeneratorSettings(model=str(tiny_generator_dir), dtype="float32")
    return load_generator(Settings(_env_file=None, generator=spec))


def test_batched_greedy_equals_one_by_one(generator: HFGenerator) -> None:
    one_by_one = [generator.generate(chat, max_new_tokens=40) for chat in CHATS]
    assert generator.generate_batch(CHATS, max_new_tokens=40) == one_by_one
    # The prompts differ in length (left padding matters) and so do the answers.
    assert len({generator.count_tokens(generator.render(chat)) for chat in CHATS}) == len(CHATS)
    assert len({len(text) for text in one_by_one}) > 1


def test_rows_stop_on_their_own(generator: HFGenerator) -> None:
    """A row that loops stops where ``generate`` stops it; the others go on."""
    long = [generator.generate(chat, max_new_tokens=120) for chat in CHATS]
    lengths = [generator.count_tokens(text) for text in long]
    assert min(lengths) < max(lengths)  # some row stopped early (EOS or loop) and not all did
    assert generator.generate_batch(CHATS, max_new_tokens=120) == long


def test_a_batch_of_one_and_an_empty_batch(generator: HFGenerator) -> None:
    assert generator.generate_batch(CHATS[:1], 12) == [generator.generate(CHATS[0], 12)]
    assert generator.generate_batch([], 12) == []


def test_padding_side_is_left_as_it_was(generator: HFGenerator) -> None:
    before = generator._tokenizer.padding_side
    generator.generate_batch(CHATS[:2], 4)
    assert generator._tokenizer.padding_side == before


def test_adapter_is_used_and_checked(tiny_generator_dir: Path, tmp_path: Path) -> None:
    spec = GeneratorSettings(model=str(tiny_generator_dir), dtype="float32")
    generator = load_generator(Settings(_env_file=None, generator=spec))
    with pytest.raises(AdapterError, match="loaded: none"):
        generator.generate_batch(CHATS, 8, adapter="legal")
    generator.load_adapter(str(make_lora(tiny_generator_dir, tmp_path / "lora", seed=1)), "first")

    tuned = generator.generate_batch(CHATS, 24, adapter="first")
    assert tuned == [generator.generate(chat, 24, adapter="first") for chat in CHATS]
    base = generator.generate_batch(CHATS, 24)
    assert base == [generator.generate(chat, 24) for chat in CHATS]
    assert tuned != base
