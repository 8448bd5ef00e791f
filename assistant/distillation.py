"""Distil a teacher into a new adapter and register it: the wiring of ``lorag distill``.

:func:`distill_adapter` takes a :class:`DistillPlan` (the adapter's name and version, the
teacher, the prompts: a collection to make RAFT questions from or a JSONL file; the recipe and
its overrides; the GKD options) and runs it as ``lorag finetune`` runs a plan: the teacher's
tokenizer and the name are checked before anything is written; the run folder is
``data_dir/runs/NAME``; a RAFT dataset is built from the collection (kept on resume); training
is :func:`finetune.distill.distill` on its seeded split; the held-out loss / forgetting check
and the held-out answer F1 and llama.cpp parity of ``finetune`` are added; the adapter is
registered with the dataset and the source documents of its rows, so that an erasure of one of
them reaches the distilled adapter too.
"""

from __future__ import annotations

import gc
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.core.errors import AdapterError, ConfigError, LoragError
from assistant.core.files import write_json
from assistant.runtime import Runtime
from assistant.training import (
    DEFAULT_RECIPE,
    RunSources,
    Trained,
    _with_held_out_checks,
    load_train_config,
    register_run,
    run_dir_for,
)

if TYPE_CHECKING:
    from finetune.config import TrainConfig
    from finetune.distill import DistillResult
    from finetune.distill_config import DistillConfig
    from finetune.synth import SynthReport
    from finetune.trainer import Progress


@dataclass(frozen=True)
class DistillPlan:
    """What to distil: ``teacher`` into a new adapter ``name`` on the prompts of exactly one of
    ``from_collection`` (RAFT questions made from its chunks) or ``data`` (a JSONL file)."""

    name: str
    teacher: str
    from_collection: str | None = None
    data: Path | None = None
    recipe: str = DEFAULT_RECIPE
    overrides: dict[str, str] = field(default_factory=dict)
    lmbda: float = 1.0
    beta: float = 0.5
    temperature: float = 1.0
    max_new_tokens: int = 48
    version: int | None = None
    resume: bool = False
    max_chunks: int = 200
    distractors: int = 3
    abstain_fraction: float = 0.2
    dataset_out: Path | None = None


def distill_adapter(
    runtime: Runtime,
    plan: DistillPlan,
    *,
    progress: Progress | None = None,
    on_dataset: Callable[[SynthReport, Path], None] | None = None,
    announce: Callable[[str], None] | None = None,
    show_progress: bool = False,
) -> Trained:
    """Distil the plan's teacher into a new adapter and register it.

    Refused before anything is written (:class:`LoragError`): neither or both prompt sources,
    a teacher whose tokenizer is not the student's, a name already taken without a new
    ``version``, ``resume`` without an interrupted run, invalid options.
    """
    from finetune.distill import check_teacher

    started = datetime.now(UTC).isoformat(timespec="seconds")
    if (plan.data is None) == (plan.from_collection is None):
        raise ConfigError("give exactly one of a dataset file or a collection to distil on")
    config = load_train_config(plan.recipe, plan.overrides)
    options = _options(plan)
    versions = [r.version for r in runtime.registry.list() if r.name == plan.name]
    if versions and plan.version is None:
        listed = ", ".join(map(str, versions))
        raise AdapterError(
            f"adapter {plan.name!r} already exists (versions {listed}); pass --version N"
        )
    check_teacher(runtime.settings, plan.teacher)
    run_dir = run_dir_for(runtime, plan.name, plan.version)
    if plan.resume and not run_dir.is_dir():
        raise LoragError(f"no interrupted run of {plan.name!r} to resume in {run_dir}")
    if not plan.resume and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    data = plan.data or _raft_dataset(
        runtime, plan, run_dir, config.seed, on_dataset, show_progress
    )
    sources = RunSources.read(runtime, data, started)
    result = _distil(
        runtime, plan.teacher, (config, options), data, run_dir, plan.resume, progress, announce
    )
    if plan.from_collection is not None:
        result = _with_held_out_checks(runtime, plan.from_collection, config, data, result)
    named, trained = (plan.name, plan.version), (config.method, result)
    record = register_run(runtime, named, run_dir, data, trained, sources)
    return Trained(record, result)


def _options(plan: DistillPlan) -> DistillConfig:
    from pydantic import ValidationError

    from finetune.distill_config import DistillConfig

    try:
        return DistillConfig(
            teacher=plan.teacher,
            lmbda=plan.lmbda,
            beta=plan.beta,
            temperature=plan.temperature,
            max_new_tokens=plan.max_new_tokens,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid distillation options: {problems}") from exc


def _raft_dataset(
    runtime: Runtime,
    plan: DistillPlan,
    run_dir: Path,
    seed: int,
    on_dataset: Callable[[SynthReport, Path], None] | None,
    show_progress: bool,
) -> Path:
    """The run's RAFT dataset made from ``plan.from_collection`` (kept on resume)."""
    from finetune.synth import build_raft_dataset

    assert plan.from_collection is not None
    dataset = plan.dataset_out or run_dir / "dataset.jsonl"
    if plan.resume and dataset.is_file():
        return dataset
    report = build_raft_dataset(
        runtime,
        plan.from_collection,
        dataset,
        max_chunks=plan.max_chunks,
        distractors=plan.distractors,
        abstain_fraction=plan.abstain_fraction,
        seed=seed,
        show_progress=show_progress,
    )
    if on_dataset is not None:
        on_dataset(report, dataset)
    return dataset


def _distil(
    runtime: Runtime,
    teacher: str,
    configs: tuple[TrainConfig, DistillConfig],
    data: Path,
    run_dir: Path,
    resume: bool,
    progress: Progress | None,
    announce: Callable[[str], None] | None,
) -> DistillResult:
    """Split ``data`` as ``finetune`` does, distil, and add the held-out loss / forgetting check."""
    from finetune.data import load_examples, split_examples
    from finetune.distill import distill
    from finetune.evaluate import evaluate_adapter

    config, options = configs
    examples = load_examples(data)
    train, held_out = split_examples(
        examples, config.eval_split, config.seed, config.eval_min_examples
    )
    plan_text = config.plan(len(train), len(held_out)) + f", distilling {teacher}"
    if announce is not None:
        announce(plan_text)
    result = distill(runtime.settings, config, options, train, held_out, run_dir, resume, progress)
    gc.collect()  # the student and teacher, before the saved adapter is loaded to be evaluated
    evaluation = evaluate_adapter(runtime.settings, config, result.adapter_dir, held_out)
    result = replace(result, evaluation=evaluation)
    write_json(run_dir / "metrics.json", result.metrics())
    return result
