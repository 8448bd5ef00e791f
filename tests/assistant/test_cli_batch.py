"""``lorag batch`` and ``lorag eval`` as registered on the real ``lorag`` app, with tiny real models
(the commands' own behaviour is tested in test_batch_runner.py and test_evaluation.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.core.registry import AdapterRegistry


@pytest.fixture
def kb(cli: CliRunner, tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ops.md").write_text("# Ops\n\nThe Lisbon office opens at nine.\n")
    (docs / "hr.md").write_text("# HR\n\nHolidays are booked in the staff portal.\n")
    assert cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"]).exit_code == 0
    return docs


def test_eval_writes_a_report(cli: CliRunner, kb: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps(
            {
                "question": "When does the Lisbon office open?",
                "expected_answer": "nine",
                "expected_source": "ops.md",
            }
        )
        + "\n"
    )
    report = tmp_path / "report.json"
    result = cli.invoke(app, ["eval", str(questions), "-c", "kb", "-o", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    (hybrid,) = data["configurations"]
    assert hybrid["name"] == "base/hybrid" and hybrid["metrics"]["recall_at_k"] == 1.0
    assert report.with_suffix(".png").is_file()


def test_eval_with_a_reranker_folder_runs_end_to_end(
    cli: CliRunner, kb: Path, tmp_path: Path, tiny_cross_encoder_dir: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"question": "When does the Lisbon office open?", "expected_source": "ops.md"})
    )
    report = tmp_path / "report.json"
    folder = str(tiny_cross_encoder_dir)
    args = ["eval", str(questions), "-c", "kb", "-o", str(report), "--no-progress"]
    result = cli.invoke(app, [*args, "--reranker", folder])
    assert result.exit_code == 0, result.output
    assert f"reranked by {folder}" in result.output
    data = json.loads(report.read_text())
    assert data["reranker"] == folder
    (hybrid,) = data["configurations"]
    retrieved = sorted(Path(source).name for source in hybrid["rows"][0]["retrieved"])
    assert retrieved == ["hr.md", "ops.md"]
    assert hybrid["metrics"]["recall_at_k"] == 1.0


def test_an_empty_reranker_option_turns_the_configured_one_off(
    cli: CliRunner, kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORAG_RETRIEVAL__RERANKER", str(tmp_path / "no-such-reranker"))
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"question": "Where are holidays booked?", "expected_source": "hr.md"})
    )
    args = ["eval", str(questions), "-c", "kb", "-o", str(tmp_path / "r.json"), "--no-progress"]
    configured = cli.invoke(app, args)
    assert configured.exit_code == 1 and "retrieval.reranker" in configured.output
    switched_off = cli.invoke(app, [*args, "--reranker", ""])
    assert switched_off.exit_code == 0, switched_off.output
    assert json.loads((tmp_path / "r.json").read_text())["reranker"] is None


def test_batch_with_a_missing_question_column_fails_clearly(
    cli: CliRunner, kb: Path, tmp_path: Path
) -> None:
    questions = tmp_path / "q.csv"
    questions.write_text("id,query\n1,hello\n")
    result = cli.invoke(app, ["batch", str(questions), "-o", str(tmp_path / "a.csv"), "-c", "kb"])
    assert result.exit_code == 1 and "question" in result.output
    assert "Traceback" not in result.output


def test_batch_with_base_on_a_bound_collection_answers_by_the_base_and_every_row_says_so(
    cli: CliRunner, ops_kb: AdapterRegistry, tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    asked = ("When does the Lisbon office open?", "Where are holidays booked?")
    questions.write_text("".join(json.dumps({"question": q}) + "\n" for q in asked))

    def batch(output: str, by: str, *options: str) -> list[dict[str, object]]:
        """The rows of a ``lorag batch`` run that says it was answered ``by`` that model; each
        row must name it too."""
        args = ["batch", str(questions), "-o", str(tmp_path / output), "-c", "kb", *options]
        result = cli.invoke(app, [*args, "--no-progress"])
        assert result.exit_code == 0, result.output
        assert f"by {by} →" in result.output, result.output
        lines = (tmp_path / output).read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines]
        assert [row["adapter"] for row in rows] == [by] * len(asked)
        return rows

    unbound = batch("unbound.jsonl", "base")
    assert cli.invoke(app, ["adapters", "bind", "kb", "ops@1"]).exit_code == 0
    bound = batch("bound.jsonl", "ops@1")
    base = batch("base.jsonl", "base", "--adapter", "base")
    assert [row["answer"] for row in base] == [row["answer"] for row in unbound]
    assert [row["answer"] for row in bound] != [row["answer"] for row in unbound]
