"""Fixtures for the command-line tests: a CliRunner whose environment points at tiny models, and
a collection with a registered adapter that changes its answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.core.registry import AdapterRegistry, TrainingOrigin
from assistant.core.settings import Settings
from assistant.runtime import Runtime
from tests.core.test_models import make_lora
from tests.core.test_registry import make_run

OPS_DOCS = {
    "ops.md": "# Ops\n\nThe Lisbon office opens at nine.\n",
    "hr.md": "# HR\n\nHolidays are booked in the staff portal.\n",
}


@pytest.fixture
def cli(tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("LORAG_DATA_DIR", str(tiny_settings.data_dir))
    monkeypatch.setenv("LORAG_GENERATOR__MODEL", tiny_settings.generator.model)
    monkeypatch.setenv("LORAG_EMBEDDER__MODEL", tiny_settings.embedder.model)
    monkeypatch.setenv("LORAG_GENERATION__MAX_NEW_TOKENS", "8")
    return CliRunner()


@pytest.fixture(scope="session")
def tiny_lora(tiny_generator_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real LoRA adapter of the tiny model that changes its answers."""
    return make_lora(tiny_generator_dir, tmp_path_factory.mktemp("cli-lora") / "lora", seed=1)


@pytest.fixture
def ops_kb(
    cli: CliRunner,
    tiny_settings: Settings,
    tiny_lora: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AdapterRegistry:
    """Collection ``kb`` holding :data:`OPS_DOCS` (not bound yet) and the adapter ``ops@1`` in
    the registry the CLI reads; every draft is kept as the answer (``generation.min_support``
    0), so that an answer's text shows which model wrote it."""
    monkeypatch.setenv("LORAG_GENERATION__MIN_SUPPORT", "0")
    docs = tmp_path / "ops-docs"
    docs.mkdir()
    for name, text in OPS_DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    runtime = Runtime(tiny_settings)
    try:
        assert runtime.ingestor("kb").ingest([docs]).ok
    finally:
        runtime.close()
    registry = AdapterRegistry.for_settings(tiny_settings)
    origin = TrainingOrigin.of(tiny_settings, method="lora", dataset_fingerprint="f" * 16)
    registry.register("ops", make_run(tmp_path / "ops-run", tiny_lora), origin)
    return registry
