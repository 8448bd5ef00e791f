"""The embedded store's snapshot file: a collection's shard folder in a gzip'd tar, with a manifest.

``manifest.json`` is the first member (so listing snapshots reads only the head of each file),
then the shard's files under ``shard/``. A snapshot is written under a hidden name beside its
final one and renamed into place, so a killed ``create`` leaves no partial snapshot; it is
unpacked with tarfile's ``data`` filter (no absolute paths, no links out of the folder, no
device files).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tarfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from assistant.core.errors import StoreError

FORMAT = "lorag-edge-snapshot"
FORMAT_VERSION = 1
SUFFIX = ".snapshot"
MANIFEST = "manifest.json"
SHARD = "shard"


@dataclass(frozen=True)
class Manifest:
    """What a snapshot holds: which collection, its vector size and point count, and when and
    with which engine version it was taken."""

    collection: str
    dimension: int
    points: int
    created_at: str
    engine_version: str = dataclasses.field(default_factory=lambda: version("qdrant-edge-py"))


def write(shard: Path, manifest: Manifest, target: Path) -> int:
    """Archive the ``shard`` folder (closed, or flushed and not written to) as ``target``;
    return its size in bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    header = json.dumps({"format": FORMAT, "version": FORMAT_VERSION, **vars(manifest)}).encode()
    try:
        with tarfile.open(partial, "w:gz", compresslevel=1) as archive:
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(header)
            archive.addfile(info, io.BytesIO(header))
            archive.add(shard, arcname=SHARD)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size


def read_manifest(file: Path) -> Manifest:
    """The manifest of snapshot ``file``; a ``StoreError`` if it is not one lorag can restore."""
    if not file.is_file():
        raise StoreError(f"no snapshot file at {file}")
    try:
        with tarfile.open(file, "r:gz") as archive:
            first = archive.next()
            extracted = archive.extractfile(first) if first and first.name == MANIFEST else None
            header = json.loads(extracted.read()) if extracted else {}
    except (tarfile.TarError, OSError, EOFError, json.JSONDecodeError):
        header = {}
    if header.get("format") != FORMAT:
        raise StoreError(
            f"{file} is not a snapshot of lorag's embedded store (a Qdrant server's snapshot is "
            "restored on a server; `lorag store migrate` moves a collection between a server "
            "and the embedded store)"
        )
    if header.get("version") != FORMAT_VERSION:
        raise StoreError(
            f"{file} is a version {header.get('version')} snapshot; this lorag reads version "
            f"{FORMAT_VERSION}"
        )
    fields = {field.name for field in dataclasses.fields(Manifest)}
    return Manifest(**{key: value for key, value in header.items() if key in fields})


def unpack(file: Path, into: Path) -> Path:
    """Unpack snapshot ``file`` into the new folder ``into``; return the shard folder in it."""
    into.mkdir(parents=True)
    with tarfile.open(file, "r:gz") as archive:
        archive.extractall(into, filter="data")
    shard = into / SHARD
    if not shard.is_dir():
        raise StoreError(f"{file} holds no shard folder: the snapshot is damaged")
    return shard
