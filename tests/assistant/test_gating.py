"""The promotion gate over real evaluation: tiny real models answer through the whole engine
(hybrid retrieval from the embedded store), a really trained adapter carries a real forgetting
check, and every figure compared comes from evaluation rows, not from numbers written here.

The tiny model's answers are noise, so the cases are built from what it answers: a candidate
with the current version's very weights is evaluated equal to it, and an evaluation set whose
expected answers are the base model's own answers scores the base 1.0 on answer F1, so an
adapter that answers otherwise scores below it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.batch.evaluation import Configuration, evaluate
from assistant.core.errors import AdapterError, ConfigError
from assistant.core.registry import GATE_FILE, AdapterRegistry, TrainingOrigin
from assistant.core.settings import (
    EmbedderSettings,
    GateSettings,
    GenerationSettings,
    GeneratorSettings,
    Settings,
)
from assistant.evalset import install_eval_set, read_eval_set
from assistant.gating import FIGURES, gate_version
from assistant.runtime import Runtime
from assistant.training import FinetunePlan, Trained, train_adapter
from tests.api.conftest import DOCS
from tests.core.test_models import make_lora
from tests.core.test_registry import make_run

QUESTIONS: list[dict[str, Any]] = [
    {
        "question": "How many days of paid leave do employees get?",
        "expected_answer": "25 days",
        "expected_source": "leave.txt",
    },
    {
        "question": "In which class are train tickets reimbursed?",
        "expected_answer": "second class",
        "expected_source": "travel.md",
    },
    {
        "question": "When do unused leave days expire?",
        "expected_answer": "March",
        "expected_source": "leave.txt",
    },
    {
        "question": "What is the warranty period of the Quillvane 9 hoverboard?",
        "unanswerable": True,
    },
]
_MARKERS = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, tiny_generator_dir: Path, tiny_embedder_dir: Path
) -> Iterator[Runtime]:
    """Collection ``kb`` on the tiny models; the support check is off so that the tiny model's
    answers are scored rather than all abstained on."""
    root = tmp_path_factory.mktemp("gating")
    settings = Settings(
        _env_file=None,
        data_dir=root / "data",
        collection="kb",
        generator=GeneratorSettings(model=str(tiny_generator_dir)),
        embedder=EmbedderSettings(model=str(tiny_embedder_dir), batch_size=8),
        generation=GenerationSettings(max_new_tokens=16, context_tokens=512, min_support=0.0),
    )
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    rt = Runtime(settings)
    assert rt.ingestor("kb").ingest([docs]).ok
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def trained(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """``real@1``: an adapter really trained (one step), with its forgetting check measured."""
    facts = tmp_path_factory.mktemp("facts") / "facts.jsonl"
    rows = [
        {"instruction": f"Who maintains service {n}?", "output": f"Team {n}."} for n in range(8)
    ]
    plan = FinetunePlan(name="real", data=write_jsonl(facts, rows), overrides={"max_steps": "1"})
    return train_adapter(runtime, plan)


@pytest.fixture(scope="module")
def origin(runtime: Runtime) -> TrainingOrigin:
    return TrainingOrigin.of(runtime.settings, method="lora", dataset_fingerprint="f" * 16)


def use_eval_set(runtime: Runtime, path: Path, rows: list[dict[str, Any]]) -> Path:
    """Make ``rows`` the evaluation set of ``kb``."""
    return install_eval_set(runtime.settings, "kb", read_eval_set(write_jsonl(path, rows)))


def check(report: Any, figure: str) -> Any:
    return next(c for c in report.checks if c.figure == figure)


def test_a_version_not_gated_by_default_without_an_evaluation_set(trained: Trained) -> None:
    assert trained.gate is None and trained.record.status == "candidate"
    ratio = trained.record.metrics["evaluation"]["forgetting_ratio"]
    assert 0 < ratio <= GateSettings().max_forgetting_ratio


def test_a_candidate_evaluated_equal_to_the_current_passes_and_rollback_undoes_it(
    runtime: Runtime, trained: Trained, origin: TrainingOrigin, tmp_path: Path
) -> None:
    registry: AdapterRegistry = runtime.registry
    run = trained.result.run_dir  # the same weights and metrics, registered twice
    registry.register("same", run, origin, version=1)
    registry.promote("same@1")
    registry.register("same", run, origin, version=2)
    use_eval_set(runtime, tmp_path / "eval.jsonl", QUESTIONS)

    report = gate_version(runtime, "same@2", "kb")

    assert (report.current, report.tolerance, report.questions) == ("same@1", 0.0, 4)
    for figure, _ in FIGURES:
        compared = check(report, figure)
        assert compared.candidate == compared.against and compared.passed, compared
    assert check(report, "abstention_accuracy").candidate is not None  # one row is unanswerable
    forgetting = check(report, "forgetting_ratio")
    assert forgetting.candidate == trained.record.metrics["evaluation"]["forgetting_ratio"]
    assert report.passed and report.promoted and not report.failed
    assert registry.get("same").ref == "same@2" and registry.get("same@1").status == "archived"
    kept = registry.get("same@2")
    on_disk = json.loads((kept.adapter_dir / GATE_FILE).read_text())
    assert on_disk == kept.gate == report.to_dict()
    assert on_disk["summary"] == "same@2 passed the gate against same@1 and is promoted"

    back = registry.rollback("same")
    assert back.ref == "same@1" and back.status == "promoted"
    assert registry.get("same@2").status == "archived" and registry.get("same@2").gate == on_disk
    with pytest.raises(AdapterError, match="promoted version of 'same' already"):
        gate_version(runtime, "same@1", "kb")


def test_a_lower_figure_fails_and_is_named_and_the_version_stays_a_candidate(
    runtime: Runtime,
    tiny_generator_dir: Path,
    origin: TrainingOrigin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The base model's own answers as the expected ones: it scores 1.0 on answer F1.
    asked = write_jsonl(tmp_path / "asked.jsonl", [{**q, "unanswerable": False} for q in QUESTIONS])
    [base] = evaluate(runtime, read_eval_set(asked), [Configuration()], collection="kb").results
    rows = [
        {
            "question": row.question,
            "expected_answer": [] if row.abstained else [_MARKERS.sub(" ", row.answer)],
            "unanswerable": row.abstained,
        }
        for row in base.rows
    ]
    use_eval_set(runtime, tmp_path / "eval.jsonl", rows)
    lora = make_lora(tiny_generator_dir, tmp_path / "lora", seed=2)  # answers otherwise
    runtime.registry.register("low", make_run(tmp_path / "run", lora), origin, version=1)

    report = gate_version(runtime, "low@1", "kb")

    f1 = check(report, "answer_f1")
    assert report.current == "base" and f1.against == 1.0
    assert f1.candidate is not None and f1.candidate < 1.0 and not f1.passed
    assert f"{f1.candidate:.4f} < 1.0000" in f1.reason
    assert report.failed[0] == "answer_f1" and "answer_f1" in report.summary()
    assert check(report, "forgetting_ratio").reason == "not measured: its metrics.json has none"
    assert not report.promoted and runtime.registry.get("low@1").status == "candidate"
    assert runtime.registry.get("low@1").gate == report.to_dict()

    # The widest tolerance lets the same figure pass; the forgetting check still fails.
    tolerant = runtime.settings.model_copy(update={"gate": GateSettings(tolerance=1.0)})
    monkeypatch.setattr(runtime, "settings", tolerant)
    again = gate_version(runtime, "low@1", "kb")
    passed = check(again, "answer_f1")
    assert (passed.candidate, passed.against, passed.passed) == (f1.candidate, 1.0, True)
    assert again.tolerance == 1.0 and "forgetting_ratio" in again.failed and not again.promoted
    assert runtime.registry.get("low@1").gate == again.to_dict()  # the last report is kept


def test_a_tainted_candidate_is_never_promoted(
    runtime: Runtime, trained: Trained, tmp_path: Path
) -> None:
    doc = runtime.store.documents("kb")[0]
    origin = TrainingOrigin.of(
        runtime.settings, method="lora", dataset_fingerprint="f" * 16, source_doc_ids=[doc.doc_id]
    )
    runtime.registry.register("dirty", trained.result.run_dir, origin, version=1)
    runtime.registry.taint(
        ["not-this-one", doc.doc_id], collection="kb", erasure_id="e1", erased_at="t"
    )
    use_eval_set(runtime, tmp_path / "eval.jsonl", QUESTIONS)

    report = gate_version(runtime, "dirty@1", "kb")

    assert report.failed == ["tainted"] and not report.promoted
    assert doc.doc_id in report.checks[0].reason
    assert runtime.registry.get("dirty@1").status == "candidate"


def test_a_candidate_trained_on_an_evaluation_question_fails_as_not_held_out(
    runtime: Runtime, trained: Trained, origin: TrainingOrigin, tmp_path: Path
) -> None:
    use_eval_set(runtime, tmp_path / "eval.jsonl", QUESTIONS)
    rows = [
        {"instruction": "when do UNUSED leave days expire", "output": "In March."},
        {"instruction": "Who maintains service 1?", "output": "Team 1."},
    ]
    dataset = write_jsonl(tmp_path / "rows.jsonl", rows)
    runtime.registry.register("leaky", trained.result.run_dir, origin, version=1, dataset=dataset)

    report = gate_version(runtime, "leaky@1", "kb")

    assert report.failed == ["held_out"] and not report.promoted
    assert "1 training rows ask an evaluation question" in report.checks[0].reason


def test_gating_needs_an_evaluation_set(runtime: Runtime, trained: Trained) -> None:
    with pytest.raises(ConfigError, match="collection 'other' has no evaluation set"):
        gate_version(runtime, trained.record.ref, "other")
    assert runtime.registry.get(trained.record.ref).gate is None


def test_training_with_an_evaluation_set_gates_the_new_version(
    runtime: Runtime, trained: Trained, tmp_path: Path
) -> None:
    given = write_jsonl(tmp_path / "given.jsonl", QUESTIONS)
    plan = FinetunePlan(
        name="real",
        version=2,
        data=runtime.registry.get("real@1").adapter_dir / "training-data.jsonl",
        eval_set=given,
        overrides={"max_steps": "1"},
    )
    result = train_adapter(runtime, plan)

    assert result.gate is not None and result.gate.candidate == "real@2"
    assert result.gate.current == "base" and result.gate.questions == len(QUESTIONS)
    assert result.record.gate == result.gate.to_dict()
    assert result.record.status == ("promoted" if result.gate.passed else "candidate")
    installed = runtime.settings.data_dir / "evalsets" / "kb.jsonl"
    assert [r.text for r in read_eval_set(installed).questions] == [
        q["question"] for q in QUESTIONS
    ]
