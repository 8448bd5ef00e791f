"""Feedback and erasure through the command line, with tiny real models: a chat answer rated
down with a correction, an adapter trained on that feedback, then the document deleted: the
adapter is tainted (listed so, refused when asked), the erasure audited and reported, and a
retrain with no row left refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.core.settings import Settings
from ingestion.chunking import document_id

CORRECTION = "Bravo team owns the billing service [1]."


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha\n\nThe alpha server runs backups nightly.\n")
    (folder / "b.txt").write_text("Bravo team owns the billing service.\n")
    return folder


def test_rate_train_on_feedback_erase_and_report(
    cli: CliRunner, docs: Path, tiny_settings: Settings
) -> None:
    assert cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"]).exit_code == 0
    chat = cli.invoke(
        app,
        ["chat", "-c", "kb"],
        input=f"/up\nWho owns billing?\n/down {CORRECTION}\n/sideways\n\n",
    )
    assert chat.exit_code == 0, chat.output
    assert "nothing to rate yet" in chat.output and "unknown command '/sideways'" in chat.output
    assert "rated down with your correction" in chat.output
    [line] = (tiny_settings.data_dir / "feedback.jsonl").read_text().splitlines()
    rated = json.loads(line)
    assert (rated["rating"], rated["correction"], rated["key_id"]) == ("down", CORRECTION, "cli")
    assert rated["question"] == "Who owns billing?" and rated["sources"]

    trained = cli.invoke(
        app, ["finetune", "--name", "fb", "--from-feedback", "kb", "--set", "max_steps=1"]
    )
    assert trained.exit_code == 0, trained.output
    assert "dataset: 1 rows from feedback (1 correction)" in trained.output
    assert "registered fb@1" in trained.output

    deleted = cli.invoke(app, ["documents", "delete", str(docs / "b.txt"), "-c", "kb"])
    assert deleted.exit_code == 0, deleted.output
    assert "tainted fb@1" in deleted.output
    # the row is kept by fb@1 and by its run's dataset; the rating goes too
    assert "removed 2 training rows (kept by adapters and training runs) and 1 feedback" in (
        deleted.output
    )

    listed = cli.invoke(app, ["adapters", "list"])
    assert "tainted" in listed.output and "fb@1 is tainted" in listed.output
    asked = cli.invoke(app, ["ask", "Who owns billing?", "-c", "kb", "--adapter", "fb"])
    assert asked.exit_code == 1 and "fb@1 is tainted" in asked.output

    doc_id = document_id(str((docs / "b.txt").resolve()))
    report = cli.invoke(app, ["documents", "erasure-report", doc_id])
    assert report.exit_code == 0, report.output
    [erasure] = json.loads(report.stdout)
    assert erasure["adapters_tainted"] == ["fb@1"] and erasure["feedback_removed"] == 1
    assert erasure["requested_by"] == "cli" and erasure["documents"][0]["doc_id"] == doc_id
    audit = [
        json.loads(x) for x in (tiny_settings.data_dir / "audit.jsonl").read_text().splitlines()
    ]
    assert [(x["action"], x["erasure_id"]) for x in audit] == [
        ("documents.delete", erasure["erasure_id"])
    ]
    unknown = cli.invoke(app, ["documents", "erasure-report", "0" * 32])
    assert unknown.exit_code == 1 and "was never erased" in unknown.output

    retrained = cli.invoke(app, ["adapters", "retrain", "fb"])
    assert retrained.exit_code == 1 and "no training row is left" in retrained.output
