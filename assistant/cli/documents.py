"""``lorag ingest``, ``lorag collections`` and ``lorag documents list|delete|erasure-report``.

Deleting documents is an erasure (:mod:`assistant.erasure`): it also taints the adapter versions
trained on them and removes their training rows and feedback; it gets a line in the audit log,
as the API's deletions do, and ``erasure-report`` prints what it reached.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from assistant.cli.common import CollectionOption, collection_name, err, fail, out, runtime
from assistant.core.errors import CollectionNotFoundError
from assistant.core.types import DocumentInfo
from assistant.erasure import ErasureReport, erasure_reports
from assistant.runtime import Runtime

documents_app = typer.Typer(
    help="List or delete the documents of a collection.", no_args_is_help=True
)


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    collection: CollectionOption = None,
    prune: Annotated[
        bool, typer.Option(help="Forget stored documents whose file is gone from these folders.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Add or update documents in a collection (unchanged files are skipped)."""
    missing = [str(path) for path in paths if not path.exists()]
    if len(missing) == len(paths):  # nothing to ingest: say so before the embedder loads
        raise fail(f"path not found: {', '.join(missing)}")
    with runtime() as rt:
        name = collection_name(rt, collection)
        report = rt.ingestor(name, show_progress=progress).ingest(paths, prune=prune)
    out.print(
        f"{name}: {len(report.added)} added, {len(report.unchanged)} unchanged, "
        f"{len(report.replaced)} replaced, {len(report.pruned)} pruned, "
        f"{len(report.failed)} failed; {report.chunks_written} chunks written "
        f"in {report.seconds:.1f} s"
    )
    for source, problem in report.failed.items():
        err.print(f"[red]failed:[/red] {source}: {problem}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


def collections() -> None:
    """List the collections (knowledge bases) with their documents and chunks."""
    with runtime() as rt:
        table = Table("collection", "documents", "chunks", "adapter")
        bindings = rt.registry.bindings()
        for name in rt.store.list_collections():
            table.add_row(
                name,
                str(len(rt.store.documents(name))),
                str(rt.store.count(name)),
                bindings.get(name, ""),
            )
    out.print(table)


def _documents(rt: Runtime, name: str) -> list[DocumentInfo]:
    if not rt.store.has_collection(name):
        raise CollectionNotFoundError(name, rt.store.list_collections())
    return rt.store.documents(name)


@documents_app.command("list")
def documents_list(collection: CollectionOption = None) -> None:
    """List the documents of a collection."""
    with runtime() as rt:
        docs = _documents(rt, collection_name(rt, collection))
    table = Table("file", "title", "chunks", "ingested")
    table.add_column("source", overflow="fold")
    for info in docs:
        when = datetime.fromtimestamp(info.ingested_at).isoformat(timespec="seconds")
        table.add_row(Path(info.source).name, info.title, str(info.chunk_count), when, info.source)
    out.print(table)


@documents_app.command("delete")
def documents_delete(
    documents: Annotated[list[str], typer.Argument(help="Document source paths or ids.")],
    collection: CollectionOption = None,
) -> None:
    """Delete documents from a collection: their chunks, erased from the store's files."""
    with runtime() as rt:
        name = collection_name(rt, collection)
        known = _documents(rt, name)
        missing: list[str] = []
        found: dict[str, DocumentInfo] = {}
        for wanted in documents:
            resolved = str(Path(wanted).expanduser().resolve())
            matches = [d for d in known if wanted in (d.doc_id, d.source) or d.source == resolved]
            if not matches:
                missing.append(wanted)
            found.update((info.doc_id, info) for info in matches)
        if found:
            report = rt.delete_documents(name, list(found))
            audit_erasure(rt, "documents.delete", report)
            for info in found.values():
                out.print(f"deleted {info.source} ({info.chunk_count} chunks)", highlight=False)
            print_reach(report)
    if missing:
        raise fail(f"not in collection '{name}': {', '.join(missing)}")


@documents_app.command("erasure-report")
def documents_erasure_report(
    doc_id: Annotated[str, typer.Argument(help="The id of an erased document.")],
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="Only erasures from this collection.")
    ] = None,
) -> None:
    """What erasing a document reached, as JSON: chunks, files, adapters tainted, rows removed."""
    with runtime() as rt:
        found = erasure_reports(rt.settings.data_dir, doc_id, collection)
    if not found:
        where = f" from collection '{collection}'" if collection else ""
        raise fail(f"document {doc_id} was never erased{where}")
    print(json.dumps(found, indent=2, ensure_ascii=False))


def audit_erasure(rt: Runtime, action: str, report: ErasureReport) -> None:
    """The erasure's line in the audit log (the one the API writes to), as the API writes it."""
    from assistant.api.audit import AuditLog, audit_path

    settings = rt.settings
    log = AuditLog(audit_path(settings), question_text=settings.api.log_question_text)
    log.change(key_id=report.requested_by, action=action, target=report.audit_target())


def print_reach(report: ErasureReport) -> None:
    """What the erasure reached beyond the chunks, and where its report is."""
    for ref in report.adapters_tainted:
        out.print(
            f"[yellow]tainted {ref}[/yellow]: it was trained on an erased document and is no "
            f"longer served; `lorag adapters retrain {ref}` rebuilds it without",
            highlight=False,
        )
    rows = sum(report.training_rows_removed.values())
    if rows or report.feedback_removed:
        out.print(
            f"removed {rows} training rows (kept by adapters and training runs) and "
            f"{report.feedback_removed} feedback entries",
            highlight=False,
        )
    out.print(
        f"erasure {report.erasure_id}: `lorag documents erasure-report "
        f"{report.doc_ids[0]}` shows what it reached",
        highlight=False,
    )
