"""Batch answering with tiny real models over the real embedded store: the engine's batch path,
``run_batch`` across formats, resume after a real ``kill -9``, and the ``lorag batch`` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from assistant.batch.formats import BatchInputError
from assistant.batch.output import journal_path, read_answers
from assistant.batch.runner import BatchProgress, run_batch
from assistant.cli.batch import batch
from assistant.core.errors import CollectionNotFoundError
from assistant.core.settings import GeneratorSettings, Settings
from assistant.core.types import Citation
from assistant.runtime import Runtime
from tests.assistant.test_batch_formats import write_table

QUESTIONS = [
    "What is the hotel limit per night?",
    "How many days of paid leave do employees get?",
    "Are train tickets reimbursed?",
    "When do unused leave days expire?",
    "Which city has a hotel limit?",
]


@pytest.fixture
def settings(tiny_settings: Settings, tmp_path: Path) -> Settings:
    """Tiny models (the generator in float32, so batched and single answers match exactly) and
    a collection ``kb`` of two documents."""
    spec = GeneratorSettings(model=tiny_settings.generator.model, dtype="float32")
    settings = tiny_settings.model_copy(update={"generator": spec})
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text(
        "# Travel policy\n\nTrain tickets are reimbursed in second class.\n\n"
        "## Hotels\n\nThe hotel limit is 120 euros per night in Amsterdam.\n"
    )
    (docs / "leave.txt").write_text(
        "Employees get 25 days of paid leave per year. Unused days expire in March.\n"
    )
    rt = Runtime(settings)
    assert rt.ingestor("kb").ingest([docs]).ok
    rt.close()
    return settings


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    yield rt
    rt.close()


def questions_file(path: Path, questions: list[str] = QUESTIONS) -> Path:
    return write_table(path, ["id", "question"], [[f"q{i}", q] for i, q in enumerate(questions)])


# --------------------------------------------------------------------------- engine batch path


def _same_citations(batched: list[Citation], single: list[Citation]) -> bool:
    """Equal but for the similarity's last float bits (a rounded value can straddle a boundary)."""
    return len(batched) == len(single) and all(
        replace(b, similarity=0.0) == replace(s, similarity=0.0)
        and b.similarity == pytest.approx(s.similarity, abs=1e-4)
        for b, s in zip(batched, single, strict=True)
    )


def test_ask_batch_gives_the_answers_ask_gives(runtime: Runtime) -> None:
    engine = runtime.engine
    batched = engine.ask_batch(QUESTIONS, "kb")
    single = [engine.ask(question, "kb") for question in QUESTIONS]
    assert [a.text for a in batched] == [a.text for a in single]
    assert [a.abstain_reason for a in batched] == [a.abstain_reason for a in single]
    # Questions embedded in one batch and one at a time differ in the last float bits only.
    assert len(batched) == len(single)
    for one_of_batch, alone in zip(batched, single, strict=True):
        assert _same_citations(one_of_batch.citations, alone.citations)
        assert _same_citations(one_of_batch.sources, alone.sources)
    assert all(a.timings["total_s"] >= a.timings["retrieve_s"] > 0 for a in batched)


def test_batch_retrieval_matches_single_retrieval_in_both_modes(runtime: Runtime) -> None:
    engine = runtime.engine
    for mode in ("hybrid", "dense"):
        batched = engine.retrieve_batch(QUESTIONS, "kb", top_k=3, mode=mode)
        single = [engine.retrieve(q, "kb", top_k=3, mode=mode) for q in QUESTIONS]
        assert [[h.chunk.id for h in hits] for hits in batched] == [
            [h.chunk.id for h in hits] for hits in single
        ]
    dense = engine.retrieve("hotel limit", "kb", top_k=3, mode="dense")
    assert [h.similarity for h in dense] == sorted((h.similarity for h in dense), reverse=True)
    assert all(h.score == h.similarity for h in dense)  # no fusion: the score is the cosine


def test_weak_retrieval_abstains_in_a_batch_without_generating(runtime: Runtime) -> None:
    engine = runtime.engine
    engine.retrieval = engine.retrieval.model_copy(update={"min_similarity": 1.01})
    answers = engine.ask_batch(QUESTIONS[:2], "kb")
    assert [a.abstain_reason for a in answers] == ["weak_retrieval"] * 2
    assert all(a.sources and not a.citations for a in answers)


