"""``lorag adapters``: list, show, delete, promote, roll back, gate, merge, export, bind and
retrain adapters. A version tainted by an erasure (a document it was trained on was deleted) is
listed as such and is not served; ``retrain`` builds a new version from its kept rows without
it. ``gate`` runs the promotion gate (:mod:`assistant.gating`) on a version again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table

from assistant.cli.common import CollectionOption, out, parse_overrides, runtime
from assistant.core.registry import AdapterRecord

if TYPE_CHECKING:
    from assistant.gating import GateReport

adapters_app = typer.Typer(help="Manage fine-tuned adapters.", no_args_is_help=True)

RefArgument = Annotated[str, typer.Argument(help="NAME (the promoted version) or NAME@VERSION.")]
ExportFormat = Literal["gguf"]
HEADLINE_METRICS = ("eval_loss", "adapter_perplexity", "adapter_f1", "general_perplexity_ratio")


def _metrics(record: AdapterRecord) -> str:
    shown = {k: record.metrics[k] for k in HEADLINE_METRICS if k in record.metrics}
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
    )


@adapters_app.command("list")
def adapters_list() -> None:
    """Every registered adapter version."""
    with runtime() as rt:
        records = rt.registry.list()
        spec = rt.settings.generator  # only auto sends adapters to llama.cpp
        routed = spec.backend == "auto" and spec.adapter_runtime == "llamacpp"
    table = Table(
        "adapter", "status", "method", "base model", "answers on", "created", "gate", "metrics"
    )
    for record in records:
        table.add_row(
            record.ref,
            f"{record.status}, [red]tainted[/red]" if record.tainted else record.status,
            record.method,
            record.base_model,
            "llama.cpp" if routed and record.lora_gguf_sha256 else "transformers",
            record.created,
            _gate_cell(record),
            _metrics(record),
        )
    out.print(table)
    for record in records:
        for taint in record.tainted_by:
            out.print(
                f"[red]{record.ref} is tainted[/red]: trained on {taint.describe()}; not served "
                f"until retrained (`lorag adapters retrain {record.ref}`)",
                highlight=False,
            )


@adapters_app.command("show")
def adapters_show(ref: RefArgument) -> None:
    """An adapter's manifest (origin, metrics, status) as JSON."""
    with runtime() as rt:
        record = rt.registry.get(ref)
    print(json.dumps({**record.manifest(), "path": str(record.adapter_dir)}, indent=2))


@adapters_app.command("delete")
def adapters_delete(ref: RefArgument) -> None:
    """Delete NAME@VERSION, or every version of NAME."""
    with runtime() as rt:
        for record in rt.registry.delete(ref):
            out.print(f"deleted {record.ref}")


@adapters_app.command("promote")
def adapters_promote(ref: RefArgument) -> None:
    """Make a version the one NAME means (the previously promoted one is archived)."""
    with runtime() as rt:
        out.print(f"promoted {rt.registry.promote(ref).ref}")


@adapters_app.command("rollback")
def adapters_rollback(name: Annotated[str, typer.Argument(help="Adapter name.")]) -> None:
    """Promote again the version promoted before the current one."""
    with runtime() as rt:
        out.print(f"promoted {rt.registry.rollback(name).ref}")


@adapters_app.command("gate")
def adapters_gate(ref: RefArgument, collection: CollectionOption = None) -> None:
    """Run the promotion gate on a version again: it is promoted if it is at least as good as
    the current version on the collection's evaluation set (default: the collection of its last
    gate report, else the collection setting)."""
    from assistant.gating import gate_version

    with runtime() as rt:
        record = rt.registry.get(ref)
        last = (record.gate or {}).get("collection")
        report = gate_version(rt, record.ref, collection or last or rt.settings.collection)
    for line in gate_lines(report):
        out.print(line, highlight=False)


def gate_lines(report: GateReport) -> list[str]:
    """The gate's decision, then one line per figure: its value against the current one."""
    lines = [report.summary() + f" (on {report.questions} questions of {report.eval_set})"]
    lines += [
        f"  {'pass' if check.passed else 'FAIL'} {check.figure}: {check.reason}"
        for check in report.checks
    ]
    return lines + [f"  note: {note}" for note in report.notes]


def _gate_cell(record: AdapterRecord) -> str:
    """The gate's last word on ``record``: ``""`` (never gated), passed, or the failed figures."""
    if record.gate is None:
        return ""
    return "passed" if record.gate["passed"] else "failed: " + ", ".join(record.gate["failed"])


@adapters_app.command("merge")
def adapters_merge(
    ref: RefArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the merged model.")],
) -> None:
    """Write the base model with the adapter merged in (checked against the unmerged outputs)."""
    with runtime() as rt:
        folder = rt.registry.merge(ref, output, rt.settings)
    out.print(f"merged model written to {folder}")


@adapters_app.command("export")
def adapters_export(
    ref: RefArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    format: Annotated[
        ExportFormat, typer.Option("--format", help="gguf: a GGUF LoRA for llama.cpp / Ollama.")
    ] = "gguf",
) -> None:
    """Write the adapter in another runtime's format, for use outside lorag."""
    with runtime() as rt:
        written = rt.registry.export(ref, output, rt.settings)
    out.print(
        f"{format} LoRA written to {written}: llama.cpp `--lora {written}` beside the base GGUF; "
        f"Ollama `ADAPTER {written}` in a Modelfile"
    )


@adapters_app.command("bind")
def adapters_bind(
    collection: Annotated[str, typer.Argument(help="Collection.")],
    ref: Annotated[
        str | None, typer.Argument(help="NAME, NAME@VERSION, or nothing to unbind.")
    ] = None,
) -> None:
    """Make an adapter the default for questions to a collection."""
    with runtime() as rt:
        rt.registry.bind(collection, ref)
    out.print(f"{collection}: {'bound to ' + ref if ref else 'no adapter'}")


@adapters_app.command("retrain")
def adapters_retrain(
    ref: RefArgument,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field of its recipe, e.g. --set max_steps=50."),
    ] = None,
) -> None:
    """Train a version again on its kept training rows (those of erased documents are gone) as
    the next version of its name, a candidate; promote it to serve it."""
    from assistant.training import retrain_adapter

    overrides = parse_overrides(set_ or [])
    with runtime() as rt:
        trained = retrain_adapter(
            rt, ref, overrides, announce=lambda text: out.print(text, highlight=False)
        )
    record = trained.record
    out.print(
        f"registered {record.ref} from {len(record.source_doc_ids)} source documents",
        highlight=False,
    )
    if trained.gate is None:
        out.print(f"a candidate: `lorag adapters promote {record.ref}` to serve it")
    else:
        for line in gate_lines(trained.gate):
            out.print(line, highlight=False)
