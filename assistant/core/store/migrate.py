"""Copying a collection from one store to another (embedded engine ↔ Qdrant server), verified.

The source is read in pages of points with their vectors (dense and sparse) and payloads, in
point-id order, and each page is upserted into the target, which is created with the source's
vector size (and, on a server, the layout of the settings). Point ids are the chunk ids, so an
upsert repeated after a kill writes the same points again: a cut-short copy is completed by
running it again with ``resume``. At the end the target must hold exactly the source's ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from assistant.core.errors import CollectionNotFoundError, ConfigError, StoreError
from assistant.core.protocols import VectorStore
from assistant.core.types import StoredPoint

OnExisting = Literal["refuse", "replace", "resume"]
"""What to do with a target collection that already holds points: refuse (the default), drop
it first (``replace``), or complete a copy that was cut short (``resume``)."""

BATCH = 256


@dataclass(frozen=True)
class MigrationReport:
    """A verified copy: the points now in the target, and how long it took."""

    collection: str
    points: int
    seconds: float


def migrate(
    source: VectorStore,
    target: VectorStore,
    name: str,
    on_existing: OnExisting = "refuse",
    batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> MigrationReport:
    """Copy collection ``name`` from ``source`` to ``target``; ``progress(done, total)`` after
    each page. Checks that need no write come first: a refused copy writes nothing."""
    started = time.perf_counter()
    if not source.has_collection(name):
        raise CollectionNotFoundError(name, source.list_collections())
    dimension, total = source.dimension(name), source.count(name)
    _prepare_target(source, target, name, dimension, on_existing)
    target.create_collection(name, dimension)
    done, offset = 0, None
    while True:
        page, offset = source.points(name, limit=batch, offset=offset)
        if page:
            _upsert(target, name, page)
        done += len(page)
        if progress is not None:
            progress(done, total)
        if offset is None:
            break
    target.optimize(name)
    _verify(source, target, name)
    return MigrationReport(name, target.count(name), time.perf_counter() - started)


def _prepare_target(
    source: VectorStore, target: VectorStore, name: str, dimension: int, on_existing: OnExisting
) -> None:
    """Refuse a target collection the copy must not write into; drop it under ``replace``."""
    if not target.has_collection(name):
        return
    held = target.count(name)
    if on_existing == "replace":
        target.delete_collection(name)
        return
    if target.dimension(name) != dimension:
        raise ConfigError(
            f"the target's collection {name!r} holds {target.dimension(name)}-d vectors, the "
            f"source's {dimension}-d: replace it (--replace) or copy to another store"
        )
    if held == 0:
        return
    if on_existing == "refuse":
        raise StoreError(
            f"the target's collection {name!r} already holds {held} points: --resume completes "
            "a copy that was cut short, --replace drops them first"
        )
    strangers = len(_ids(target, name) - _ids(source, name))
    if strangers:
        raise StoreError(
            f"cannot resume: the target's collection {name!r} holds {strangers} points the "
            "source does not (it is not a copy of it); --replace drops them first"
        )


def _upsert(target: VectorStore, name: str, page: list[StoredPoint]) -> None:
    target.upsert(
        name,
        [point.chunk for point in page],
        np.asarray([point.dense for point in page], dtype=np.float32),
        [point.sparse for point in page],
    )


def _verify(source: VectorStore, target: VectorStore, name: str) -> None:
    """Raise ``StoreError`` unless the target holds exactly the source's point ids."""
    expected, copied = _ids(source, name), _ids(target, name)
    if expected != copied:
        raise StoreError(
            f"the copy of {name!r} does not match its source: {len(expected - copied)} points "
            f"missing, {len(copied - expected)} not in the source (was the source written to "
            "during the copy?); run it again with --resume"
        )


def _ids(store: VectorStore, name: str) -> set[str]:
    return {chunk.id for chunk in store.chunks(name)}
