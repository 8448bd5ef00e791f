"""Train an adapter and register it: the wiring ``lorag finetune`` and the API's fine-tuning jobs
share.

:func:`train_adapter` takes a :class:`FinetunePlan` (the adapter's name and version, the data: a
JSONL file, a collection to make a RAFT dataset from, or a collection whose answers' feedback
makes one; the recipe and its overrides) and runs it: check the name is free, prepare the run
folder under ``data_dir/runs``, build the dataset, train with :func:`finetune.run.run_finetune`,
register the result with the dataset it trained on and the documents its rows came from (their
``doc_ids``, with the content hash the store holds for each). Progress goes to the callbacks the
caller gives; a callback that raises stops the run (the registry is written only when training
has finished). :func:`retrain_adapter` trains a version again on its kept rows (an erasure has
removed those of erased documents) as a new version.

The collection trained from (or, for a dataset file, ``settings.collection``) has an evaluation
set (:mod:`assistant.evalset`): the collection's first RAFT dataset holds some of its questions
out to make it, every later one leaves those chunks out, and ``FinetunePlan.eval_set`` (a
question file) replaces it once the version is registered. Where there is one (or the plan asks
for it), the registered candidate goes through the promotion gate (:mod:`assistant.gating`):
promoted when it is at least as good as the current version, else kept as a candidate with the
report saying which figure failed.

Under a multi-process launch (``torchrun`` / ``accelerate launch``) rank 0 runs
:func:`train_adapter` and every other process :func:`help_train`: rank 0 alone prepares the run
folder and the dataset, all train, and rank 0 alone evaluates and registers.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from assistant.core import tracing
from assistant.core.errors import AdapterError, CollectionNotFoundError, ConfigError, LoragError
from assistant.core.files import write_json
from assistant.core.training_rows import count_rows, row_doc_ids
from assistant.evalset import eval_set_path, held_out_chunk_ids, read_eval_set
from assistant.runtime import Runtime
from finetune.distributed import SINGLE, Ranks

if TYPE_CHECKING:
    from assistant.core.models import HFGenerator
    from assistant.core.registry import AdapterRecord, Method
    from assistant.engine import QueryEngine
    from assistant.gating import GateReport
    from finetune.config import TrainConfig
    from finetune.synth import SynthReport
    from finetune.trainer import Progress, TrainResult

DEFAULT_RECIPE = "lora-cpu"
Result = TypeVar("Result", bound="TrainResult")
"""A finished run's result: a fine-tuning or a distillation one (checks keep its class)."""


@dataclass(frozen=True)
class FinetunePlan:
    """What to train: exactly one of ``data`` (a JSONL file), ``from_collection`` (RAFT rows
    made from its chunks) or ``from_feedback`` (rows made from the feedback on its answers)."""

    name: str
    data: Path | None = None
    from_collection: str | None = None
    from_feedback: str | None = None
    recipe: str = DEFAULT_RECIPE
    overrides: dict[str, str] = field(default_factory=dict)
    version: int | None = None
    resume: bool = False
    teacher: str | None = None
    max_chunks: int = 200
    distractors: int = 3
    abstain_fraction: float = 0.2
    dataset_out: Path | None = None
    gate: bool | None = None
    """Put the new version through the promotion gate (``None``: where there is an evaluation
    set)."""
    eval_set: Path | None = None
    """A question file to make the collection's evaluation set (it replaces the one there)."""


@dataclass(frozen=True)
class Trained:
    """A finished plan: the registered adapter version (promoted, when it passed the gate), how
    its training went, and the gate's report (``None``: it was not gated)."""

    record: AdapterRecord
    result: TrainResult
    gate: GateReport | None = None


def load_train_config(recipe: str, overrides: dict[str, str]) -> TrainConfig:
    """The recipe ``recipe`` (a YAML/TOML/JSON file, or a shipped name) with ``overrides``."""
    from finetune.config import load_config, recipe_path

    path = Path(recipe) if Path(recipe).is_file() else recipe_path(recipe)
    return load_config(path, overrides)


