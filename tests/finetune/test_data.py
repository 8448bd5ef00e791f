"""Datasets: the four formats, errors with file and line, fingerprints and the held-out split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.core.prompt import DEFAULT_TEMPLATE
from finetune.data import (
    DatasetError,
    Example,
    fingerprint,
    load_examples,
    parse_record,
    split_examples,
)
from tests.finetune.conftest import rag_record, write_jsonl


def test_every_format_is_detected_per_line(tmp_path: Path) -> None:
    records: list[Any] = [
        {
            "question": "Who baked it?",
            "sources": ["Source [1]: Anna baked the bread.", "Source [2]: Bob ate it."],
            "answer": " Anna [1]. ",
            "chunk_ids": ["c1", "c2"],
        },
        {"instruction": "Translate to French.", "input": "bread", "output": "pain"},
        {"instruction": "Say hello.", "output": "Hello!"},
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": "Blue."},
            ]
        },
        {
            "conversations": [
                {"from": "human", "value": "2 + 2?"},
                {"from": "gpt", "value": "4"},
            ]
        },
        {"prompt": "The sky is", "completion": "blue."},
    ]
    path = write_jsonl(tmp_path / "mixed.jsonl", records)
    (rag, alpaca, alpaca_plain, chat, sharegpt, completion) = load_examples(path)

    assert rag.format == "rag"
    assert rag.messages == DEFAULT_TEMPLATE.messages("Who baked it?", records[0]["sources"])
    assert rag.answer == "Anna [1]."
    assert rag.chunk_ids == ("c1", "c2")
    assert rag.line == 1

    assert alpaca.format == "alpaca"
    assert alpaca.messages == [{"role": "user", "content": "Translate to French.\n\nbread"}]
    assert alpaca.answer == "pain"
    assert alpaca_plain.messages == [{"role": "user", "content": "Say hello."}]

    assert chat.format == "chat"
    assert chat.messages == records[3]["messages"][:-1]  # earlier turns are the prompt
    assert chat.answer == "Blue."

    assert sharegpt.format == "chat"
    assert sharegpt.messages == [{"role": "user", "content": "2 + 2?"}]
    assert sharegpt.answer == "4"

    assert completion.format == "prompt_completion"
    assert completion.messages == [{"role": "user", "content": "The sky is"}]
    assert completion.answer == "blue."
    assert completion.line == 6


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"question": "x", "sources": [], "answer": "y"', "invalid JSON"),
        ('{"text": "free text"}', "unknown format (keys: text)"),
        ('{"instruction": "Do it."}', "missing field 'output'"),
        ('{"question": "Q?", "answer": "A"}', "missing field 'sources'"),
        ('{"question": "Q?", "sources": "S", "answer": "A"}', "'sources' must be a list"),
        ('{"prompt": "P", "completion": "   "}', "empty answer"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "must be the assistant's answer"),
        ('{"messages": [{"role": "robot", "content": "hi"}]}', "unknown role 'robot'"),
        ('{"conversations": [{"from": "gpt", "value": "hi"}]}', "no user turn"),
        ('{"instruction": 3, "output": "x"}', "'instruction' must be a string"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_a_bad_line_names_file_line_and_problem(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "data.jsonl"
    good = '{"prompt": "P", "completion": "C"}'
    path.write_text(f"{good}\n\n{line}\n{good}\n", encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        load_examples(path)
    error = caught.value
    assert error.line == 3  # the blank line still counts
    assert problem in error.problem
    assert str(error).startswith(f"{path}, line 3: ")


@pytest.mark.parametrize("content", ["", "\n  \n\n"])
def test_an_empty_dataset_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(DatasetError, match="empty") as caught:
        load_examples(path)
    assert caught.value.line is None


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_examples(tmp_path / "nope.jsonl")


def test_fingerprint_depends_on_content_only() -> None:
    examples = [parse_record(rag_record(n)) for n in range(5)]
    same = fingerprint(examples)
    assert len(same) == 64
    assert fingerprint(list(reversed(examples))) == same
    renumbered = [Example(e.messages, e.answer, e.format, chunk_ids=(), line=99) for e in examples]
    assert fingerprint(renumbered) == same  # provenance is not what is trained on
    changed = [*examples[:-1], Example(examples[-1].messages, "Something else.", "rag")]
    assert fingerprint(changed) != same
    assert fingerprint([*examples, examples[0]]) != same  # duplicates count


def test_split_is_seeded_disjoint_and_complete() -> None:
    examples = [parse_record(rag_record(n)) for n in range(20)]
    train, held = split_examples(examples, 0.2, seed=3)
    assert len(held) == 4 and len(train) == 16
    assert {e.answer + e.messages[1]["content"] for e in train}.isdisjoint(
        {e.answer + e.messages[1]["content"] for e in held}
    )
    assert fingerprint(train + held) == fingerprint(examples)
    assert split_examples(examples, 0.2, seed=3) == (train, held)
    assert split_examples(examples, 0.2, seed=4)[1] != held
    assert split_examples(examples, 0.01, seed=0)[1] != []  # at least one held out
    assert split_examples(examples, 0.0, seed=0) == (examples, [])
    assert split_examples(examples[:1], 0.5, seed=0) == (examples[:1], [])
    few = examples[:9]
    assert split_examples(few, 0.5, seed=0, minimum=10) == (few, [])  # all to learn from
    assert len(split_examples(examples[:10], 0.1, seed=0, minimum=10)[1]) == 1
