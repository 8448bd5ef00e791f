"""``lorag store``: snapshots and migration through the command line, on the embedded engines
(no model is loaded: these commands never embed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.core.settings import load_settings
from assistant.core.store import open_engine
from tests.core.test_store import DIM, KB, make_doc, put


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir whose edge engine holds ``kb`` (documents a and b, 5 chunks)."""
    monkeypatch.setenv("LORAG_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LORAG_STORE__URL", raising=False)
    monkeypatch.delenv("LORAG_STORE__EMBEDDED_ENGINE", raising=False)
    store = open_engine(load_settings(), "edge")
    store.create_collection(KB, DIM)
    put(store, make_doc("a", 3) + make_doc("b", 2))
    store.close()
    return tmp_path


def lorag(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_snapshot_create_list_and_restore(data_dir: Path) -> None:
    code, output = lorag("store", "snapshot", "create", "-c", KB)
    assert code == 0, output
    [file] = (data_dir / "snapshots" / KB).iterdir()
    assert f"snapshot of 'kb': {file}" in output
    code, output = lorag("store", "snapshot", "list")
    assert code == 0 and output.startswith("kb  20") and output.endswith(f"  5 points  {file}\n")

    store = open_engine(load_settings(), "edge")
    store.delete_document(KB, "a")
    store.close()
    code, output = lorag("store", "snapshot", "restore", str(file), "-c", KB)
    assert (code, output.strip()) == (0, f"restored 'kb' from {file}: 5 points")


def test_snapshot_commands_say_what_is_wrong(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = lorag("store", "snapshot", "restore", str(data_dir / "nothing"), "-c", KB)
    assert code == 1 and f"error: no snapshot file at {data_dir / 'nothing'}" in output
    code, output = lorag("store", "snapshot", "create", "-c", "missing")
    assert code == 1 and "unknown collection 'missing' (collections: kb)" in output
    monkeypatch.setenv("LORAG_STORE__EMBEDDED_ENGINE", "client")
    code, output = lorag("store", "snapshot", "list")
    assert code == 1 and "local mode (embedded_engine 'client') has no snapshots" in output


def test_migrate_between_the_embedded_engines_then_refuse_resume_and_replace(
    data_dir: Path,
) -> None:
    code, output = lorag("store", "migrate", "-c", KB, "--to", "client", "--no-progress")
    assert code == 0, output
    assert "kb: 5 points copied from edge to client and verified (same ids)" in output
    code, output = lorag("store", "migrate", "-c", KB, "--to", "client", "--no-progress")
    assert code == 1 and "already holds 5 points: --resume" in output
    for flag in ("--resume", "--replace"):
        code, output = lorag("store", "migrate", "-c", KB, "--to", "client", flag, "--no-progress")
        assert code == 0 and "5 points copied" in output, output
    store = open_engine(load_settings(), "client")
    try:
        assert store.count(KB) == 5 and store.count(KB, doc_id="b") == 2
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "edge"], "--from and --to name the same store (edge)"),
        (["--to", "elsewhere"], "unknown store 'elsewhere': give a Qdrant server URL"),
        (["--to", "client", "--resume", "--replace"], "--replace and --resume exclude each other"),
        (
            ["--to", "http://127.0.0.1:9"],
            "the Qdrant server at http://127.0.0.1:9: cannot reach it",
        ),
    ],
)
def test_migrate_refuses_arguments_it_cannot_follow(
    data_dir: Path, args: list[str], message: str
) -> None:
    code, output = lorag("store", "migrate", "-c", KB, "--no-progress", *args)
    assert code == 1 and message in output
    assert not (data_dir / "qdrant" / "client").exists()
