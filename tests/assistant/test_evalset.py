"""A collection's evaluation set on the tiny models and the real store: held out of the RAFT
dataset that makes it and of every later one, checked against training rows, given as a file,
and reached by an erasure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.batch.formats import BatchInputError
from assistant.core.settings import ChunkingSettings, Settings
from assistant.evalset import (
    UNANSWERABLE,
    eval_set_path,
    held_out_chunk_ids,
    install_eval_set,
    leaks,
    read_eval_set,
    write_held_out,
)
from assistant.runtime import Runtime
from finetune.synth import build_raft_dataset
from tests.finetune.test_synth import DOCS, KB


@pytest.fixture
def runtime(tiny_settings: Settings, tmp_path: Path) -> Iterator[Runtime]:
    """``kb`` holds the five short documents of the RAFT tests in small chunks."""
    settings = tiny_settings.model_copy(
        update={"chunking": ChunkingSettings(chunk_tokens=32, overlap_tokens=4)}
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text + "\n", encoding="utf-8")
    rt = Runtime(settings)
    assert rt.ingestor(KB).ingest([docs]).ok
    yield rt
    rt.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_held_out_chunks_never_reach_a_training_row(runtime: Runtime, tmp_path: Path) -> None:
    options: dict[str, Any] = {"max_chunks": 10, "distractors": 2, "abstain_fraction": 0.25}
    first = build_raft_dataset(
        runtime, KB, tmp_path / "first.jsonl", seed=3, eval_fraction=0.3, **options
    )
    assert first.held_out and first.examples
    path = write_held_out(runtime.settings, KB, first.held_out, 0.25, seed=3)
    assert path == runtime.settings.data_dir / "evalsets" / f"{KB}.jsonl"

    rows = read_jsonl(path)
    answerable = [row for row in rows if not row["unanswerable"]]
    invented = [row for row in rows if row["unanswerable"]]
    assert len(answerable) == len(first.held_out)
    assert len(invented) == max(round(0.25 * len(answerable)), 1)
    assert {row["question"] for row in invented} <= set(UNANSWERABLE)
    chunks = {chunk.id: chunk for chunk in runtime.store.chunks(KB)}
    for row, pair in zip(answerable, first.held_out, strict=True):
        chunk = chunks[row["chunk_id"]]
        assert row["expected_answer"] == [pair.answer] and row["expected_source"] == [chunk.source]
        assert row["doc_ids"] == [chunk.doc_id]
    held = held_out_chunk_ids(path)
    assert held == {pair.chunk.id for pair in first.held_out}
    assert len(read_eval_set(path).questions) == len(rows)  # what `lorag eval` reads

    later = build_raft_dataset(
        runtime, KB, tmp_path / "later.jsonl", seed=4, exclude_chunk_ids=held, **options
    )
    assert not later.held_out
    for name in ("first.jsonl", "later.jsonl"):
        for record in read_jsonl(tmp_path / name):  # neither oracle nor distractor
            assert not held & set(record["chunk_ids"]), record
        assert not leaks(path, tmp_path / name).found


def test_a_training_row_asking_an_evaluation_question_or_teaching_its_chunk_is_a_leak(
    runtime: Runtime, tmp_path: Path
) -> None:
    report = build_raft_dataset(
        runtime, KB, tmp_path / "d.jsonl", max_chunks=6, distractors=1, seed=1, eval_fraction=0.5
    )
    path = write_held_out(runtime.settings, KB, report.held_out, 0.0, seed=1)
    [first, *_] = read_jsonl(path)
    rows = [
        {"question": first["question"].upper(), "answer": "x"},  # the same words
        {"question": "Something else?", "answer": "y", "oracle_chunk_id": first["chunk_id"]},
        {"messages": [{"role": "user", "content": first["question"]}], "answer": "z"},
        {"instruction": "Unrelated?", "output": "w"},
    ]
    training = tmp_path / "rows.jsonl"
    training.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    leak = leaks(path, training)
    assert (leak.questions, leak.chunks, leak.example) == (2, 1, first["question"].upper())
    assert "2 training rows ask an evaluation question and 1 teach" in leak.describe()


def test_a_given_question_file_becomes_the_evaluation_set(
    tiny_settings: Settings, tmp_path: Path
) -> None:
    given = tmp_path / "questions.csv"
    given.write_text(
        "question,expected_answer,expected_source,unanswerable\n"
        "How long is the Thames?,346 kilometres,thames.md,no\n"
        "Who owns the moon?,,,yes\n",
        encoding="utf-8",
    )
    path = install_eval_set(tiny_settings, "team", read_eval_set(given))
    assert path == eval_set_path(tiny_settings, "team")
    questions = read_eval_set(path).questions
    assert [(q.text, q.expected_answers, q.unanswerable) for q in questions] == [
        ("How long is the Thames?", ("346 kilometres",), False),
        ("Who owns the moon?", (), True),
    ]
    assert held_out_chunk_ids(path) == set()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("question\nWhat?\n", "nothing to score against"),
        ('{"question": "What?", "answer": "x"}\nnot json\n', "1 unusable rows (row 2: not valid"),
    ],
)
def test_an_unusable_question_file_is_refused_and_nothing_is_installed(
    tiny_settings: Settings, tmp_path: Path, text: str, named: str
) -> None:
    given = tmp_path / ("q.csv" if text.startswith("question") else "q.jsonl")
    given.write_text(text, encoding="utf-8")
    with pytest.raises(BatchInputError, match=named.replace("(", r"\(")):
        read_eval_set(given)
    assert not (tiny_settings.data_dir / "evalsets").exists()


def test_an_erasure_removes_the_evaluation_rows_of_the_document(
    runtime: Runtime, tmp_path: Path
) -> None:
    report = build_raft_dataset(
        runtime, KB, tmp_path / "d.jsonl", max_chunks=10, distractors=1, seed=2, eval_fraction=0.5
    )
    path = write_held_out(runtime.settings, KB, report.held_out, 0.2, seed=2)
    doc = read_jsonl(path)[0]["doc_ids"][0]

    erasure = runtime.delete_documents(KB, [doc])

    rows = read_jsonl(path)
    assert rows and all(doc not in row["doc_ids"] for row in rows)
    assert erasure.training_rows_removed[f"evalsets/{KB}.jsonl"] >= 1
    runtime.delete_collection(KB)
    assert not path.exists()
