"""reStructuredText (.rst): parsed with docutils; one section per document section.

Sphinx's markup is read as Sphinx shows it (see :mod:`ingestion.loaders.sphinx`): directives
and roles docutils does not know keep their text, and each described object
(``.. c:function:: PyObject* PyList_New(Py_ssize_t len)``, ``.. py:function:: spam(eggs)``)
and glossary entry is a section of its own, headed by its signature or terms under the
enclosing section's heading.

Parsing is locked down (no file inclusion, no raw passthrough, no config files, no messages
printed). Each section's text is its body elements as plain text, without comments; markup
errors do not stop the load, their system messages are left out.
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
    "syntax_highlight": "none",
    "_disable_config": True,
}


def load_rst(data: bytes, source: str) -> Extracted:
    """Sections from the document tree, headed by their nested section titles; the title is the
    first section's (a signature is not a title)."""
    from docutils import nodes
    from docutils.core import publish_doctree

    from ingestion.loaders.sphinx import SphinxParser

    settings = {**_SETTINGS, "warning_stream": io.StringIO()}
    doctree = publish_doctree(
        decode_text(data, source), parser=SphinxParser(), settings_overrides=settings
    )
    hidden = doctree.findall(lambda node: isinstance(node, nodes.system_message | nodes.comment))
    for node in list(hidden):
        node.parent.remove(node)
    builder = SectionBuilder()
    _collect(doctree, 1, builder)
    first = doctree.next_node(nodes.section)
    title = doctree.get("title") or (_title(first) if first is not None else None)
    return Extracted(title, builder.build().sections)


def _collect(node: nodes.Element, level: int, builder: SectionBuilder) -> None:
    from docutils import nodes

    from ingestion.loaders.sphinx import Description

    for child in node.children:
        if isinstance(child, nodes.section):
            builder.heading(level, _title(child))
            _collect(child, level + 1, builder)
        elif isinstance(child, Description):
            builder.heading(level, child["heading"])
            _collect(child, level + 1, builder)
            builder.end(level)
        elif not isinstance(child, nodes.title | nodes.Invisible):
            builder.add(child.astext())


def _title(section: nodes.section) -> str:
    from docutils import nodes

    title = section.next_node(nodes.title)
    return title.astext() if title else ""