def test_answers_without_sources_cite_nothing(runtime: Runtime) -> None:
    answers = runtime.engine.answer_batch(QUESTIONS[:3], None)
    assert all(a.sources == [] and a.citations == [] for a in answers)
    assert all(a.abstain_reason in (None, "model_declined") for a in answers)


# --------------------------------------------------------------------------- run_batch


@pytest.mark.parametrize(
    ("source", "target"), [(".csv", ".jsonl"), (".jsonl", ".xlsx"), (".xlsx", ".csv")]
)
def test_every_format_in_and_out(
    runtime: Runtime, tmp_path: Path, source: str, target: str
) -> None:
    output = tmp_path / f"answers{target}"
    seen: list[BatchProgress] = []
    summary = run_batch(
        runtime,
        questions_file(tmp_path / f"q{source}"),
        output,
        "kb",
        batch_size=2,
        progress=seen.append,
    )
    assert (summary.rows, summary.failed, summary.skipped) == (5, 0, 0)
    assert summary.answered + summary.abstained == 5 and summary.questions_per_min > 0
    assert [(p.done, p.total) for p in seen] == [(2, 5), (4, 5), (5, 5)]

    records = read_answers(output)
    assert [r["id"] for r in records] == ["q0", "q1", "q2", "q3", "q4"]
    assert [r["question"] for r in records] == QUESTIONS
    expected = runtime.engine.ask_batch(QUESTIONS[:2], "kb")
    assert [r["answer"] for r in records[:2]] == [a.text for a in expected]
    abstained = [str(r["abstained"]).lower() == "true" for r in records]
    assert sum(abstained) == summary.abstained
    assert all(float(r["latency_s"]) > 0 and float(r["retrieval_score"]) > -1 for r in records)


def test_resume_answers_only_new_rows(runtime: Runtime, tmp_path: Path) -> None:
    output = tmp_path / "answers.csv"
    run_batch(runtime, questions_file(tmp_path / "q.csv", QUESTIONS[:3]), output, "kb")
    summary = run_batch(runtime, questions_file(tmp_path / "q.csv"), output, "kb", resume=True)
    assert (summary.skipped, summary.answered + summary.abstained) == (3, 2)
    assert [r["id"] for r in read_answers(output)] == ["q0", "q1", "q2", "q3", "q4"]
    with pytest.raises(BatchInputError, match="already exists"):
        run_batch(runtime, questions_file(tmp_path / "q.csv"), output, "kb")


def test_cancel_stops_between_batches_and_resume_finishes(runtime: Runtime, tmp_path: Path) -> None:
    output = tmp_path / "answers.jsonl"
    questions = questions_file(tmp_path / "q.jsonl")
    batches: list[int] = []
    summary = run_batch(
        runtime,
        questions,
        output,
        "kb",
        batch_size=2,
        progress=lambda p: batches.append(p.done),
        cancel=lambda: len(batches) == 1,
    )
    assert summary.cancelled and [r["id"] for r in read_answers(output)] == ["q0", "q1"]
    summary = run_batch(runtime, questions, output, "kb", resume=True, batch_size=2)
    assert not summary.cancelled and summary.skipped == 2
    assert [r["id"] for r in read_answers(output)] == ["q0", "q1", "q2", "q3", "q4"]


