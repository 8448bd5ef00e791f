"""PDF (.pdf): one section per page, read with pypdf; page numbers are 1-based.

An encrypted PDF is opened if it needs no password (owner-restricted files); a PDF whose pages
hold no text at all (a scan without OCR) is refused, as is any file pypdf cannot parse.

Bounded work: a PDF of over :data:`MAX_PAGES` pages is refused before any page is read (10,000
pages of text load in about 7 s), and extraction stops with a refusal once the text passes
:data:`MAX_TEXT_CHARS` (compressed page streams can unpack to far more than the file's size;
pypdf itself caps each stream at 75 MB).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from assistant.core.errors import DocumentError
from ingestion.loaders.extracted import Extracted, RawSection

if TYPE_CHECKING:
    from pypdf import PdfReader

MAX_PAGES = 20_000
MAX_TEXT_CHARS = 256 * 1024 * 1024
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
        pages = _page_texts(reader, source)
    except DocumentError:
        raise
    except Exception as exc:  # pypdf raises many types on damaged files
        raise DocumentError(source, f"is not a readable PDF: {_reason(exc)}") from exc
    if not any(text.strip() for text in pages):
        raise DocumentError(source, "has no text layer (scanned?); run OCR on it first")
    sections = tuple(RawSection(text, page=number) for number, text in enumerate(pages, 1))
    return Extracted(title=_title(reader), sections=sections)


def _page_texts(reader: PdfReader, source: str) -> list[str]:
    """The text of each page, within :data:`MAX_PAGES` and :data:`MAX_TEXT_CHARS`."""
    count = len(reader.pages)
    if count > MAX_PAGES:
        raise DocumentError(
            source, f"has {count:,} pages, over the limit of {MAX_PAGES:,} pages: split it"
        )
    pages: list[str] = []
    chars = 0
    for number, page in enumerate(reader.pages, 1):
        text = page.extract_text() or ""
        chars += len(text)
        if chars > MAX_TEXT_CHARS:
            raise DocumentError(
                source,
                f"unpacks to over {MAX_TEXT_CHARS // (1024 * 1024)} M characters of text by "
                f"page {number:,} (a decompression bomb?)",
            )
        pages.append(text)
    return pages


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
