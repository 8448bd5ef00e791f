"""Loading the models and answering print no progress bars (a server's log, or a terminal
chat, would otherwise get one per model file on every start, and more on each ask)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core.settings import Settings
from assistant.runtime import Runtime

BARS = ("it/s]", "%|")


def test_loading_and_asking_print_no_progress_bars(
    tiny_settings: Settings, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Backups\n\nThe alpha server runs backups nightly.\n")
    runtime = Runtime(tiny_settings)
    try:
        capfd.readouterr()
        assert runtime.ingestor("kb").ingest([docs]).ok  # loads the embedder
        runtime.engine.ask("Which server runs backups?", "kb")  # loads the generator
        runtime.engine.ask("When do backups run?", "kb")
        printed = capfd.readouterr()
    finally:
        runtime.close()
    for output in (printed.out, printed.err):
        assert not any(bar in output for bar in BARS), output
