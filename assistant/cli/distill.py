"""``lorag distill``: on-policy distillation of a teacher into a new adapter, then register it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from assistant.cli.common import fail, out, parse_overrides, runtime
from assistant.cli.training_progress import StepBar, print_dataset

if TYPE_CHECKING:
    pass


def distill(
    name: Annotated[str, typer.Option("--name", help="Adapter name in the registry.")],
    teacher: Annotated[
        str,
        typer.Option(help="Teacher model (HF id or folder) sharing the student's tokenizer."),
    ],
    from_collection: Annotated[
        str | None,
        typer.Option(help="Make RAFT questions from this collection's chunks and distil on them."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Or a JSONL dataset whose prompts the student answers.")
    ] = None,
    config: Annotated[
        str, typer.Option(help="Recipe: a YAML/TOML/JSON file or a shipped name.")
    ] = "lora-cpu",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a recipe field, e.g. --set max_steps=20."),
    ] = None,
    lmbda: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of steps on the student's own samples."),
    ] = 1.0,
    beta: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="0 forward KL, 1 reverse KL, between: JSD(beta)."),
    ] = 0.5,
    temperature: Annotated[
        float, typer.Option(min=0.01, help="Sampling and divergence temperature.")
    ] = 1.0,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens sampled per answer.")] = 48,
    version: Annotated[
        int | None, typer.Option(min=1, help="Register as this new version of NAME.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run of NAME.")] = False,
    max_chunks: Annotated[int, typer.Option(min=1, help="Chunks to make questions from.")] = 200,
    distractors: Annotated[int, typer.Option(min=0, help="Hard-negative chunks each.")] = 3,
    abstain_fraction: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of examples that teach abstaining.")
    ] = 0.2,
    dataset_out: Annotated[
        Path | None, typer.Option(help="Where to save the generated dataset for review.")
    ] = None,
) -> None:
    """Distil TEACHER into a new adapter of the serving base (GKD, on-policy), then register it."""

    from assistant.distillation import DistillPlan, distill_adapter

    if (data is None) == (from_collection is None):
        raise fail("give exactly one of --from-collection NAME or --data FILE")
    plan = DistillPlan(
        name=name,
        teacher=teacher,
        from_collection=from_collection,
        data=data,
        recipe=config,
        overrides=parse_overrides(set_ or []),
        lmbda=lmbda,
        beta=beta,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        version=version,
        resume=resume,
        max_chunks=max_chunks,
        distractors=distractors,
        abstain_fraction=abstain_fraction,
        dataset_out=dataset_out,
    )
    bar = StepBar(f"distill {name}", "divergence", 4)

    with runtime() as rt:
        trained = distill_adapter(
            rt,
            plan,
            progress=bar,
            on_dataset=print_dataset,
            announce=lambda text: out.print(text, highlight=False),
            show_progress=True,
        )
    bar.close()
    record, result = trained.record, trained.result
    held_out = f", held-out divergence {result.eval_loss:.4f}" if result.eval_loss else ""
    out.print(
        f"registered {record.ref}: {result.steps} steps, final divergence "
        f"{result.final_loss:.4f}{held_out}, {result.tokens_per_second:.0f} tokens/s "
        f"→ {record.adapter_dir}"
    )
