"""``lorag batch`` and ``lorag eval``: a question file answered, or scored under configurations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from assistant.batch.runner import DEFAULT_BATCH_SIZE
from assistant.cli.common import (
    AdapterOption,
    CollectionOption,
    RerankerOption,
    collection_name,
    err,
    fail,
    out,
    runtime,
)

if TYPE_CHECKING:
    from rich.progress import Progress

QuestionsArgument = Annotated[
    Path,
    typer.Argument(
        help="CSV, JSONL or XLSX file with a question column (optional: id, expected_answer, "
        "expected_source, unanswerable)."
    ),
]
BatchSizeOption = Annotated[
    int, typer.Option(min=1, help="Questions answered together in one generation pass.")
]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar.")]


@contextmanager
def progress_bar(shown: bool) -> Iterator[Progress]:
    """A progress bar with rate and time left on stderr (hidden with ``shown`` False)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        disable=not shown,
        transient=True,
    ) as bar:
        yield bar


def batch(
    questions: QuestionsArgument,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Answers file (.csv, .jsonl or .xlsx), written row by row."
        ),
    ],
    collection: CollectionOption = None,
    adapter: AdapterOption = None,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted run: skip the rows OUTPUT already has.")
    ] = False,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
    show_progress: ProgressOption = True,
) -> None:
    """Answer every question of a file, with citations, into an answers file."""
    from assistant.batch.runner import BatchProgress, run_batch

    with runtime() as rt, progress_bar(show_progress) as bar:
        task = bar.add_task("answering", total=None)

        def advance(state: BatchProgress) -> None:
            bar.update(task, completed=state.done, total=state.total)

        try:
            summary = run_batch(
                rt,
                questions,
                output,
                collection=collection_name(rt, collection),
                adapter=adapter,
                resume=resume,
                batch_size=batch_size,
                progress=advance,
            )
        except KeyboardInterrupt:
            raise fail(
                f"interrupted: answers so far are in {output}; continue with --resume"
            ) from None
    for failure in summary.failures:
        err.print(f"[red]failed[/red] {failure}", highlight=False)
    skipped = f", {summary.skipped} answered before" if summary.skipped else ""
    out.print(
        f"{summary.rows} rows: {summary.answered} answered, {summary.abstained} abstained, "
        f"{summary.failed} failed{skipped} in {summary.elapsed_s:.1f} s "
        f"({summary.questions_per_min:.1f} questions/min) by {summary.adapter} → {output}",
        highlight=False,
    )
    if summary.failed:
        raise typer.Exit(1)


def evaluate(
    questions: QuestionsArgument,
    collection: CollectionOption = None,
    adapter: Annotated[
        list[str] | None,
        typer.Option(
            "--adapter",
            help="An adapter to compare with the base, which is always scored (NAME, "
            "NAME@VERSION or folder; the collection's binding plays no part); repeat for several.",
        ),
    ] = None,
    dense: Annotated[
        bool, typer.Option("--dense", help="Also retrieve with dense search alone.")
    ] = False,
    no_retrieval: Annotated[
        bool,
        typer.Option("--no-retrieval", help="Also answer each question alone, without sources."),
    ] = False,
    top_k: Annotated[int | None, typer.Option(min=1, help="Sources given to the model.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate the first N rows.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report as JSON here.")
    ] = None,
    chart: Annotated[
        Path | None,
        typer.Option(help="Write a bar chart (PNG) here (default: beside --output, as .png)."),
    ] = None,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
    show_progress: ProgressOption = True,
    reranker: RerankerOption = None,
) -> None:
    """Score answers and retrieval against expected answers and sources, per configuration."""
    from assistant.batch.evaluation import configurations
    from assistant.batch.evaluation import evaluate as run_evaluation
    from assistant.batch.formats import read_questions
    from assistant.batch.report import metric_table, write_chart, write_json

    with runtime(reranker) as rt:
        source = read_questions(questions)
        for problem in source.problems:
            err.print(f"[yellow]skipped[/yellow] {problem}", highlight=False)
        with progress_bar(show_progress) as bar:
            task = bar.add_task("evaluating", total=None)
            report = run_evaluation(
                rt,
                source,
                configurations(adapter or [], dense=dense, no_retrieval=no_retrieval),
                collection=collection_name(rt, collection),
                top_k=top_k,
                limit=limit,
                batch_size=batch_size,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    out.print(metric_table(report))
    if report.unmatched_sources:
        err.print(
            f"[yellow]warning[/yellow] {len(report.unmatched_sources)} expected source(s) match "
            f"no document of collection {report.collection!r} (scored as never retrieved): "
            + ", ".join(report.unmatched_sources),
            highlight=False,
        )
    if output is not None:
        write_json(report, output)
        out.print(f"report → {output}", highlight=False)
    chart = chart or (output.with_suffix(".png") if output is not None else None)
    if chart is not None:
        write_chart(report, chart)
        out.print(f"chart → {chart}", highlight=False)
    if source.problems:
        raise typer.Exit(1)
