"""The sources under an answer: one expandable entry per citation, with its file and page or
heading, the passage highlighted in the text around it, and a button that opens the original."""

from __future__ import annotations

import html
import mimetypes
import uuid
from pathlib import PurePath

import streamlit as st

from ui.client import ApiError, LoragClient
from ui.schemas import Citation, Passage
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


def show_citations(
    client: LoragClient, collection: str, citations: list[Citation], closest: bool = False
) -> None:
    """The sources an answer rests on (or, ``closest``, the passages found nearest to a question
    the documents did not answer), each expandable to its passage, highlighted in the text
    around it, with a button that opens the document's original file."""
    if not citations:
        return
    if closest:
        nearest = count(len(citations), "passage")
        st.caption(f"Nearest to the question: {nearest}; open one to read it")
    else:
        st.caption(f"{count(len(citations), 'source')}: open one to see the passage")
    for citation in citations:
        with st.expander(citation_label(citation), icon=":material/description:"):
            _show_source(client, collection, citation)


def _show_source(client: LoragClient, collection: str, citation: Citation) -> None:
    try:
        passage = client.passage(collection, citation["doc_id"], citation["chunk_id"])
    except ApiError as failure:  # the document was deleted since, or the API is older
        st.markdown(_quote(citation["snippet"]))
        st.caption(failure.message)
        return
    st.html(in_context(passage))
    details = [f"File `{citation['source']}`"]
    if citation["title"] and citation["title"] != file_name(citation["source"]):
        details.append(f"document *{citation['title']}*")
    details.append(f"similarity {citation['similarity']:.2f}")
    st.caption(" · ".join(details))
    if passage["file_problem"]:
        st.caption(f"The original cannot be opened: {passage['file_problem']}")
        return
    where = f", page {citation['page']}" if citation["page"] is not None else ""
    st.download_button(
        f"Open {file_name(citation['source'])}{where}",
        data=lambda: client.original(passage).content,
        file_name=file_name(citation["source"]),
        mime=mimetypes.guess_type(citation["source"])[0] or "application/octet-stream",
        on_click="ignore",
        icon=":material/open_in_new:",
        key=f"open-{citation['chunk_id']}-{citation['n']}-{uuid.uuid4().hex[:8]}",
    )


def in_context(passage: Passage) -> str:
    """The passage highlighted (``<mark>``) between the text before and after it, as HTML."""
    parts = (
        html.escape(passage["before"]),
        f"<mark>{html.escape(passage['passage'])}</mark>",
        html.escape(passage["after"]),
    )
    return f'<div style="white-space: pre-wrap; line-height: 1.5">{"".join(parts)}</div>'


def _quote(text: str) -> str:
    """``text`` as a Markdown block quote, line by line."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())