def run_dir_for(runtime: Runtime, name: str, version: int | None) -> Path:
    """Where the run of ``name`` (as ``version``, when given) keeps its checkpoints and files."""
    return runtime.settings.data_dir / "runs" / (f"{name}@{version}" if version else name)


def train_adapter(
    runtime: Runtime,
    plan: FinetunePlan,
    *,
    progress: Progress | None = None,
    on_dataset: Callable[[SynthReport, Path], None] | None = None,
    announce: Callable[[str], None] | None = None,
    show_progress: bool = False,
    ranks: Ranks = SINGLE,
) -> Trained:
    """Train the adapter ``plan`` describes and register it.

    Refused before anything is trained (:class:`LoragError`): neither or both data sources, a
    name already taken without a new ``version``, ``resume`` without an interrupted run, an
    invalid recipe, an unusable ``eval_set``, ``gate`` asked for with no evaluation set to gate
    on. ``on_dataset`` gets the report of a dataset made from a collection, ``announce`` the
    training plan (examples, held out, steps) before training starts.
    ``ranks``: rank 0 of a multi-process launch, whose other processes run :func:`help_train`.

    The run is one trace: a ``finetune`` span with a ``train.step`` span per optimiser step.
    """
    traced = {tracing.ADAPTER: plan.name, tracing.MODEL: runtime.settings.generator.model}
    with tracing.current_span("finetune", attributes=traced) as span:
        trained = _train_adapter(
            runtime, plan, progress, on_dataset, announce, show_progress, ranks
        )
        span.set_attributes(
            {
                "lorag.adapter.version": trained.record.version,
                "lorag.train.steps": trained.result.steps,
                "lorag.train.final_loss": trained.result.final_loss,
                "lorag.train.tokens": trained.result.tokens,
            }
        )
    return trained


def _train_adapter(
    runtime: Runtime,
    plan: FinetunePlan,
    progress: Progress | None,
    on_dataset: Callable[[SynthReport, Path], None] | None,
    announce: Callable[[str], None] | None,
    show_progress: bool,
    ranks: Ranks,
) -> Trained:
    from assistant.evalset import install_eval_set, write_held_out
    from assistant.gating import gate_version
    from finetune.replay import REPLAY_FILE, write_replay_rows
    from finetune.run import run_finetune
    from finetune.synth import build_raft_dataset

    started = datetime.now(UTC).isoformat(timespec="seconds")
    config, run_dir = _checked_run(runtime, plan)
    collection = gate_collection(runtime, plan)
    eval_path = eval_set_path(runtime.settings, collection)
    given = read_eval_set(plan.eval_set) if plan.eval_set is not None else None
    check_gate(runtime, plan, makes_eval_set=makes_eval_set(runtime, plan))
    if not plan.resume and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    data = plan.data
    if plan.from_feedback is not None:
        data = _feedback_dataset(runtime, plan, run_dir, announce)
    if plan.from_collection is not None:
        dataset = plan.dataset_out or run_dir / "dataset.jsonl"
        if not (plan.resume and dataset.is_file()):
            kept = eval_path.is_file() and given is None  # an earlier set stays held out
            report = build_raft_dataset(
                runtime,
                plan.from_collection,
                dataset,
                teacher=_teacher(runtime, plan.teacher),
                max_chunks=plan.max_chunks,
                distractors=plan.distractors,
                abstain_fraction=plan.abstain_fraction,
                seed=config.seed,
                show_progress=show_progress,
                eval_fraction=0.0 if kept or given else runtime.settings.gate.eval_fraction,
                exclude_chunk_ids=held_out_chunk_ids(eval_path) if kept else (),
            )
            if report.held_out:
                write_held_out(
                    runtime.settings,
                    collection,
                    report.held_out,
                    plan.abstain_fraction,
                    config.seed,
                )
            if on_dataset is not None:
                on_dataset(report, dataset)
        data = dataset
        check_gate(runtime, plan, makes_eval_set=False)
    assert data is not None

    sources = RunSources.read(runtime, data, started)
    replay = run_dir / REPLAY_FILE
    if config.replay_examples and not (plan.resume and replay.is_file()):
        write_replay_rows(runtime.generator, replay, config.replay_examples, config.seed)
    if ranks.distributed:  # a GGUF base is converted once, here, not by every process at once
        from assistant.core.models import resolve_generator_path

        resolve_generator_path(runtime.settings)
    ranks.barrier()  # the other processes wait for the run folder, the dataset and the base
    result = run_finetune(
        runtime.settings, config, data, run_dir, plan.resume, progress, announce, ranks
    )
    trained_from = plan.from_collection or plan.from_feedback
    if trained_from is not None:
        result = _with_held_out_checks(runtime, trained_from, config, data, result)
    named, trained = (plan.name, plan.version), (config.method, result)
    record = register_run(runtime, named, run_dir, data, trained, sources)
    if given is not None:
        install_eval_set(runtime.settings, collection, given)
    gating = plan.gate if plan.gate is not None else eval_path.is_file()
    if not gating:
        return Trained(record, result)
    gate = gate_version(runtime, record.ref, collection)
    return Trained(runtime.registry.get(record.ref), result, gate)


