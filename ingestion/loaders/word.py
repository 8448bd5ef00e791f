"""Word (.docx): sections cut at paragraphs styled "Heading N", read with python-docx.

Body paragraphs and tables are read in document order (a table row becomes one line, its cells
separated by " | "). The title is the document's core "title" property, else the first
paragraph styled "Title", else the first heading; a "Title" paragraph is not body text.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import TYPE_CHECKING

from assistant.core.errors import DocumentError
from ingestion.loaders.extracted import Extracted, SectionBuilder

if TYPE_CHECKING:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
MAX_EXPANDED_BYTES = 256 * 1024 * 1024
"""A .docx is a zip: more than this once unpacked, and it is refused before it is read (a
decompression bomb of a few hundred KiB can unpack to gigabytes)."""


def load_docx(data: bytes, source: str) -> Extracted:
    """Sections of paragraphs and tables, one per heading."""
    import docx
    from docx.text.paragraph import Paragraph

    _check_expanded_size(data, source)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # a zip, package or XML error, whichever broke first
        reason = str(exc) or type(exc).__name__
        raise DocumentError(source, f"is not a readable Word (.docx) file: {reason}") from exc
    title = document.core_properties.title or None
    builder = SectionBuilder()
    for block in document.iter_inner_content():
        if not isinstance(block, Paragraph):
            builder.add(_table_text(block))
        elif _style_name(block) == "Title":
            title = title or block.text.strip() or None
        elif level := _heading_level(block):
            builder.heading(level, block.text)
        else:
            builder.add(block.text)
    return builder.build(title)


def _check_expanded_size(data: bytes, source: str) -> None:
    """Refuse a zip that would unpack to over :data:`MAX_EXPANDED_BYTES` (its own directory
    says how much; a damaged one is left for python-docx to report)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile:
        return
    if expanded > MAX_EXPANDED_BYTES:
        megabytes = expanded / (1024 * 1024)
        raise DocumentError(
            source,
            f"unpacks to {megabytes:,.0f} MB, over the limit of "
            f"{MAX_EXPANDED_BYTES // (1024 * 1024)} MB for a Word file (a decompression bomb?)",
        )


def _style_name(paragraph: Paragraph) -> str:
    style = paragraph.style
    return (style.name or "") if style is not None else ""


def _heading_level(paragraph: Paragraph) -> int | None:
    match = _HEADING_STYLE.match(_style_name(paragraph))
    return int(match[1]) if match else None


def _table_text(table: Table) -> str:
    rows = (" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows)
    return "\n".join(row for row in rows if row.strip(" |"))
