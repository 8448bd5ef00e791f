"""What a format loader hands back, and how it becomes a :class:`LoadedDocument`.

A loader returns an :class:`Extracted`: the title its format declares (if any) and raw sections
in reading order. :func:`assemble` strips the sections, drops blank ones and computes each
section's offset in the document's full text. Loaders of structured formats collect their text
with a :class:`SectionBuilder`, which cuts a section at every heading and names it by its heading
path ("Install > Linux"); a heading that holds only part of its parent (an object
described inside a section) is closed with :meth:`SectionBuilder.end`.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.core.errors import DocumentError
from assistant.core.types import SECTION_SEPARATOR, LoadedDocument, Section

HEADING_PATH_SEPARATOR = " > "


@dataclass(frozen=True)
class RawSection:
    """A section as a loader found it: text not yet stripped, no offset yet."""

    text: str
    page: int | None = None
    heading: str | None = None


@dataclass(frozen=True)
class Extracted:
    """A loader's result: the format's own title (``None`` if it has none) and raw sections."""

    title: str | None
    sections: tuple[RawSection, ...]


class SectionBuilder:
    """Collects text blocks and headings in reading order; a heading starts a new section.

    Headings nest by level: a level-2 heading after the level-1 heading "Install" gives the
    path "Install > Linux". A heading with no text under it yields no section.
    """

    def __init__(self) -> None:
        self._trail: list[tuple[int, str]] = []
        self._blocks: list[str] = []
        self._sections: list[RawSection] = []
        self.first_heading: str | None = None

    def add(self, text: str) -> None:
        """Add a block of text to the current section (blocks are joined by a blank line)."""
        self._blocks.append(text)

    def heading(self, level: int, text: str) -> None:
        """Start a section under a heading of ``level`` (1 = top); an empty heading is ignored."""
        text = " ".join(text.split())
        if not text:
            return
        self._flush()
        while self._trail and self._trail[-1][0] >= level:
            self._trail.pop()
        self._trail.append((level, text))
        if self.first_heading is None:
            self.first_heading = text

    def end(self, level: int) -> None:
        """Close the headings of ``level`` and deeper: what follows is under the one above."""
        self._flush()
        while self._trail and self._trail[-1][0] >= level:
            self._trail.pop()

    def build(self, title: str | None = None) -> Extracted:
        """The sections collected; the title is ``title`` or else the first heading."""
        self._flush()
        return Extracted(title=title or self.first_heading, sections=tuple(self._sections))

    def _flush(self) -> None:
        text = SECTION_SEPARATOR.join(b.strip() for b in self._blocks if b.strip())
        if text:
            heading = HEADING_PATH_SEPARATOR.join(t for _, t in self._trail) or None
            self._sections.append(RawSection(text, heading=heading))
        self._blocks.clear()


def assemble(
    extracted: Extracted, source: str, fallback_title: str, content_hash: str
) -> LoadedDocument:
    """Strip the sections, drop blank ones, and place each at its offset in the full text."""
    sections: list[Section] = []
    start = 0
    for raw in extracted.sections:
        text = raw.text.strip()
        if not text:
            continue
        sections.append(Section(text=text, start=start, page=raw.page, heading=raw.heading))
        start += len(text) + len(SECTION_SEPARATOR)
    if not sections:
        raise DocumentError(source, "no text could be extracted")
    title = " ".join((extracted.title or "").split()) or fallback_title
    return LoadedDocument(
        source=source, title=title, sections=tuple(sections), content_hash=content_hash
    )
