"""Markdown (.md, .markdown): one section per heading, with the Markdown source kept as text.

The file is parsed with markdown-it-py (CommonMark), so ATX (``# Title``) and setext
(``Title`` underlined) headings are found and a ``#`` inside a fenced code block or an indented
block is not one. Only top-level headings cut sections (a heading inside a list or quote stays
text). A YAML front-matter block (``---`` … ``---``) is dropped; its ``title:`` is the title.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ingestion.loaders.decoding import decode_text
from ingestion.loaders.extracted import Extracted, SectionBuilder

if TYPE_CHECKING:
    from markdown_it.token import Token

_FRONT_MATTER_TITLE = re.compile(r"""^title:\s*(?P<q>["']?)(?P<title>.*?)(?P=q)\s*$""")


def load_markdown(data: bytes, source: str) -> Extracted:
    """Sections cut at top-level headings; the heading lines themselves are not in the text."""
    from markdown_it import MarkdownIt

    lines = decode_text(data, source).split("\n")
    title, front_matter_end = _front_matter(lines)
    lines[:front_matter_end] = [""] * front_matter_end  # keep line numbers for the parser
    tokens = MarkdownIt("commonmark").parse("\n".join(lines))
    builder = SectionBuilder()
    body_start = 0
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or token.level != 0 or token.map is None:
            continue
        heading_start, heading_end = token.map
        builder.add("\n".join(lines[body_start:heading_start]))
        builder.heading(int(token.tag[1:]), _inline_text(tokens[index + 1]))
        body_start = heading_end
    builder.add("\n".join(lines[body_start:]))
    return builder.build(title)


def _front_matter(lines: list[str]) -> tuple[str | None, int]:
    """The front matter's title and the number of lines it spans (0 if there is none)."""
    if not lines or lines[0].strip() != "---":
        return None, 0
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            block = lines[1:end]
            titles = (m["title"] for m in map(_FRONT_MATTER_TITLE.match, block) if m)
            return next(titles, None), end + 1
    return None, 0


def _inline_text(inline: Token) -> str:
    """A heading's text without Markdown markup (links, emphasis, code spans)."""
    children = inline.children or []
    return "".join(
        child.content or (" " if child.type.endswith("break") else "") for child in children
    )
