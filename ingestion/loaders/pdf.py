"""PDF (.pdf): one section per page, read with pypdf; page numbers are 1-based.

An encrypted PDF is opened if it needs no password (owner-restricted files); a PDF whose pages
hold no text at all (a scan without OCR) is refused, as is any file pypdf cannot parse.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from assistant.core.errors import DocumentError
from ingestion.loaders.extracted import Extracted, RawSection

if TYPE_CHECKING:
    from pypdf import PdfReader

_PLACEHOLDER_TITLES = frozenset({"", "untitled"})


def load_pdf(data: bytes, source: str) -> Extracted:
    """One section per page with text; the title is the PDF's metadata title if it has one."""
    from pypdf import PdfReader

    if b"%PDF-" not in data[:1024]:
        raise DocumentError(source, "is not a readable PDF: it has no PDF header")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            _open_encrypted(reader, source)
        pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except Exception as exc:  # pypdf raises many types on damaged files
        raise DocumentError(source, f"is not a readable PDF: {_reason(exc)}") from exc
    if not any(text.strip() for text in pages):
        raise DocumentError(source, "has no text layer (scanned?); run OCR on it first")
    sections = tuple(RawSection(text, page=number) for number, text in enumerate(pages, 1))
    return Extracted(title=_title(reader), sections=sections)


def _open_encrypted(reader: PdfReader, source: str) -> None:
    from pypdf import PasswordType

    if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise DocumentError(source, "is encrypted (password-protected); save an unlocked copy")


def _title(reader: PdfReader) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # damaged metadata is no reason to refuse the text
        return None
    if not isinstance(title, str) or title.strip().lower() in _PLACEHOLDER_TITLES:
        return None
    return title


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