def gate_collection(runtime: Runtime, plan: FinetunePlan) -> str:
    """The collection whose evaluation set gates ``plan``'s version: the one it trains from, or
    for a dataset file ``settings.collection``."""
    return plan.from_collection or plan.from_feedback or runtime.settings.collection


def makes_eval_set(runtime: Runtime, plan: FinetunePlan) -> bool:
    """Whether ``plan``'s RAFT dataset may hold questions out as its collection's first
    evaluation set (the set itself is made only where there is none)."""
    return plan.from_collection is not None and runtime.settings.gate.eval_fraction > 0


def check_gate(runtime: Runtime, plan: FinetunePlan, *, makes_eval_set: bool) -> None:
    """Refuse a plan that asks for the gate when its collection has no evaluation set and
    none is given or made (``makes_eval_set``), or a gated plan whose collection is gone."""
    collection = gate_collection(runtime, plan)
    has_set = eval_set_path(runtime.settings, collection).is_file()
    has_set = has_set or makes_eval_set or plan.eval_set is not None
    if plan.gate is False or (plan.gate is None and not has_set):
        return
    if not has_set:
        raise ConfigError(
            f"gate: collection {collection!r} has no evaluation set to gate on; give one "
            "(--eval-set FILE), or train from the collection (it holds some questions out)"
        )
    if not runtime.store.has_collection(collection):
        raise CollectionNotFoundError(collection, runtime.store.list_collections())


def help_train(runtime: Runtime, plan: FinetunePlan, ranks: Ranks) -> None:
    """Train on a process other than rank 0 of a multi-process launch: the same checks as
    :func:`train_adapter`, then wait for rank 0 to prepare the run folder, the dataset and the
    base model, and train this process's share of every step (rank 0 evaluates and registers
    the adapter)."""
    from finetune.run import run_finetune

    config, run_dir = _checked_run(runtime, plan)
    ranks.barrier()
    data = plan.data or plan.dataset_out or run_dir / "dataset.jsonl"
    run_finetune(runtime.settings, config, data, run_dir, plan.resume, ranks=ranks)


def _checked_run(runtime: Runtime, plan: FinetunePlan) -> tuple[TrainConfig, Path]:
    """The training config and run folder of ``plan``, or the error that refuses it (see
    :func:`train_adapter`; :class:`RunAlreadyRegistered` for a finished run); nothing is
    written."""
    sources = (plan.data, plan.from_collection, plan.from_feedback)
    if sum(source is not None for source in sources) != 1:
        raise ConfigError(
            "give exactly one of a dataset file, a collection, or a collection's feedback to "
            "train from"
        )
    config = load_train_config(plan.recipe, plan.overrides)
    run_dir = run_dir_for(runtime, plan.name, plan.version)
    if plan.resume:
        finished = _registered_from(runtime, plan.name, run_dir)
        if finished is not None:  # killed after registering: nothing is left to do
            raise RunAlreadyRegistered(finished)
    versions = [r.version for r in runtime.registry.list() if r.name == plan.name]
    if versions and plan.version is None:
        listed = ", ".join(map(str, versions))
        raise AdapterError(
            f"adapter {plan.name!r} already exists (versions {listed}); pass --version N"
        )
    if plan.resume and not run_dir.is_dir():
        raise LoragError(f"no interrupted run of {plan.name!r} to resume in {run_dir}")
    return config, run_dir


