"""Batch questions: upload a file of questions, watch them being answered from the chosen
collection by the chosen model (the collection's default, the base model or an adapter), and
download the answers in the same format (CSV, JSONL or XLSX), each row naming that model."""

from __future__ import annotations

import streamlit as st

from ui import session
from ui.client import ApiError, Download, LoragClient
from ui.components.adapter_choice import BASE, pick_adapter
from ui.components.errors import show_error
from ui.components.jobs import finished_job, follow, show_job_problems
from ui.schemas import Collection

BATCH_JOB = "batch_job"
DOWNLOADED = "batch_download"
DOCUMENTS_PAGE = "views/documents.py"
COUNTS = (
    ("Rows", "rows"),
    ("Answered", "answered"),
    ("Abstained", "abstained"),
    ("Failed", "failed"),
)


def _start(client: LoragClient, collection: Collection) -> None:
    adapter = pick_adapter(
        st.container(),
        client.adapters(),
        collection["adapter"],
        name="batch_adapter",
        help="Which model answers every question.",
    )
    with st.form("batch", clear_on_submit=True):
        questions = st.file_uploader(
            "Questions file",
            type=["csv", "jsonl", "xlsx"],
            help="A `question` column (CSV, XLSX) or field (JSONL); other columns are kept.",
        )
        if not st.form_submit_button("Answer them", icon=":material/play_arrow:", type="primary"):
            return
    if questions is None:
        st.warning("Choose a questions file first.", icon=":material/upload_file:")
        return
    try:
        job_id = client.batch(
            (questions.name, questions.getvalue()), collection["name"], adapter=adapter
        )
    except ApiError as error:
        show_error(error)
        return
    st.session_state.pop(DOWNLOADED, None)
    follow(BATCH_JOB, job_id)


def _answers(client: LoragClient, job_id: str) -> Download:
    """The answers file, fetched once per job and kept for the download button."""
    kept = st.session_state.get(DOWNLOADED)
    if kept is None or kept[0] != job_id:
        kept = (job_id, client.download_answers(job_id))
        st.session_state[DOWNLOADED] = kept
    answers: Download = kept[1]
    return answers


def _outcome(client: LoragClient) -> None:
    job_id = st.session_state.get(BATCH_JOB)
    if job_id is None:
        return
    job = finished_job(client, job_id)
    result = job["result"]
    if job["status"] == "succeeded" and result is not None:
        who = "the base model" if result["adapter"] == BASE else f"adapter {result['adapter']}"
        st.success(f"Answered the questions of **{job['collection']}** by {who}.")
        for column, (label, key) in zip(st.columns(len(COUNTS)), COUNTS, strict=True):
            column.metric(label, result[key])
        answers = _answers(client, job_id)
        st.download_button(
            f"Download {answers.filename}",
            answers.content,
            file_name=answers.filename,
            mime=answers.media_type,
            icon=":material/download:",
            type="primary",
        )
    show_job_problems(job)


def main() -> None:
    """The batch page."""
    space = session.workspace()
    client, info = space.client, space.collection
    st.title("Batch questions")
    st.caption(
        "Answer a whole file of questions at once: every row gets its answer and its sources, "
        "in a file of the same format."
    )
    if info is None or info["documents"] == 0:
        st.info("Upload a document first: answers come from a collection's documents.")
        st.page_link(DOCUMENTS_PAGE, label="Upload documents", icon=":material/upload:")
        return
    _start(client, info)
    _outcome(client)


main()
