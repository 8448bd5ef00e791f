"""One answer on the page: its text (or the abstention, said as such), its sources, and a line
saying which model answered from which collection, and how fast."""

from __future__ import annotations

import streamlit as st

from ui.client import LoragClient
from ui.components.citations import show_citations
from ui.schemas import Answer

ABSTAIN_REASONS: dict[str, str] = {
    "weak_retrieval": "No passage in the collection is about the question (too far in meaning, "
    "or it holds too few of the question's words).",
    "model_declined": "The model found that the sources do not answer the question.",
    "unsupported": "The drafted answer was not supported by the sources, so it was withdrawn.",
}


def model_label(answer: Answer) -> str:
    """``NAME@VERSION`` of the adapter that answered, or ``base model``."""
    if answer["adapter"] is None:
        return "base model"
    version = answer["adapter_version"]
    return answer["adapter"] if version is None else f"{answer['adapter']}@{version}"


def show_answer(client: LoragClient, answer: Answer) -> None:
    """The answer, its citations (opened through ``client``) and where it came from."""
    if answer["abstained"]:
        reason = ABSTAIN_REASONS.get(answer["abstain_reason"] or "", "")
        st.warning(
            f"**No answer from the documents.** {answer['answer']}\n\n{reason}".strip(),
            icon=":material/help:",
        )
        show_citations(client, answer["collection"], answer["sources"], closest=True)
    else:
        st.markdown(answer["answer"])
        show_citations(client, answer["collection"], answer["citations"])
    if answer.get("query"):
        st.caption(f"Asked as: *{answer['query']}*")
    seconds = answer["timings"]["total_ms"] / 1000
    who = "the base model" if answer["adapter"] is None else f"adapter {model_label(answer)}"
    st.caption(f"Answered by {who} from *{answer['collection']}* in {seconds:.1f} s")