class RunAlreadyRegistered(LoragError):
    """``resume`` of a run that had finished and registered its adapter (the process was
    stopped after that): ``record`` is the version it registered."""

    def __init__(self, record: AdapterRecord) -> None:
        super().__init__(
            f"the run of {record.name!r} had already finished and registered {record.ref}; "
            "there is nothing to resume"
        )
        self.record = record


def _registered_from(runtime: Runtime, name: str, run_dir: Path) -> AdapterRecord | None:
    """The version of ``name`` registered from ``run_dir``: the one holding a copy of the
    run's final ``metrics.json`` (written before it registers)."""
    from assistant.core.registry import METRICS_FILE

    metrics = run_dir / METRICS_FILE
    if not metrics.is_file():
        return None
    written = metrics.read_bytes()
    return next(
        (
            record
            for record in runtime.registry.list()
            if record.name == name
            and (record.adapter_dir / METRICS_FILE).is_file()
            and (record.adapter_dir / METRICS_FILE).read_bytes() == written
        ),
        None,
    )


def retrain_adapter(
    runtime: Runtime,
    ref: str,
    overrides: dict[str, str] | None = None,
    *,
    progress: Progress | None = None,
    announce: Callable[[str], None] | None = None,
) -> Trained:
    """Train the version ``ref`` names again, as the next version of its name: on its kept
    training rows (an erasure has removed the rows of the documents it erased) with its own
    recipe (``train_config.json``) and ``overrides``. The new version is a candidate.

    Refused (:class:`AdapterError`) for a version that kept no training rows (registered before
    lorag kept them, or from a run without a dataset file), or none is left.
    """
    from assistant.core.registry import TRAINING_DATA

    record = runtime.registry.get(ref)
    data = record.adapter_dir / TRAINING_DATA
    if not data.is_file():
        raise AdapterError(
            f"{record.ref} kept no training rows to train on again (it was registered before "
            "lorag kept them, or without a dataset file): train a new version with `lorag "
            f"finetune --name {record.name} --version N` and a dataset or a collection"
        )
    if count_rows(data) == 0:
        raise AdapterError(
            f"{record.ref}: no training row is left once the erased documents' rows are "
            f"removed; delete the version (`lorag adapters delete {record.ref}`)"
        )
    recipe = record.adapter_dir / "train_config.json"
    versions = [r.version for r in runtime.registry.list() if r.name == record.name]
    plan = FinetunePlan(
        name=record.name,
        data=data,
        recipe=str(recipe) if recipe.is_file() else DEFAULT_RECIPE,
        overrides=overrides or {},
        version=max(versions) + 1,
    )
    return train_adapter(runtime, plan, progress=progress, announce=announce)


@dataclass(frozen=True)
class RunSources:
    """What a run is registered with about where its rows came from, read before training (an
    erasure meanwhile rewrites the rows): the documents' ids and content hashes, and when the
    run started (the erasures of those documents since then taint the new version)."""

    started: str
    doc_ids: list[str]
    hashes: dict[str, str]

    @classmethod
    def read(cls, runtime: Runtime, data: Path, started: str) -> RunSources:
        doc_ids = row_doc_ids(data)
        return cls(started, doc_ids, _content_hashes(runtime, doc_ids))


def register_run(
    runtime: Runtime,
    named: tuple[str, int | None],
    run_dir: Path,
    data: Path,
    trained: tuple[Method, TrainResult],
    sources: RunSources,
) -> AdapterRecord:
    """Register the adapter a finished run in ``run_dir`` trained on ``data`` as ``named``
    (name, and version or ``None`` for the next one), with ``trained``'s method and dataset
    fingerprint and its ``sources``, tainted by their erasures since the run started."""
    from assistant.core.registry import TrainingOrigin

    (name, version), (method, result) = named, trained
    origin = TrainingOrigin.of(
        runtime.settings,
        method=method,
        dataset_fingerprint=result.data_fingerprint,
        source_doc_ids=sources.doc_ids,
        source_doc_hashes=sources.hashes,
    )
    record = runtime.registry.register(name, run_dir, origin, version=version, dataset=data)
    return _tainted_since(runtime, record, sources.started)


