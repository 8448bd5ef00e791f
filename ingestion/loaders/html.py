"""HTML (.html, .htm): visible text cut into sections at ``<h1>`` to ``<h6>``.

Parsed with BeautifulSoup (Python's built-in parser). Scripts, styles, navigation, templates
and the ``<head>`` are dropped. The title is the ``<title>``, else the first ``<h1>``, else the
first heading. Block elements become paragraph breaks, ``<br>`` a line break, and ``<pre>``
blocks keep their whitespace.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from assistant.core.errors import DocumentError
from ingestion.loaders.decoding import decode_text
from ingestion.loaders.extracted import Extracted, SectionBuilder

if TYPE_CHECKING:
    from bs4 import Tag

_DROPPED = ("script", "style", "nav", "noscript", "template", "head", "title")
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "caption",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hr",
        "li",
        "main",
        "ol",
        "p",
        "section",
        "summary",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
_CELLS = frozenset({"td", "th"})


def load_html(data: bytes, source: str) -> Extracted:
    """Sections of visible text, one per heading. A page whose elements nest deeper than the
    parser and the walk can follow (thousands of levels: no page a person wrote) is refused."""
    from bs4 import BeautifulSoup

    try:
        soup = BeautifulSoup(decode_text(data, source), "html.parser")
        title = _text_of(soup.title) or _text_of(soup.find("h1"))
        for tag in soup(_DROPPED):
            tag.decompose()
        collector = _HtmlCollector()
        collector.walk(soup.body or soup)
    except RecursionError:
        raise DocumentError(source, "nests its elements too deep to be read") from None
    return collector.build(title)


def _text_of(tag: Tag | None) -> str | None:
    return tag.get_text(" ", strip=True) if tag is not None else None


class _HtmlCollector:
    """Walks the tree in document order, buffering inline text between headings and blocks."""

    def __init__(self) -> None:
        self._builder = SectionBuilder()
        self._buffer: list[str] = []

    def walk(self, node: Tag) -> None:
        from bs4 import NavigableString, Tag
        from bs4.element import PreformattedString

        for child in node.children:
            if isinstance(child, Tag):
                self._tag(child)
            elif isinstance(child, NavigableString) and not isinstance(child, PreformattedString):
                self._buffer.append(re.sub(r"\s+", " ", child))

    def build(self, title: str | None) -> Extracted:
        self._flush()
        return self._builder.build(title)

    def _tag(self, tag: Tag) -> None:
        if tag.name in _HEADINGS:
            self._flush()
            self._builder.heading(_HEADINGS[tag.name], tag.get_text(" ", strip=True))
        elif tag.name == "pre":
            self._flush()
            self._builder.add(tag.get_text().strip("\n"))
        elif tag.name == "br":
            self._buffer.append("\n")
        else:
            gap = "\n\n" if tag.name in _BLOCKS else " " if tag.name in _CELLS else ""
            self._buffer.append(gap)
            self.walk(tag)
            self._buffer.append(gap)

    def _flush(self) -> None:
        text = re.sub(r" *\n *", "\n", "".join(self._buffer))
        self._builder.add(re.sub(r"\n{3,}", "\n\n", re.sub(r" {2,}", " ", text)))
        self._buffer.clear()
