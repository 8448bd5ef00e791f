"""Wrong input to ``lorag`` fails with its own message before any model loads or converts:
the loaders are replaced by ones that fail the test if they are reached."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import pytest
from typer.testing import CliRunner

import assistant.core.models as models
from assistant.cli import app


def _loaded(*_: object, **__: object) -> NoReturn:
    raise AssertionError("a model was loaded before the input was checked")


@pytest.fixture
def no_models(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """``cli`` over a data folder with the collection ``kb``; after it is made, loading the
    generator, the embedder or the reranker fails the test."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe alpha server runs backups nightly.\n")
    made = cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"])
    assert made.exit_code == 0, made.output
    monkeypatch.setattr(models, "load_serving_generator", _loaded)
    monkeypatch.setattr(models, "load_embedder", _loaded)
    monkeypatch.setattr(models, "ensure_converted", _loaded)
    monkeypatch.setattr(models, "load_reranker", _loaded)
    return cli


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["ask", "", "-c", "kb"], "the question is empty"),
        (["ask", "   ", "-c", "kb"], "the question is empty"),
        (["ask", "why " * 600, "-c", "kb"], "over the limit of 2000"),
        (["ask", "Who runs backups?", "-c", "nope"], "unknown collection 'nope' (collections: kb)"),
        (["ask", "Who runs backups?", "-c", "kb", "--adapter", "ghost"], "unknown adapter 'ghost'"),
        (["ask", "Who?", "-c", "kb", "--adapter", "/no/such/folder"], "'/no/such/folder'"),
        (["chat", "-c", "nope"], "unknown collection 'nope'"),
        (["chat", "-c", "kb", "--adapter", "ghost@2"], "'ghost'"),
        (["ingest", "/no/such/folder", "-c", "new", "--no-progress"], "/no/such/folder"),
        (["batch", "/no/such/questions.csv", "-o", "out.csv", "-c", "kb"], "questions.csv"),
        (["batch", "{questions}", "-o", "out.csv", "-c", "kb", "--adapter", "ghost"], "'ghost'"),
        (["eval", "/no/such/questions.jsonl", "-c", "kb"], "questions.jsonl"),
        (["ask", "Who?", "-c", "kb", "--reranker", "/no/such/reranker"], "retrieval.reranker"),
        (["eval", "{questions}", "-c", "kb", "--reranker", "/no/reranker"], "'/no/reranker'"),
    ],
)
def test_wrong_input_fails_before_any_model_loads(
    no_models: CliRunner, tmp_path: Path, args: list[str], named: str
) -> None:
    questions = tmp_path / "questions.csv"
    questions.write_text("question,expected_source\nWho runs backups?,a.md\n", encoding="utf-8")
    result = no_models.invoke(app, [arg.format(questions=questions) for arg in args])
    assert result.exit_code != 0
    assert not isinstance(result.exception, AssertionError), result.exception
    assert named in result.output, result.output


def test_a_configured_reranker_that_finds_nothing_fails_batch_before_any_model_loads(
    no_models: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORAG_RETRIEVAL__RERANKER", "/no/such/reranker")
    questions = tmp_path / "questions.csv"
    questions.write_text("question\nWho runs backups?\n", encoding="utf-8")
    result = no_models.invoke(app, ["batch", str(questions), "-o", "out.csv", "-c", "kb"])
    assert result.exit_code == 1
    assert not isinstance(result.exception, AssertionError), result.exception
    assert "LORAG_RETRIEVAL__RERANKER" in result.output and "/no/such/reranker" in result.output


def test_a_wrong_ingest_path_creates_no_collection(no_models: CliRunner) -> None:
    no_models.invoke(app, ["ingest", "/no/such/folder", "-c", "new", "--no-progress"])
    listed = no_models.invoke(app, ["collections"])
    assert listed.exit_code == 0 and "new" not in listed.output
