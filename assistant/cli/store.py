"""``lorag store snapshot create|list|restore`` and ``lorag store migrate``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Annotated

import typer
from tqdm import tqdm

from assistant.cli.common import CollectionOption, fail, out
from assistant.core.errors import LoragError
from assistant.core.protocols import VectorStore
from assistant.core.settings import Settings, load_settings
from assistant.core.store import open_engine, open_store
from assistant.core.store.migrate import OnExisting, migrate

store_app = typer.Typer(
    help="Snapshots of collections, and copying them between the embedded store and a Qdrant "
    "server.",
    no_args_is_help=True,
)
snapshot_app = typer.Typer(
    help="Create, list and restore collection snapshots.", no_args_is_help=True
)
store_app.add_typer(snapshot_app, name="snapshot")

STORE_HELP = (
    "a Qdrant server URL, or 'edge' / 'client' for an embedded engine in data_dir (default: "
    "the store the settings name)"
)


@contextmanager
def _settings() -> Iterator[Settings]:
    """The settings, with user-facing errors (and a server's refusals) as a one-line message
    and exit code 1."""
    from qdrant_client.http.exceptions import ApiException

    from assistant.core.store.client import server_problem

    try:
        yield load_settings()
    except LoragError as error:
        raise fail(str(error)) from None
    except ApiException as error:
        raise fail(f"the Qdrant server: {server_problem(error)}") from None


@contextmanager
def _store() -> Iterator[tuple[Settings, VectorStore]]:
    with _settings() as settings:
        store = open_store(settings)
        try:
            yield settings, store
        finally:
            store.close()


def _collection(settings: Settings, collection: str | None) -> str:
    return collection or settings.collection


@snapshot_app.command("create")
def snapshot_create(collection: CollectionOption = None) -> None:
    """Save a snapshot of a collection (embedded: a file in data_dir/snapshots; server: on it).

    On a cluster, the node at the URL snapshots the shards it holds."""
    with _store() as (settings, store):
        snapshot = store.create_snapshot(_collection(settings, collection))
    out.print(
        f"snapshot of {snapshot.collection!r}: {snapshot.location} ({snapshot.size:,} bytes)",
        highlight=False,
    )


@snapshot_app.command("list")
def snapshot_list(
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="Only this collection's snapshots.")
    ] = None,
) -> None:
    """List the snapshots (of every collection, or of one), one line each, oldest first."""
    with _store() as (_, store):
        snapshots = store.list_snapshots(collection)
    for snapshot in snapshots:
        points = "" if snapshot.points is None else f"  {snapshot.points} points"
        out.print(
            f"{snapshot.collection}  {snapshot.created_at}  {snapshot.size:,} bytes{points}  "
            f"{snapshot.location}",
            highlight=False,
        )
    if not snapshots:
        out.print("no snapshots")


@snapshot_app.command("restore")
def snapshot_restore(
    location: Annotated[
        str,
        typer.Argument(
            help="A snapshot file, or (server) a URL the server can fetch, file:// on its disk."
        ),
    ],
    collection: CollectionOption = None,
) -> None:
    """Replace (or create) a collection with a snapshot."""
    with _store() as (settings, store):
        name = _collection(settings, collection)
        store.restore_snapshot(name, location)
        points = store.count(name)
    out.print(f"restored {name!r} from {location}: {points} points", highlight=False)


@store_app.command("migrate")
def store_migrate(
    collection: CollectionOption = None,
    source: Annotated[
        str | None, typer.Option("--from", help=f"The store to copy from: {STORE_HELP}.")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--to", help=f"The store to copy to: {STORE_HELP}.")
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Drop the target's collection first if it holds points.")
    ] = False,
    resume: Annotated[
        bool, typer.Option(help="Complete a copy that was cut short (upserts by point id).")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Copy a collection between stores, verified by its point ids.

    From the embedded engine to a Qdrant server: --to URL; back: --from URL."""
    if replace and resume:
        raise fail("--replace and --resume exclude each other")
    on_existing: OnExisting = "replace" if replace else "resume" if resume else "refuse"
    with _settings() as settings, ExitStack() as stores:
        configured = settings.store.url or settings.store.embedded_engine
        source, target = source or configured, target or configured
        if source == target:
            raise fail(f"--from and --to name the same store ({source}): name the other one")
        name = _collection(settings, collection)
        reader = stores.enter_context(_closing(open_engine(settings, source)))
        writer = stores.enter_context(_closing(open_engine(settings, target)))
        bars: list[tqdm] = []  # made at the first page: a refused copy shows none

        def advance(done: int, total: int) -> None:
            if not bars:
                bars.append(tqdm(total=total, unit="point", desc="migrate", disable=not progress))
            bars[0].update(done - bars[0].n)

        try:
            report = migrate(reader, writer, name, on_existing, progress=advance)
        finally:
            for bar in bars:
                bar.close()
    out.print(
        f"{name}: {report.points} points copied from {source} to {target} and verified "
        f"(same ids) in {report.seconds:.1f} s",
        highlight=False,
    )


@contextmanager
def _closing(store: VectorStore) -> Iterator[VectorStore]:
    try:
        yield store
    finally:
        store.close()
