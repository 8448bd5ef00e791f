"""The ``lorag`` command line.

Each command parses its arguments, calls the runtime, and formats the result. Problems the
user can fix (``LoragError``) are printed as one line naming the problem, with exit code 1,
never as a traceback.
"""

from __future__ import annotations

import typer

from assistant.cli.adapters import adapters_app
from assistant.cli.answering import ask, chat
from assistant.cli.batch import batch, evaluate
from assistant.cli.distill import distill
from assistant.cli.documents import collections, documents_app, ingest
from assistant.cli.finetune import finetune
from assistant.cli.serve import serve
from assistant.cli.store import store_app
from assistant.cli.ui import ui

app = typer.Typer(
    help="Answers from your own documents, with citations, on your own hardware.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(ingest)
app.command()(ask)
app.command()(chat)
app.command()(collections)
app.command()(finetune)
app.command()(distill)
app.command()(batch)
app.command("eval")(evaluate)
app.command()(serve)
app.command()(ui)
app.add_typer(documents_app, name="documents")
app.add_typer(adapters_app, name="adapters")
app.add_typer(store_app, name="store")

__all__ = ["app"]
