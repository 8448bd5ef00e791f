"""reStructuredText (.rst): parsed with docutils; one section per document section.

Parsing is locked down (no file inclusion, no raw passthrough, no config files, no messages
printed). Each section's text is its body elements as plain text; markup errors do not stop
the load, their system messages are left out.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ingestion.loaders.decoding import decode_text
from ingestion.loaders.extracted import Extracted, SectionBuilder

if TYPE_CHECKING:
    from docutils import nodes

_SETTINGS = {
    "report_level": 5,
    "halt_level": 5,
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "doctitle_xform": False,
    "_disable_config": True,
}


def load_rst(data: bytes, source: str) -> Extracted:
    """Sections from the document tree, titled by their nested section titles."""
    from docutils.core import publish_doctree

    settings = {**_SETTINGS, "warning_stream": io.StringIO()}
    doctree = publish_doctree(decode_text(data, source), settings_overrides=settings)
    builder = SectionBuilder()
    _collect(doctree, 1, builder)
    return builder.build(doctree.get("title"))


def _collect(node: nodes.Element, level: int, builder: SectionBuilder) -> None:
    from docutils import nodes

    for child in node.children:
        if isinstance(child, nodes.section):
            title = child.next_node(nodes.title)
            builder.heading(level, title.astext() if title else "")
            _collect(child, level + 1, builder)
        elif not isinstance(child, nodes.title | nodes.Invisible | nodes.system_message):
            builder.add(child.astext())
