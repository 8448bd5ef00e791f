"""The promotion gate through the command line, on the tiny models: ``lorag finetune
--eval-set`` gates the new version, ``--no-gate`` does not, ``lorag adapters gate`` runs it again
and ``lorag adapters list`` shows its word; asking for a gate with nothing to gate on is refused
before anything is trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.core.settings import Settings
from tests.api.conftest import DOCS

TRAIN = ["--set", "max_steps=1"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """The documents, a dataset and an evaluation set on them."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    facts = tmp_path / "facts.jsonl"
    rows = [
        {"instruction": f"Who maintains service {n}?", "output": f"Team {n}."} for n in range(8)
    ]
    facts.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    questions = tmp_path / "eval.csv"
    questions.write_text(
        "question,expected_answer,expected_source,unanswerable\n"
        "How many days of paid leave do employees get?,25 days,leave.txt,no\n"
        "In which class are train tickets reimbursed?,second class,travel.md,no\n"
        "What is the warranty of the Quillvane 9 hoverboard?,,,yes\n",
        encoding="utf-8",
    )
    return {"docs": docs, "facts": facts, "eval": questions}


def test_finetune_gates_and_adapters_gate_runs_it_again(
    cli: CliRunner, files: dict[str, Path], tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORAG_COLLECTION", "kb")
    assert (
        cli.invoke(app, ["ingest", str(files["docs"]), "-c", "kb", "--no-progress"]).exit_code == 0
    )
    args = ["finetune", "--name", "g", "--data", str(files["facts"]), *TRAIN]

    first = cli.invoke(app, [*args, "--eval-set", str(files["eval"])])
    assert first.exit_code == 0, first.output
    [decision] = [line for line in first.output.splitlines() if line.startswith("g@1 ")]
    assert "against base" in decision and "on 3 questions of" in decision
    for figure in ("answer_f1", "citation_precision", "abstention_accuracy", "forgetting_ratio"):
        assert f" {figure}: " in first.output
    shown = json.loads(cli.invoke(app, ["adapters", "show", "g@1"]).stdout)
    assert shown["gate"]["summary"] in decision
    assert shown["status"] == ("promoted" if shown["gate"]["passed"] else "candidate")

    second = cli.invoke(app, [*args, "--version", "2", "--no-gate"])
    assert second.exit_code == 0 and "not gated: `lorag adapters promote g@2`" in second.output
    assert json.loads(cli.invoke(app, ["adapters", "show", "g@2"]).stdout)["gate"] is None

    again = cli.invoke(app, ["adapters", "gate", "g@2"])
    assert again.exit_code == 0, again.output
    current = "g@1" if shown["gate"]["promoted"] else "base"
    assert again.output.startswith("g@2 ") and f"against {current}" in again.output
    gated = json.loads(cli.invoke(app, ["adapters", "show", "g@2"]).stdout)["gate"]
    assert gated["collection"] == "kb" and gated["current"] == current
    listed = cli.invoke(app, ["adapters", "list"]).output
    assert ("passed" if gated["passed"] else "failed:") in listed


def test_a_gate_with_nothing_to_gate_on_is_refused_before_training(
    cli: CliRunner, files: dict[str, Path], tiny_settings: Settings
) -> None:
    result = cli.invoke(app, ["finetune", "--name", "h", "--data", str(files["facts"]), "--gate"])
    assert result.exit_code == 1
    assert "collection 'default' has no evaluation set to gate on" in result.output
    assert not (tiny_settings.data_dir / "runs").exists()
    assert not (tiny_settings.data_dir / "adapters").exists()
    bad = files["eval"].with_name("bad.csv")
    bad.write_text("question\nWhat?\n", encoding="utf-8")
    refused = cli.invoke(
        app, ["finetune", "--name", "h", "--data", str(files["facts"]), "--eval-set", str(bad)]
    )
    assert refused.exit_code == 1 and "nothing to score against" in refused.output
    assert not (tiny_settings.data_dir / "evalsets").exists()