def _tainted_since(runtime: Runtime, record: AdapterRecord, started: str) -> AdapterRecord:
    """``record`` tainted by the erasures of its source documents that happened while it was
    being made (since ``started``): they ran before it was registered, so could not reach it."""
    from assistant.erasure import erasures_since

    for report in erasures_since(runtime.settings.data_dir, started):
        erased = {document["doc_id"] for document in report["documents"]}
        if hit := erased.intersection(record.source_doc_ids):
            runtime.registry.taint(
                hit,
                collection=report["collection"],
                erasure_id=report["erasure_id"],
                erased_at=report["erased_at"],
            )
    return runtime.registry.get(record.ref)


def _feedback_dataset(
    runtime: Runtime, plan: FinetunePlan, run_dir: Path, announce: Callable[[str], None] | None
) -> Path:
    """The run's dataset made from the feedback on ``plan.from_feedback`` (kept on resume)."""
    from assistant.feedback_dataset import build_feedback_dataset

    assert plan.from_feedback is not None
    dataset = plan.dataset_out or run_dir / "dataset.jsonl"
    if plan.resume and dataset.is_file():
        return dataset
    made = build_feedback_dataset(runtime.store, runtime.feedback, plan.from_feedback, dataset)
    if announce is not None:
        kinds = ", ".join(f"{n} {kind}" for kind, n in made.targets.items())
        skipped = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in made.skipped.items())
        announce(
            f"dataset: {made.rows} rows from feedback ({kinds})"
            + (f"; skipped: {skipped}" if skipped else "")
            + f" → {dataset}"
        )
    return dataset


def _content_hashes(runtime: Runtime, doc_ids: list[str]) -> dict[str, str]:
    """The content hash the store holds for each of ``doc_ids`` (in any collection; a document
    no collection holds now has none)."""
    wanted = set(doc_ids)
    store = runtime.store
    return {
        info.doc_id: info.file_hash
        for name in store.list_collections()
        for info in store.documents(name)
        if info.doc_id in wanted
    }


def _teacher(runtime: Runtime, model: str | None) -> HFGenerator | None:
    """The model named ``model`` to write the dataset's questions (``None``: the generator)."""
    if model is None:
        return None
    from assistant.core.models import load_generator

    generator = runtime.settings.generator.model_copy(update={"model": model})
    return load_generator(runtime.settings.model_copy(update={"generator": generator}))


EVAL_BATCH = 8
"""Held-out questions answered together when :func:`_with_held_out_checks` scores an adapter."""

_MARKER = re.compile(r"\s*\[\d+\]")


