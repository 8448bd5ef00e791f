"""``lorag finetune`` and ``lorag adapters`` with tiny real models: the whole adapter life cycle
through the command line, and refusals that leave the registry unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.core.settings import Settings

TRAIN = ["--set", "max_steps=2", "--set", "save_every=1", "--set", "eval_split=0.25"]
TRAIN += ["--set", "eval_min_examples=0"]  # hold out from the few examples of these tests


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "facts.jsonl"
    rows = [
        {"instruction": f"Who maintains service {n}?", "output": f"Team {n} maintains it."}
        for n in range(8)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def registry_files(settings: Settings) -> list[str]:
    root = settings.data_dir / "adapters"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_finetune_register_list_show_promote_rollback_delete(
    cli: CliRunner, dataset: Path, tiny_settings: Settings, tmp_path: Path
) -> None:
    first = cli.invoke(app, ["finetune", "--name", "ops", "--data", str(dataset), *TRAIN])
    assert first.exit_code == 0, first.output
    assert "registered ops@1" in first.output

    again = cli.invoke(app, ["finetune", "--name", "ops", "--data", str(dataset), *TRAIN])
    assert again.exit_code == 1 and "already exists" in again.output

    second = cli.invoke(
        app, ["finetune", "--name", "ops", "--version", "2", "--data", str(dataset), *TRAIN]
    )
    assert second.exit_code == 0, second.output

    listed = cli.invoke(app, ["adapters", "list"])
    assert "ops@1" in listed.output and "ops@2" in listed.output

    shown = json.loads(cli.invoke(app, ["adapters", "show", "ops@1"]).stdout)
    assert shown["name"] == "ops" and shown["version"] == 1
    assert shown["base_model"] == tiny_settings.generator.model
    assert len(shown["dataset_fingerprint"]) >= 16
    adapter_dir = Path(shown["path"])
    assert (adapter_dir / "adapter_model.safetensors").is_file()
    assert (adapter_dir / "metrics.json").is_file() and (adapter_dir / "loss.png").is_file()
    assert not [p for p in adapter_dir.rglob("*") if p.suffix in {".bin", ".pt", ".pkl"}]

    gguf_file = tmp_path / "ops.gguf"
    exported = cli.invoke(app, ["adapters", "export", "ops@1", "-o", str(gguf_file)])
    assert exported.exit_code == 0, exported.output
    assert gguf_file.read_bytes()[:4] == b"GGUF" and "llama.cpp" in exported.output
    refused = cli.invoke(app, ["adapters", "export", "ops@1", "-o", str(gguf_file)])
    assert refused.exit_code == 1 and "already exists" in refused.output
    wrong = cli.invoke(app, ["adapters", "export", "ops@1", "-o", "x.onnx", "--format", "onnx"])
    assert wrong.exit_code == 2 and "onnx" in wrong.output

    assert cli.invoke(app, ["adapters", "promote", "ops@1"]).exit_code == 0
    assert cli.invoke(app, ["adapters", "promote", "ops@2"]).exit_code == 0
    rolled = cli.invoke(app, ["adapters", "rollback", "ops"])
    assert rolled.exit_code == 0 and "ops@1" in rolled.output

    deleted = cli.invoke(app, ["adapters", "delete", "ops@2"])
    assert deleted.exit_code == 0 and "ops@2" in deleted.output
    assert "ops@2" not in cli.invoke(app, ["adapters", "list"]).output


def test_ask_with_a_registered_adapter_and_a_bound_collection(
    cli: CliRunner, dataset: Path, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ops.md").write_text("# Ops\n\nTeam 3 maintains service 3 and its backups.\n")
    assert cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"]).exit_code == 0
    assert (
        cli.invoke(app, ["finetune", "--name", "ops", "--data", str(dataset), *TRAIN]).exit_code
        == 0
    )

    asked = cli.invoke(
        app, ["ask", "Who maintains service 3?", "-c", "kb", "--adapter", "ops@1", "--json"]
    )
    assert asked.exit_code == 0, asked.output
    assert json.loads(asked.stdout)["adapter"] == "ops@1"

    assert cli.invoke(app, ["adapters", "bind", "kb", "ops"]).exit_code == 0
    bound = cli.invoke(app, ["ask", "Who maintains service 3?", "-c", "kb", "--json"])
    assert json.loads(bound.stdout)["adapter"] == "ops@1"
    assert "ops" in cli.invoke(app, ["collections"]).output

    unknown = cli.invoke(app, ["ask", "hi", "-c", "kb", "--adapter", "nope"])
    assert unknown.exit_code == 1 and "nope" in unknown.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"instruction": "a", "output": "b"}\n{not json}\n', "line 2"),
        ("", "empty"),
    ],
)
def test_bad_datasets_are_refused_and_the_registry_is_unchanged(
    cli: CliRunner, tiny_settings: Settings, tmp_path: Path, content: str, message: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content, encoding="utf-8")
    before = registry_files(tiny_settings)
    result = cli.invoke(app, ["finetune", "--name", "bad", "--data", str(bad), *TRAIN])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert registry_files(tiny_settings) == before


def test_finetune_needs_exactly_one_data_source(cli: CliRunner, dataset: Path) -> None:
    neither = cli.invoke(app, ["finetune", "--name", "x"])
    assert neither.exit_code == 1 and "exactly one" in neither.output
    both = cli.invoke(
        app, ["finetune", "--name", "x", "--data", str(dataset), "--from-collection", "kb"]
    )
    assert both.exit_code == 1


def test_unknown_recipe_is_named(cli: CliRunner, dataset: Path) -> None:
    result = cli.invoke(
        app, ["finetune", "--name", "x", "--data", str(dataset), "--config", "turbo"]
    )
    assert result.exit_code == 1 and "turbo" in result.output


def test_finetune_from_a_collection_scores_held_out_answers_with_retrieval(
    cli: CliRunner, tiny_settings: Settings, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n, (city, day) in enumerate(
        [("Lisbon", "Monday"), ("Oslo", "Friday"), ("Bern", "Tuesday")]
    ):
        (docs / f"office{n}.md").write_text(
            f"# Office {n}\n\nThe {city} office opens at nine on {day} and closes at six. "
            f"Its manager keeps the keys of the {city} archive in a locked drawer.\n"
        )
    assert cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"]).exit_code == 0
    dataset = tmp_path / "review.jsonl"
    args = ["finetune", "--name", "kbft", "--from-collection", "kb", "--max-chunks", "3"]
    args += ["--distractors", "1", "--abstain-fraction", "0", "--dataset-out", str(dataset)]
    result = cli.invoke(app, [*args, *TRAIN])
    assert result.exit_code == 0, result.output
    assert dataset.is_file() and "registered kbft@1" in result.output
    assert "answers on transformers (no llama.cpp parity check" in result.output

    shown = json.loads(cli.invoke(app, ["adapters", "show", "kbft"]).stdout)
    metrics = json.loads((Path(shown["path"]) / "metrics.json").read_text())
    scores = metrics["evaluation"]["answer_f1"]
    assert scores["collection"] == "kb" and scores["questions"] >= 1
    assert 0.0 <= scores["base"] <= 1.0 and 0.0 <= scores["adapter"] <= 1.0
    # the tiny model has no GGUF, so there is no llama.cpp to check it on: said, not faked
    parity = metrics["evaluation"]["llamacpp_parity"]
    assert parity["checked"] is False and parity["served_on_llamacpp"] is False
    assert "GGUF" in parity["reason"]
    assert shown["lora_gguf_sha256"] is None and not (Path(shown["path"]) / "adapter.gguf").exists()

    # The collection's first RAFT dataset held one chunk's questions out as its evaluation set,
    # and the new version was gated on it.
    evalset = [json.loads(line) for line in (tiny_settings.data_dir / "evalsets/kb.jsonl").open()]
    held = {row["chunk_id"] for row in evalset if row["chunk_id"]}
    assert len(held) == 1
    assert not [row for row in map(json.loads, dataset.open()) if held & set(row["chunk_ids"])]
    assert shown["gate"]["candidate"] == "kbft@1" and shown["gate"]["current"] == "base"
    assert shown["gate"]["questions"] == len(evalset)
