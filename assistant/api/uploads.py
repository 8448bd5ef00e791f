"""Uploaded files: names, types and emptiness checked, then written whole into a staging folder.

Every file of a request is checked before any is written: a name that could leave the folder
(``/``, ``\\``, a leading dot, control characters) is refused with 400, a type outside
``suffixes`` with 415, a repeated name with 400, an empty file with 422; each message names the
file. The request's total size is bounded by :class:`~assistant.api.middleware.LimitBody`. The
caller stages into a folder it removes on failure (:meth:`JobManager.staging`), so a refused
upload leaves nothing behind.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from fastapi import HTTPException, UploadFile

MAX_NAME_BYTES = 255
_COPY_BLOCK = 1 << 20
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def safe_name(filename: str | None) -> str:
    """``filename`` if it names a plain file inside a folder; 400 otherwise."""
    name = filename or ""
    if (
        not name.strip()
        or name.startswith(".")
        or _UNSAFE.search(name)
        or len(name.encode()) > MAX_NAME_BYTES
    ):
        raise HTTPException(
            400,
            f"unsafe file name {name!r}: a plain name is needed, without '/', '\\', a leading "
            "'.' or control characters",
        )
    return name


async def save_uploads(
    files: Sequence[UploadFile], folder: Path, suffixes: Sequence[str]
) -> list[str]:
    """Check ``files`` (see the module docstring) and write them into ``folder``; their names."""
    names: list[str] = []
    for upload in files:
        name = safe_name(upload.filename)
        suffix = Path(name).suffix.lower()
        if suffix not in suffixes:
            raise HTTPException(
                415,
                f"{name!r}: unsupported file type {suffix or '(no suffix)'!r}; "
                f"supported: {', '.join(suffixes)}",
            )
        if name in names:
            raise HTTPException(400, f"{name!r} is uploaded twice in one request")
        names.append(name)
    for upload, name in zip(files, names, strict=True):
        size = 0
        with (folder / name).open("wb") as handle:
            while block := await upload.read(_COPY_BLOCK):
                handle.write(block)
                size += len(block)
        if size == 0:
            raise HTTPException(422, f"{name!r} is empty")
    return names
