"""``lorag distill`` end to end on tiny real models: RAFT prompts from an embedded collection,
the adapter registered with the documents its rows came from; a teacher on another tokenizer
refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from assistant.cli import app
from assistant.core.registry import AdapterRegistry
from assistant.core.settings import Settings

DOCS = {
    "thames.md": "The river Thames flows through London and reaches the North Sea. It is 346 "
    "kilometres long and passes Oxford on the way to the estuary near Southend.",
    "curie.md": "The physicist Marie Curie won two Nobel prizes, in 1903 and 1911. She was born "
    "in Warsaw and worked in Paris for most of her life with Pierre Curie.",
    "bread.md": "Bread is made from flour, water, salt and yeast, then baked at 230 degrees. The "
    "baker in Lyon sells 400 loaves every morning before eight o'clock.",
}
DISTIL = ["--set", "max_steps=2", "--set", "batch_size=2", "--set", "grad_accumulation=1"]
SMALL = ["--max-new-tokens", "6", "--max-chunks", "3", "--distractors", "1"]


def ingest(cli: CliRunner, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text + "\n", encoding="utf-8")
    made = cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"])
    assert made.exit_code == 0, made.output


def test_distil_from_a_collection_registers_the_adapter_with_its_source_documents(
    cli: CliRunner, tiny_settings: Settings, tiny_teacher_dir: Path, tmp_path: Path
) -> None:
    ingest(cli, tmp_path)
    command = ["distill", "--name", "opd", "--teacher", str(tiny_teacher_dir)]
    done = cli.invoke(app, [*command, "--from-collection", "kb", *DISTIL, *SMALL])

    assert done.exit_code == 0, done.output
    assert "registered opd@1" in done.output
    record = AdapterRegistry.for_settings(tiny_settings).get("opd")
    rows = (record.adapter_dir / "training-data.jsonl").read_text(encoding="utf-8").splitlines()
    row_docs = {doc for line in rows for doc in json.loads(line)["doc_ids"]}
    assert row_docs
    assert set(record.source_doc_ids) == row_docs
    assert set(record.source_doc_hashes) == row_docs
    metrics = json.loads((record.adapter_dir / "metrics.json").read_text())
    assert metrics["distillation"]["teacher"] == str(tiny_teacher_dir)
    assert metrics["steps"] == 2


def test_a_teacher_on_another_tokenizer_is_refused_and_nothing_is_written(
    cli: CliRunner, tiny_settings: Settings, other_tokenizer_dir: Path, tmp_path: Path
) -> None:
    ingest(cli, tmp_path)
    command = ["distill", "--name", "opd", "--teacher", str(other_tokenizer_dir)]
    refused = cli.invoke(app, [*command, "--from-collection", "kb", *DISTIL, *SMALL])

    assert refused.exit_code == 1
    assert "does not share the student's tokenizer" in refused.output
    assert not (tiny_settings.data_dir / "runs" / "opd").exists()
    assert AdapterRegistry.for_settings(tiny_settings).list() == []
