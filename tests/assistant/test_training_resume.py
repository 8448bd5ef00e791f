"""``lorag finetune --resume`` of a run that had already registered its adapter (killed after
that, before the process ended, as the crash loop found): it says so and exits 0, and registers
nothing twice; a run that registered nothing is still refused to resume only when there is no
run folder at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.core.errors import LoragError
from assistant.core.settings import Settings
from assistant.runtime import Runtime
from assistant.training import FinetunePlan, RunAlreadyRegistered, train_adapter
from tests.finetune.conftest import rag_record, write_jsonl

OVERRIDES = {
    "max_steps": "2",
    "batch_size": "2",
    "grad_accumulation": "1",
    "max_seq_length": "256",
    "bf16": "false",
    "save_every": "1",
    "eval_every": "0",
}


def test_resuming_a_run_that_had_registered_says_so_and_registers_nothing(
    tiny_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", [rag_record(n) for n in range(6)])
    runtime = Runtime(tiny_settings.model_copy(update={"threads": 1}))
    try:
        with pytest.raises(LoragError, match="no interrupted run of 'ops' to resume"):
            train_adapter(runtime, FinetunePlan(name="ops", data=data, resume=True))
        trained = train_adapter(runtime, FinetunePlan(name="ops", data=data, overrides=OVERRIDES))
        resumed = FinetunePlan(name="ops", data=data, overrides=OVERRIDES, resume=True)
        with pytest.raises(RunAlreadyRegistered) as finished:
            train_adapter(runtime, resumed)
        assert finished.value.record.ref == trained.record.ref == "ops@1"
        assert [r.ref for r in runtime.registry.list()] == ["ops@1"]
    finally:
        runtime.close()

    monkeypatch.setenv("LORAG_DATA_DIR", str(tiny_settings.data_dir))
    monkeypatch.setenv("LORAG_GENERATOR__MODEL", tiny_settings.generator.model)
    monkeypatch.setenv("LORAG_EMBEDDER__MODEL", tiny_settings.embedder.model)
    args = ["finetune", "--data", str(data), "--name", "ops", "--resume"]
    for key, value in OVERRIDES.items():
        args += ["--set", f"{key}={value}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "had already finished and registered ops@1" in result.output
