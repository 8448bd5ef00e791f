"""The sources under an answer: one expandable entry per citation, with its snippet, file and
page or heading."""

from __future__ import annotations

from pathlib import PurePath

import streamlit as st

from ui.schemas import Citation
from ui.wording import count


def file_name(source: str) -> str:
    """The file name of a document's source path (POSIX or Windows)."""
    return PurePath(source.replace("\\", "/")).name or source


def citation_label(citation: Citation) -> str:
    """``[n] file — page p · heading``: what the expander's header says."""
    where = []
    if citation["page"] is not None:
        where.append(f"page {citation['page']}")
    if citation["heading"]:
        where.append(citation["heading"])
    label = f"[{citation['n']}] {file_name(citation['source'])}"
    return f"{label} — {' · '.join(where)}" if where else label


def show_citations(citations: list[Citation], closest: bool = False) -> None:
    """The sources an answer rests on (or, ``closest``, the passages found nearest to a question
    the documents did not answer), each expandable to its passage."""
    if not citations:
        return
    if closest:
        nearest = count(len(citations), "passage")
        st.caption(f"Nearest to the question: {nearest}; open one to read it")
    else:
        st.caption(f"{count(len(citations), 'source')}: open one to see the passage")
    for citation in citations:
        with st.expander(citation_label(citation), icon=":material/description:"):
            st.markdown(_quote(citation["snippet"]))
            details = [f"File `{citation['source']}`"]
            if citation["title"] and citation["title"] != file_name(citation["source"]):
                details.append(f"document *{citation['title']}*")
            details.append(f"similarity {citation['similarity']:.2f}")
            st.caption(" · ".join(details))


def _quote(text: str) -> str:
    """``text`` as a Markdown block quote, line by line."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())
