"""``lorag finetune``: train a LoRA / QLoRA / prompt-tuning adapter, register it, and put it
through the promotion gate where its collection has an evaluation set.

Run by ``torchrun`` or ``accelerate launch``, it trains on every process; rank 0 alone prints,
writes, registers and gates (:mod:`finetune.distributed`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from assistant.cli.adapters import gate_lines
from assistant.cli.common import fail, out, parse_overrides, runtime
from assistant.cli.training_progress import StepBar, print_dataset

if TYPE_CHECKING:
    pass


def _overrides(pairs: list[str], qlora: bool) -> dict[str, str]:
    overrides = parse_overrides(pairs)
    if qlora:
        overrides["method"] = "qlora"
    return overrides


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
    from_feedback: Annotated[
        str | None,
        typer.Option(
            help="Make the dataset from the feedback on this collection's answers: corrections "
            "as targets, thumbs-down answers as abstentions."
        ),
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
    gate: Annotated[
        bool | None,
        typer.Option(
            "--gate/--no-gate",
            help="Promote the new version only if it is at least as good as the current one on "
            "the collection's evaluation set (default: when the collection has one).",
        ),
    ] = None,
    eval_set: Annotated[
        Path | None,
        typer.Option(
            help="A question file (CSV/JSONL/XLSX with expected answers, sources or "
            "unanswerable flags) to make the collection's evaluation set, replacing its own."
        ),
    ] = None,
) -> None:
    """Train an adapter on a dataset or on a collection's documents, then register it.

    Under torchrun / accelerate launch every process trains its share of each step."""

    from assistant.training import (
        FinetunePlan,
        RunAlreadyRegistered,
        help_train,
        train_adapter,
    )
    from finetune.distributed import process_group

    if sum(source is not None for source in (data, from_collection, from_feedback)) != 1:
        raise fail(
            "give exactly one of --data FILE, --from-collection NAME or --from-feedback NAME"
        )
    plan = FinetunePlan(
        name=name,
        data=data,
        from_collection=from_collection,
        from_feedback=from_feedback,
        recipe=config or ("qlora" if qlora else "lora-cpu"),
        overrides=_overrides(set_ or [], qlora),
        version=version,
        resume=resume,
        teacher=teacher,
        max_chunks=max_chunks,
        distractors=distractors,
        abstain_fraction=abstain_fraction,
        dataset_out=dataset_out,
        gate=gate,
        eval_set=eval_set,
    )
    bar = StepBar(f"finetune {name}", "loss", 3)

    with runtime() as rt, process_group(rt.settings.generator.device) as ranks:
        try:
            if not ranks.main:
                help_train(rt, plan, ranks)
                return
            trained = train_adapter(
                rt,
                plan,
                progress=bar,
                on_dataset=print_dataset,
                announce=lambda text: out.print(text, highlight=False),
                show_progress=True,
                ranks=ranks,
            )
        except RunAlreadyRegistered as finished:
            if ranks.main:
                out.print(str(finished), highlight=False)
            return
    bar.close()
    record, result = trained.record, trained.result
    out.print(
        f"registered {record.ref}: {result.steps} steps, final loss {result.final_loss:.3f}, "
        f"{result.tokens_per_second:.0f} tokens/s → {record.adapter_dir}"
    )
    parity = (result.evaluation or {}).get("llamacpp_parity")
    if parity is not None:
        out.print(_parity_line(parity))
    if trained.gate is None:
        out.print(f"not gated: `lorag adapters promote {record.ref}` to serve it", highlight=False)
    else:
        for line in gate_lines(trained.gate):
            out.print(line, highlight=False)


def _parity_line(parity: dict[str, object]) -> str:
    """Where the new adapter will answer, and why (its llama.cpp parity check)."""
    if not parity["checked"]:
        return f"answers on transformers (no llama.cpp parity check: {parity['reason']})"
    figures = (
        f"token F1 {parity['token_f1']:.3f} with its transformers answers, "
        f"{parity['identical_share']:.0%} identical, on {parity['questions']} held-out questions"
    )
    if parity["served_on_llamacpp"]:
        return f"answers on llama.cpp: {figures}"
    return f"answers on transformers: on llama.cpp {figures} (below {parity['min_token_f1']})"
