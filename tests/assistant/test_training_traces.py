"""A fine-tuning run's trace, recorded in memory: one ``finetune`` span with a ``train.step``
span per optimiser step (its loss and tokens), on the tiny real model."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assistant.core.settings import Settings
from assistant.runtime import Runtime
from assistant.training import FinetunePlan, train_adapter
from tests.finetune.conftest import rag_record, write_jsonl
from tests.fixtures.traces import by_trace, named, root

STEPS = 3


def test_a_training_run_is_one_trace_with_a_span_per_optimiser_step(
    tiny_settings: Settings, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", [rag_record(n) for n in range(6)])
    overrides = {
        "max_steps": str(STEPS),
        "batch_size": "2",
        "grad_accumulation": "1",
        "max_seq_length": "256",
        "bf16": "false",
        "save_every": "0",
        "eval_every": "0",
    }
    runtime = Runtime(tiny_settings.model_copy(update={"threads": 1}))
    try:
        trained = train_adapter(runtime, FinetunePlan(name="ops", data=data, overrides=overrides))
    finally:
        runtime.close()

    [trace] = by_trace(spans.get_finished_spans())
    run = root(trace)
    assert run.name == "finetune" and run.attributes is not None
    assert run.attributes["lorag.adapter"] == "ops"
    assert run.attributes["lorag.train.steps"] == trained.result.steps == STEPS
    steps = sorted(named(trace, "train.step"), key=lambda span: span.start_time or 0)
    assert [span.attributes["lorag.train.step"] for span in steps if span.attributes] == [1, 2, 3]
    for span, logged in zip(steps, trained.result.history, strict=True):
        assert span.attributes is not None
        assert span.parent is not None and span.parent.span_id == run.context.span_id
        assert span.attributes["lorag.train.loss"] == logged["loss"]
        assert span.attributes["lorag.train.tokens"] == logged["tokens"] > 0
        assert span.end_time is not None and span.start_time is not None
        assert span.end_time - span.start_time == int(logged["seconds"] * 1e9)