def test_malformed_rows_and_a_failing_question_fail_alone(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate_batch = runtime.generator.generate_batch

    def fails_on_boom(
        batch: list[list[dict[str, str]]], *args: object, **kwargs: object
    ) -> list[str]:
        if any("boom" in message["content"] for chat in batch for message in chat):
            raise RuntimeError("the model fell over")
        return generate_batch(batch, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runtime.generator, "generate_batch", fails_on_boom)
    path = questions_file(tmp_path / "q.csv", [QUESTIONS[0], "", "hotel boom?", QUESTIONS[1]])
    output = tmp_path / "answers.csv"
    summary = run_batch(runtime, path, output, "kb", batch_size=4)
    assert [str(f) for f in summary.failures] == [
        "row 3: the question is empty: ask something about your documents",
        "row 4: RuntimeError: the model fell over",
    ]
    assert [r["id"] for r in read_answers(output)] == ["q0", "q3"]
    assert summary.answered + summary.abstained == 2 and summary.rows == 4


def test_unknown_collection_fails_before_writing(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(CollectionNotFoundError, match="'nope'"):
        run_batch(runtime, questions_file(tmp_path / "q.csv"), tmp_path / "a.csv", "nope")
    assert not (tmp_path / "a.csv").exists()


CHILD = """
import sys
from pathlib import Path
from assistant.batch.runner import run_batch
from assistant.core.settings import load_settings
from assistant.runtime import Runtime

def report(progress):
    print(progress.done, flush=True)

run_batch(Runtime(load_settings()), Path(sys.argv[1]), Path(sys.argv[2]), "kb", batch_size=2,
          progress=report)
"""


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_kill_9_loses_at_most_the_rows_in_flight(
    settings: Settings, tmp_path: Path, suffix: str
) -> None:
    questions = [f"{QUESTIONS[i % len(QUESTIONS)]} ({i})" for i in range(16)]
    source = questions_file(tmp_path / "q.jsonl", questions)
    output = tmp_path / f"answers{suffix}"
    env = {
        **os.environ,
        "LORAG_DATA_DIR": str(settings.data_dir),
        "LORAG_GENERATOR__MODEL": settings.generator.model,
        "LORAG_GENERATOR__DTYPE": "float32",
        "LORAG_EMBEDDER__MODEL": settings.embedder.model,
        "LORAG_GENERATION__MAX_NEW_TOKENS": str(settings.generation.max_new_tokens),
        "LORAG_GENERATION__CONTEXT_TOKENS": str(settings.generation.context_tokens),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(source), str(output)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "2"  # the first batch is written
    before = [r["id"] for r in read_answers(output)]
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL

    survived = [r["id"] for r in read_answers(output)]
    assert survived[: len(before)] == before and len(before) >= 2  # nothing written was lost
    assert len(survived) < len(questions)  # the kill came mid-run
    rt = Runtime(settings)
    try:
        summary = run_batch(rt, source, output, "kb", resume=True, batch_size=4)
    finally:
        rt.close()
    assert summary.skipped == len(survived) and summary.failed == 0
    ids = [r["id"] for r in read_answers(output)]
    assert ids == [f"q{i}" for i in range(16)]  # every row exactly once, in order
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(output).active
        assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == ids
        assert journal_path(output).is_file()


# --------------------------------------------------------------------------- lorag batch


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> tuple[CliRunner, typer.Typer]:
    monkeypatch.setenv("LORAG_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LORAG_GENERATOR__MODEL", settings.generator.model)
    monkeypatch.setenv("LORAG_EMBEDDER__MODEL", settings.embedder.model)
    monkeypatch.setenv("LORAG_GENERATION__MAX_NEW_TOKENS", "8")
    app = typer.Typer()
    app.command("batch")(batch)
    app.command("other")(lambda: None)  # two commands, so "batch" is named on the line
    return CliRunner(), app


def test_batch_command_prints_a_summary(cli: tuple[CliRunner, typer.Typer], tmp_path: Path) -> None:
    runner, app = cli
    source = questions_file(tmp_path / "q.csv")
    output = tmp_path / "answers.xlsx"
    args = ["batch", str(source), "-o", str(output), "-c", "kb", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "5 rows:" in result.stdout and "0 failed" in result.stdout
    assert "questions/min" in result.stdout and output.is_file()

    again = runner.invoke(app, [*args, "--resume"])
    assert again.exit_code == 0 and "5 answered before" in again.stdout


def test_batch_command_exits_1_on_failed_rows_and_bad_input(
    cli: tuple[CliRunner, typer.Typer], tmp_path: Path
) -> None:
    runner, app = cli
    source = questions_file(tmp_path / "q.csv", [QUESTIONS[0], " "])
    result = runner.invoke(
        app, ["batch", str(source), "-o", str(tmp_path / "a.jsonl"), "-c", "kb", "--no-progress"]
    )
    assert result.exit_code == 1
    assert "row 3: the question is empty" in result.stderr and "1 failed" in result.stdout

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = runner.invoke(app, ["batch", str(empty), "-o", str(tmp_path / "b.csv"), "-c", "kb"])
    assert result.exit_code == 1 and "empty.csv' is empty" in result.stderr
