"""What every ``lorag`` command shares: the consoles, the runtime context, common options."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

from assistant.core.errors import LoragError
from assistant.core.settings import load_settings
from assistant.core.tracing import install_tracing
from assistant.runtime import Runtime

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

CollectionOption = Annotated[
    str | None, typer.Option("--collection", "-c", help="Knowledge base (default: settings).")
]
RerankerOption = Annotated[
    str | None,
    typer.Option(
        help="Cross-encoder that reorders the retrieved chunks for this run: a Hugging Face id or "
        "a local folder; '' turns a configured one off (default: retrieval.reranker)."
    ),
]
AdapterOption = Annotated[
    str | None,
    typer.Option(
        help="Adapter to answer with: a registered NAME or NAME@VERSION, or a PEFT adapter "
        "folder, or base for the base model (default: the adapter bound to the collection, if any)."
    ),
]


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` options as a dict (a malformed one fails, naming it)."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"--set expects KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error line; the exit to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


@contextmanager
def runtime(reranker: str | None = None) -> Iterator[Runtime]:
    """A Runtime whose user-facing errors become a one-line message and exit code 1; with
    ``reranker``, that is ``retrieval.reranker`` for this run. Traces are sent where
    ``tracing.otlp_endpoint`` says (none when unset)."""
    rt: Runtime | None = None
    try:
        overrides = {} if reranker is None else {"retrieval": {"reranker": reranker}}
        settings = load_settings(**overrides)
        install_tracing(settings)
        rt = Runtime(settings)
        yield rt
    except LoragError as error:
        raise fail(str(error)) from None
    finally:
        if rt is not None:
            rt.close()


def collection_name(rt: Runtime, name: str | None) -> str:
    return name or rt.settings.collection
