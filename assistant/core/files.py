"""JSON files: read back as checked objects, and written whole or not at all (the text goes to a
temporary sibling, renamed into place).

A crash, a full disk or a kill leaves the old file (or none), never half of the new one. Every
JSON or JSONL file lorag writes for people or for itself to read back goes through here.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def read_json_object(path: Path, error: type[Exception] = ValueError) -> dict[str, Any]:
    """The JSON object in ``path``; ``error``, naming the file, if it is unreadable or holds
    something other than an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise error(f"{str(path)!r} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{str(path)!r} is not a JSON object")
    return data


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating its folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(
    path: Path,
    data: Any,
    *,
    indent: int | None = 2,
    default: Callable[[Any], Any] | None = None,
) -> None:
    """Write ``data`` as JSON (non-ASCII kept, a final newline) to ``path`` atomically."""
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=default)
    write_text_atomic(path, text + "\n")


def write_jsonl(path: Path, records: Iterable[Any]) -> None:
    """Write ``records`` one JSON object per line to ``path`` atomically."""
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
