"""The ``lorag`` command line: ingest, ask, chat, collections, documents.

Each command parses its arguments, calls one function of the runtime, and formats the result.
Problems the user can fix (``LoragError``) are printed as one line naming the problem, with a
non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from assistant.core.errors import CollectionNotFoundError, LoragError
from assistant.core.settings import load_settings
from assistant.core.types import Answer, DocumentInfo
from assistant.runtime import Runtime

app = typer.Typer(
    help="Answers from your own documents, with citations, on your own hardware.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
documents_app = typer.Typer(
    help="List or delete the documents of a collection.", no_args_is_help=True
)
app.add_typer(documents_app, name="documents")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

CollectionOption = Annotated[
    str | None, typer.Option("--collection", "-c", help="Knowledge base (default: settings).")
]


@contextmanager
def runtime() -> Iterator[Runtime]:
    """A Runtime whose user-facing errors become a one-line message and exit code 1."""
    rt: Runtime | None = None
    try:
        rt = Runtime(load_settings())
        yield rt
    except LoragError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        if rt is not None:
            rt.close()


def _collection(rt: Runtime, name: str | None) -> str:
    return name or rt.settings.collection


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    collection: CollectionOption = None,
    prune: Annotated[
        bool, typer.Option(help="Forget stored documents whose file is gone from these folders.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Add or update documents in a collection (unchanged files are skipped)."""
    with runtime() as rt:
        name = _collection(rt, collection)
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


WITHDRAWN = {
    "model_declined": "the model found no answer in the sources",
    "unsupported": "the draft above is not supported by the sources",
}


def _print_answer(answer: Answer) -> None:
    """After a streamed answer: a withdrawn draft's reason, or the citations."""
    if answer.abstain_reason in WITHDRAWN:
        out.print(f"[yellow]{WITHDRAWN[answer.abstain_reason]}:[/yellow] {answer.text}")
    for citation in answer.citations:
        place = citation.title
        if citation.page is not None:
            place += f", page {citation.page}"
        if citation.heading:
            place += f", {citation.heading}"
        out.print(f"  [{citation.n}] {place} — {citation.source}", highlight=False)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    collection: CollectionOption = None,
    adapter: Annotated[
        str | None, typer.Option(help="Folder of a PEFT adapter to answer with.")
    ] = None,
    top_k: Annotated[int | None, typer.Option(min=1, help="Sources given to the model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Answer one question from a collection, with citations."""
    from assistant.engine import Done, Token

    with runtime() as rt:
        adapter_name = rt.use_adapter(adapter)
        events = rt.engine.stream(question, _collection(rt, collection), adapter_name, top_k)
        for event in events:
            if isinstance(event, Token) and not as_json:
                out.print(event.text, end="", highlight=False, markup=False)
            elif isinstance(event, Done):
                answer = event.answer
    if as_json:
        print(json.dumps(asdict(answer), indent=2, ensure_ascii=False))
    else:
        out.print()
        _print_answer(answer)


@app.command()
def chat(
    collection: CollectionOption = None,
    adapter: Annotated[
        str | None, typer.Option(help="Folder of a PEFT adapter to answer with.")
    ] = None,
) -> None:
    """Ask questions one after another (empty line or Ctrl-D to leave)."""
    from assistant.engine import Done, Token

    with runtime() as rt:
        name = _collection(rt, collection)
        adapter_name = rt.use_adapter(adapter)
        if not rt.store.has_collection(name):
            raise CollectionNotFoundError(name, rt.store.list_collections())
        out.print(f"Ask about the documents in '{name}'. Empty line or Ctrl-D to leave.")
        while True:
            try:
                question = input("\n> ").strip()
            except EOFError:
                break
            if not question:
                break
            for event in rt.engine.stream(question, name, adapter_name):
                if isinstance(event, Token):
                    out.print(event.text, end="", highlight=False, markup=False)
                elif isinstance(event, Done):
                    out.print()
                    _print_answer(event.answer)


@app.command()
def collections() -> None:
    """List the collections (knowledge bases) with their documents and chunks."""
    with runtime() as rt:
        table = Table("collection", "documents", "chunks")
        for name in rt.store.list_collections():
            table.add_row(name, str(len(rt.store.documents(name))), str(rt.store.count(name)))
    out.print(table)


@documents_app.command("list")
def documents_list(collection: CollectionOption = None) -> None:
    """List the documents of a collection."""
    with runtime() as rt:
        name = _collection(rt, collection)
        docs = _documents(rt, name)
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
    """Delete documents (all their chunks) from a collection."""
    with runtime() as rt:
        name = _collection(rt, collection)
        known = _documents(rt, name)
        missing = []
        for wanted in documents:
            resolved = str(Path(wanted).expanduser().resolve())
            matches = [d for d in known if wanted in (d.doc_id, d.source) or d.source == resolved]
            if not matches:
                missing.append(wanted)
            for info in matches:
                rt.store.delete_document(name, info.doc_id)
                out.print(f"deleted {info.source} ({info.chunk_count} chunks)", highlight=False)
    if missing:
        err.print(f"[red]error:[/red] not in collection '{name}': {', '.join(missing)}")
        raise typer.Exit(1)


def _documents(rt: Runtime, name: str) -> list[DocumentInfo]:
    if not rt.store.has_collection(name):
        raise CollectionNotFoundError(name, rt.store.list_collections())
    return rt.store.documents(name)
