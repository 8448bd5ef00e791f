"""Fixtures for the command-line tests: a CliRunner whose environment points at tiny models."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from assistant.core.settings import Settings


@pytest.fixture
def cli(tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("LORAG_DATA_DIR", str(tiny_settings.data_dir))
    monkeypatch.setenv("LORAG_GENERATOR__MODEL", tiny_settings.generator.model)
    monkeypatch.setenv("LORAG_EMBEDDER__MODEL", tiny_settings.embedder.model)
    monkeypatch.setenv("LORAG_GENERATION__MAX_NEW_TOKENS", "8")
    return CliRunner()