def _with_held_out_checks(
    runtime: Runtime, collection: str, config: TrainConfig, data: Path, result: Result
) -> Result:
    """``result`` with two checks on the held-out questions in its evaluation (and in the run's
    ``metrics.json``): ``answer_f1``, base vs adapter, and ``llamacpp_parity``, the adapter on
    llama.cpp vs on transformers + PEFT.

    The held-out questions (the run's seeded eval split, abstain examples left out) go through
    the whole engine, hybrid retrieval from ``collection`` included, once on the base model and
    once with the new adapter attached under a temporary name (on transformers: the run folder
    holds no GGUF LoRA yet); ``[n]`` markers are dropped from answers and references before
    scoring. Then :func:`_llamacpp_parity` answers them again on llama.cpp.
    """
    from finetune.data import load_examples, split_examples
    from finetune.evaluate import token_f1

    abstain = runtime.engine.template.abstain_answer
    _, held_out = split_examples(
        load_examples(data), config.eval_split, config.seed, config.eval_min_examples
    )
    pairs = [(e.question, e.answer) for e in held_out if e.question and e.answer != abstain]
    if not pairs:  # a small dataset is trained on whole: nothing to check the adapter on
        reason = "no held-out question to compare the back ends on"
        parity = {"checked": False, "served_on_llamacpp": False, "reason": reason}
        result = replace(
            result, evaluation={**(result.evaluation or {}), "llamacpp_parity": parity}
        )
        write_json(result.run_dir / "metrics.json", result.metrics())
        return result
    questions = [question for question, _ in pairs]
    references = [_MARKER.sub("", answer) for _, answer in pairs]
    key = f"~heldout-{result.run_dir.name}"
    runtime.generator.load_adapter(str(result.adapter_dir), key)
    try:
        texts = {
            label: _answers(runtime.engine, questions, collection, adapter)
            for label, adapter in (("base", None), ("adapter", key))
        }
    finally:
        runtime.generator.unload_adapter(key)
    scores = {
        label: _mean(token_f1(text, [ref]) for text, ref in zip(answers, references, strict=True))
        for label, answers in texts.items()
    }
    parity = _llamacpp_parity(runtime, questions, collection, texts["adapter"], result)
    answer_f1 = {"questions": len(pairs), "collection": collection, **scores}
    evaluation = {**(result.evaluation or {}), "answer_f1": answer_f1, "llamacpp_parity": parity}
    result = replace(result, evaluation=evaluation)
    write_json(result.run_dir / "metrics.json", result.metrics())
    return result


def _llamacpp_parity(
    runtime: Runtime,
    questions: list[str],
    collection: str,
    reference: list[str],
    result: TrainResult,
) -> dict[str, object]:
    """Export the adapter as a GGUF LoRA file into its folder, answer ``questions`` with it on
    llama.cpp (ik_llama.cpp), and compare with its answers on transformers (``reference``): mean
    token F1 between the two and the share of identical answers. The file stays (and so the
    adapter is served on llama.cpp, :mod:`assistant.core.models.routed_generator`) only when the
    F1 reaches ``generator.lora_parity_min_f1``; the record says why when it does not."""
    from assistant.core.models import resolve_generator_path
    from assistant.core.models.generators import load_llamacpp_generator
    from assistant.core.models.lora_gguf import LORA_GGUF, export_lora_gguf
    from finetune.evaluate import token_f1

    settings = runtime.settings
    threshold = settings.generator.lora_parity_min_f1
    lora = result.adapter_dir / LORA_GGUF
    try:
        export_lora_gguf(result.adapter_dir, resolve_generator_path(settings), lora)
        fast = load_llamacpp_generator(settings)
    except LoragError as unavailable:
        lora.unlink(missing_ok=True)
        return {"checked": False, "served_on_llamacpp": False, "reason": str(unavailable)}
    key = f"~parity-{result.run_dir.name}"
    try:
        fast.load_adapter(str(result.adapter_dir), key)
        answers = _answers(runtime.engine.with_generator(fast), questions, collection, key)
    except BaseException:
        lora.unlink(missing_ok=True)
        raise
    finally:
        fast.close()
    f1 = _mean(token_f1(a, [r]) for a, r in zip(answers, reference, strict=True) if r or a)
    identical = _mean(
        float(a.strip() == r.strip()) for a, r in zip(answers, reference, strict=True)
    )
    passed = f1 >= threshold
    if not passed:
        lora.unlink()
    return {
        "checked": True,
        "questions": len(questions),
        "token_f1": round(f1, 4),
        "identical_share": round(identical, 4),
        "min_token_f1": threshold,
        "served_on_llamacpp": passed,
    }


def _answers(
    engine: QueryEngine, questions: list[str], collection: str, adapter: str | None
) -> list[str]:
    """The engine's answers to ``questions``, ``[n]`` markers dropped, in batches."""
    return [
        _MARKER.sub("", answer.text)
        for start in range(0, len(questions), EVAL_BATCH)
        for answer in engine.ask_batch(questions[start : start + EVAL_BATCH], collection, adapter)
    ]


def _mean(values: Iterable[float]) -> float:
    listed = list(values)
    return sum(listed) / len(listed) if listed else 1.0
