"""Rating an answer: thumbs up or down, and a box for the answer it should have given, sent to
the API (``POST /v1/feedback``, by the answer's id), where it is kept for fine-tuning on feedback
(``lorag finetune --from-feedback``). A rating is sent once per change of mind."""

from __future__ import annotations

import streamlit as st

from ui.client import ApiError, LoragClient
from ui.components.errors import show_error
from ui.schemas import Answer

SENT = "_feedback_sent"
"""Session state: the rating last sent for each answer id."""
THUMBS = {0: "down", 1: "up"}


def rate_answer(client: LoragClient, answer: Answer) -> None:
    """Thumbs under ``answer``, and a correction box; each sends its feedback when used."""
    answer_id = answer["answer_id"]
    sent: dict[str, str] = st.session_state.setdefault(SENT, {})
    thumbs = st.feedback("thumbs", key=f"thumbs-{answer_id}")
    rating = THUMBS.get(thumbs) if thumbs is not None else None
    if rating is not None and sent.get(answer_id) != rating and _send(client, answer_id, rating):
        sent[answer_id] = rating
        st.toast("Thanks: your rating is kept to improve the answers.")
    with (
        st.expander("Correct this answer", icon=":material/edit_note:"),
        st.form(f"correction-{answer_id}", clear_on_submit=True, border=False),
    ):
        text = st.text_area(
            "The answer it should have given",
            help="Kept with the question and its sources; fine-tuning on feedback learns it.",
        )
        if not st.form_submit_button("Send the correction", icon=":material/send:"):
            return
    if not text.strip():
        st.warning("Write the answer it should have given first.")
    elif _send(client, answer_id, "down", text.strip()):
        sent[answer_id] = "down"
        st.toast("Thanks: your correction is kept to improve the answers.")


def _send(client: LoragClient, answer_id: str, rating: str, correction: str | None = None) -> bool:
    """Send one rating; a refusal is shown on the page (``False``)."""
    try:
        client.feedback(answer_id, rating, correction)
    except ApiError as error:
        show_error(error)
        return False
    return True
