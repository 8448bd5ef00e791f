"""Read a file into a :class:`LoadedDocument`: one loader per format, picked by suffix.

:data:`LOADERS` is the registry: file suffix → loader. A loader turns the file's bytes into
an :class:`~ingestion.loaders.extracted.Extracted` (title and raw sections);
:func:`load_document` does the checks every format shares (exists, is a file, supported, not
too big, not empty), hashes the bytes, runs the loader and assembles the document. Every
problem is raised as :class:`DocumentError` with a message a person can act on; parsing
libraries are imported only when a file of their format is loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from assistant.core.errors import DocumentError
from assistant.core.types import LoadedDocument
from ingestion.loaders.extracted import Extracted, assemble
from ingestion.loaders.html import load_html
from ingestion.loaders.markdown import load_markdown
from ingestion.loaders.pdf import load_pdf
from ingestion.loaders.rst import load_rst
from ingestion.loaders.text import load_text
from ingestion.loaders.word import load_docx

Loader = Callable[[bytes, str], Extracted]

LOADERS: dict[str, Loader] = {
    ".txt": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".rst": load_rst,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(sorted(LOADERS))
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

__all__ = [
    "DEFAULT_MAX_BYTES",
    "LOADERS",
    "SUPPORTED_SUFFIXES",
    "Loader",
    "load_document",
]


def load_document(
    path: Path, source: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> LoadedDocument:
    """Load one file; ``source`` (default: the absolute path) names it in the document and errors.

    Raises :class:`DocumentError` if the file is missing, not a regular file, of an unsupported
    type, over ``max_bytes``, empty, undecodable, damaged, encrypted, or holds no text.
    """
    path = Path(path)
    source = source if source is not None else str(path.resolve())
    loader = _loader_for(path, source)
    data = _read(path, source, max_bytes)
    try:
        extracted = loader(data, source)
    except (DocumentError, ImportError):
        raise
    except Exception as exc:  # a parser's own failure: report it, never its traceback
        reason = str(exc) or type(exc).__name__
        raise DocumentError(source, f"could not be parsed as {path.suffix}: {reason}") from exc
    return assemble(extracted, source, path.stem, hashlib.sha256(data).hexdigest())


def _loader_for(path: Path, source: str) -> Loader:
    if not path.exists():
        raise DocumentError(source, "file not found")
    if path.is_dir():
        raise DocumentError(source, "is a directory, not a file")
    if not path.is_file():
        raise DocumentError(source, "is not a regular file")
    suffix = path.suffix.lower()
    if suffix not in LOADERS:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        what = f"unsupported file type '{suffix}'" if suffix else "has no file extension"
        raise DocumentError(source, f"{what} (supported: {supported})")
    return LOADERS[suffix]


def _read(path: Path, source: str, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DocumentError(source, f"is {over_the_limit(size, max_bytes)}")
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(source, f"cannot be read: {exc.strerror or exc}") from exc
    if not data:
        raise DocumentError(source, "file is empty")
    return data


def over_the_limit(size: int, limit: int) -> str:
    """ "51.2 MB, over the limit of 50 MB", in bytes when the two would read the same."""
    if _megabytes(size) == _megabytes(limit):
        return f"{size:,} bytes, over the limit of {limit:,} bytes"
    return f"{_megabytes(size)} MB, over the limit of {_megabytes(limit)} MB"


def _megabytes(size: int) -> str:
    """Size in MiB: "50", "51.2", or enough digits that a small limit does not read as 0."""
    value = size / (1024 * 1024)
    return f"{value:.1f}".removesuffix(".0") if value >= 0.1 else f"{value:.3g}"
