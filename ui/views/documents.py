"""Documents: create a collection, upload files into it and watch them being ingested, list
its documents (chunks, ingestion time), delete one, and see why a file could not be ingested.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from ui import session
from ui.client import ApiError, LoragClient
from ui.components.citations import file_name
from ui.components.errors import show_error
from ui.components.jobs import finished_job, follow, is_active, show_job_problems
from ui.schemas import Document, Job
from ui.wording import count

SUFFIXES = ["txt", "md", "markdown", "rst", "html", "htm", "pdf", "docx"]
INGEST_JOB = "ingest_job"
FIRST_COLLECTION = "documents"
CHAT_PAGE = "views/chat.py"


def _create_collection(client: LoragClient, first: bool) -> None:
    """A form that creates a collection and selects it."""
    with st.form("new_collection", border=first):
        if first:
            st.subheader("Create a collection")
            st.caption("A collection holds the documents answers come from; make one to start.")
        name = st.text_input(
            "Collection name",
            value=FIRST_COLLECTION if first else "",
            placeholder="e.g. handbook",
            help="Letters, digits, '_' or '-' (up to 64), starting with a letter or a digit.",
        )
        if not st.form_submit_button("Create collection", icon=":material/add:"):
            return
    try:
        client.create_collection(name.strip())
    except ApiError as error:
        show_error(error)
        return
    session.choose_collection(name.strip())
    st.rerun()


def _upload(client: LoragClient, collection: str) -> None:
    """The upload form; a submitted upload becomes this session's ingest job."""
    with st.form("upload", clear_on_submit=True):
        st.subheader(f"Add documents to {collection}")
        files = st.file_uploader(
            "Files",
            type=SUFFIXES,
            accept_multiple_files=True,
            help="Text, Markdown, reStructuredText, HTML, PDF or Word files. A file uploaded "
            "again replaces its earlier version.",
        )
        if not st.form_submit_button("Upload and ingest", icon=":material/upload:", type="primary"):
            return
    if not files:
        st.warning("Choose one or more files first.", icon=":material/upload_file:")
        return
    try:
        job_id = client.upload(collection, [(file.name, file.getvalue()) for file in files])
    except ApiError as error:
        show_error(error)
        return
    follow(INGEST_JOB, job_id)


def _ingest_outcome(client: LoragClient, collection: str) -> None:
    """Follow this session's ingest job until it ends, then say how it went."""
    job_id = st.session_state.get(INGEST_JOB)
    if job_id is None:
        return
    job = finished_job(client, job_id)
    if job["collection"] != collection:
        return
    result = job["result"]
    if job["status"] == "succeeded" and result is not None:
        done = result["added"] + result["replaced"]
        text = (
            f"Ingested {count(done, 'file')} into **{collection}** "
            f"({result['chunks']} chunks, {result['seconds']:.1f} s)."
        )
        if result["unchanged"]:
            text += f" Skipped {count(result['unchanged'], 'unchanged file')}."
        st.success(text, icon=":material/check_circle:")
        if done:
            st.page_link(CHAT_PAGE, label="Ask about them", icon=":material/forum:")
    show_job_problems(job)


def _document_table(documents: list[Document]) -> None:
    frame = pd.DataFrame(
        {
            "Title": [d["title"] for d in documents],
            "File": [file_name(d["source"]) for d in documents],
            "Chunks": [d["chunk_count"] for d in documents],
            "Ingested": [datetime.fromtimestamp(d["ingested_at"]) for d in documents],
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={"Ingested": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
    )


def _delete_document(client: LoragClient, collection: str, documents: list[Document]) -> None:
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox(
        "Delete a document",
        documents,
        format_func=lambda d: f"{file_name(d['source'])} — {d['title']}",
        index=None,
        placeholder="Choose a document to delete",
    )
    if not right.button("Delete", icon=":material/delete:", disabled=chosen is None):
        return
    assert chosen is not None
    try:
        erasure = client.delete_document(collection, chosen["doc_id"])
    except ApiError as error:
        show_error(error)
        return
    st.toast(f"Deleted {file_name(chosen['source'])}", icon=":material/delete:")
    tainted = erasure["adapters_tainted"]
    if tainted:
        st.toast(
            f"Tainted (trained on it, no longer served): {', '.join(tainted)}. "
            "See the Adapters page.",
            icon=":material/gpp_bad:",
        )
    st.rerun()


def _ingest_history(jobs: list[Job], collection: str) -> None:
    """Earlier uploads to this collection, with the files that failed."""
    ingests = [j for j in jobs if j["kind"] == "ingest" and j["collection"] == collection]
    if not ingests:
        return
    failed = sum(len(job["errors"]) for job in ingests)
    title = f"Upload history ({count(len(ingests), 'upload')}, {count(failed, 'file')} failed)"
    with st.expander(title, icon=":material/history:"):
        for job in ingests:
            when = datetime.fromtimestamp(job["created_at"]).strftime("%Y-%m-%d %H:%M")
            status = "in progress" if is_active(job) else job["status"]
            st.markdown(f"**{when}** — {status}: {job['message']}")
            for problem in job["errors"]:
                st.markdown(f"- `{problem['item']}`: {problem['detail']}")


def _delete_collection(client: LoragClient, collection: str) -> None:
    with st.expander(f"Delete the collection {collection}", icon=":material/warning:"):
        sure = st.checkbox(f"Yes, delete {collection} and all its documents")
        if not st.button("Delete collection", disabled=not sure, type="primary"):
            return
        try:
            client.delete_collection(collection)
        except ApiError as error:
            show_error(error)
            return
        st.rerun()


def main() -> None:
    """The documents page."""
    space = session.workspace()
    client = space.client
    st.title("Documents")
    if space.collection is None:
        st.info("No collection yet: create one, then upload your documents into it.")
        _create_collection(client, first=True)
        return
    collection = space.collection["name"]
    with st.expander("New collection", icon=":material/create_new_folder:"):
        _create_collection(client, first=False)
    _upload(client, collection)
    _ingest_outcome(client, collection)

    documents = client.documents(collection)
    st.subheader(f"{count(len(documents), 'document')} in {collection}")
    if documents:
        _document_table(documents)
        _delete_document(client, collection, documents)
    else:
        st.caption("Nothing here yet: upload files above.")
    _ingest_history(client.jobs(), collection)
    _delete_collection(client, collection)


main()
