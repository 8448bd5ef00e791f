"""``lorag finetune``: train a LoRA / QLoRA / prompt-tuning adapter and register it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from assistant.cli.common import fail, out, runtime
from assistant.runtime import Runtime

if TYPE_CHECKING:
    from assistant.core.models import HFGenerator
    from finetune.trainer import StepReport


def _overrides(pairs: list[str], qlora: bool) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"--set expects KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = value.strip()
    if qlora:
        overrides["method"] = "qlora"
    return overrides


def _teacher(rt: Runtime, model: str | None) -> HFGenerator | None:
    if model is None:
        return None
    from assistant.core.models import load_generator

    generator = rt.settings.generator.model_copy(update={"model": model})
    return load_generator(rt.settings.model_copy(update={"generator": generator}))


def finetune(
    name: Annotated[str, typer.Option("--name", help="Adapter name in the registry.")],
    data: Annotated[
        Path | None,
        typer.Option(help="JSONL dataset: alpaca, chat, prompt/completion or lorag RAG format."),
    ] = None,
    from_collection: Annotated[
        str | None,
        typer.Option(help="Make a RAFT dataset from this collection's chunks and train on it."),
    ] = None,
    qlora: Annotated[bool, typer.Option(help="QLoRA: 4-bit NF4 base (bitsandbytes).")] = False,
    config: Annotated[
        str | None,
        typer.Option(
            help="Recipe: a YAML/TOML/JSON file or a shipped name (lora-cpu, qlora); "
            "default: lora-cpu, or qlora with --qlora."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a recipe field, e.g. --set max_steps=50."),
    ] = None,
    version: Annotated[
        int | None, typer.Option(min=1, help="Register as this new version of NAME.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run of NAME.")] = False,
    teacher: Annotated[
        str | None, typer.Option(help="Model (HF id or folder) writing the questions.")
    ] = None,
    max_chunks: Annotated[int, typer.Option(min=1, help="Chunks to make questions from.")] = 200,
    distractors: Annotated[int, typer.Option(min=0, help="Hard-negative chunks each.")] = 3,
    abstain_fraction: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of examples that teach abstaining.")
    ] = 0.2,
    dataset_out: Annotated[
        Path | None, typer.Option(help="Where to save the generated dataset for review.")
    ] = None,
) -> None:
    """Train an adapter on a dataset or on a collection's documents, then register it."""
    from tqdm import tqdm

    from assistant.core.registry import TrainingOrigin
    from finetune.config import load_config, recipe_path
    from finetune.run import run_finetune
    from finetune.synth import build_raft_dataset

    if (data is None) == (from_collection is None):
        raise fail("give exactly one of --data FILE or --from-collection NAME")
    overrides = _overrides(set_ or [], qlora)
    with runtime() as rt:
        recipe = config or ("qlora" if qlora else "lora-cpu")
        path = Path(recipe) if Path(recipe).is_file() else recipe_path(recipe)
        train_config = load_config(path, overrides)
        versions = [r.version for r in rt.registry.list() if r.name == name]
        if versions and version is None:
            listed = ", ".join(map(str, versions))
            raise fail(f"adapter {name!r} already exists (versions {listed}); pass --version N")
        run_dir = rt.settings.data_dir / "runs" / (f"{name}@{version}" if version else name)
        if resume and not run_dir.is_dir():
            raise fail(f"no interrupted run of {name!r} to resume in {run_dir}")
        if not resume and run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)

        source_doc_ids: list[str] = []
        if from_collection is not None:
            dataset = dataset_out or run_dir / "dataset.jsonl"
            if not (resume and dataset.is_file()):
                report = build_raft_dataset(
                    rt,
                    from_collection,
                    dataset,
                    teacher=_teacher(rt, teacher),
                    max_chunks=max_chunks,
                    distractors=distractors,
                    abstain_fraction=abstain_fraction,
                    seed=train_config.seed,
                    show_progress=True,
                )
                source_doc_ids = report.source_doc_ids
                out.print(
                    f"dataset: {report.examples} examples ({report.abstain_examples} abstain) "
                    f"from {report.chunks_used} chunks → {dataset}"
                )
            data = dataset
        assert data is not None

        bar: tqdm | None = None

        def progress(step: StepReport) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=step.total_steps, unit="step", desc=f"finetune {name}")
            bar.update(step.step - bar.n)
            bar.set_postfix(loss=f"{step.loss:.3f}", tok_s=f"{step.tokens_per_second:.0f}")

        result = run_finetune(rt.settings, train_config, data, run_dir, resume, progress)
        if bar is not None:
            bar.close()
        origin = TrainingOrigin.of(
            rt.settings,
            method=train_config.method,
            dataset_fingerprint=result.data_fingerprint,
            source_doc_ids=source_doc_ids,
        )
        record = rt.registry.register(name, run_dir, origin, version=version)
    out.print(
        f"registered {record.ref}: {result.steps} steps, final loss {result.final_loss:.3f}, "
        f"{result.tokens_per_second:.0f} tokens/s → {record.adapter_dir}"
    )
