"""Background jobs on the page: follow one live (progress bar, and the loss curve of a
fine-tuning run), then show how it ended, with the problem of each file or row that failed.

Following polls ``GET /v1/jobs/{id}`` until the job ends, then runs the page once more, so that
everything the page lists (the sidebar's document counts too) is read after the job's end. The
page's script waits meanwhile; if the user does something else the wait stops, the job goes on
in the API, and the page picks it up again at its next run (it keeps the job's id in the
session).
"""

from __future__ import annotations

import time
from typing import NoReturn

import pandas as pd
import streamlit as st

from ui.client import LoragClient
from ui.schemas import ACTIVE_STATUSES, Job, LossPoint

POLL_S = 0.5
_UNSEEN_ENDS = "_jobs_to_refresh"


def is_active(job: Job) -> bool:
    """The job is queued or running."""
    return job["status"] in ACTIVE_STATUSES


def follow(key: str, job_id: str) -> NoReturn:
    """Keep ``job_id`` as this session's job under ``key`` and run the page again to follow it."""
    st.session_state[key] = job_id
    st.session_state.setdefault(_UNSEEN_ENDS, set()).add(job_id)
    st.rerun()


def finished_job(client: LoragClient, job_id: str, *, losses: bool = False) -> Job:
    """The job once it has ended. A job still going is followed live (progress bar, and its loss
    curve when ``losses``); the first time its end is seen, the page runs again."""
    job = client.job(job_id)
    if is_active(job):
        bar = st.progress(job["progress"], text=_progress_text(job))
        chart = st.empty() if losses else None
        while is_active(job):
            time.sleep(POLL_S)
            job = client.job(job_id)
            bar.progress(job["progress"], text=_progress_text(job))
            if chart is not None and job["losses"]:
                with chart.container():
                    show_losses(job["losses"], "Training loss (live)")
    unseen: set[str] = st.session_state.get(_UNSEEN_ENDS, set())
    if job_id in unseen:
        unseen.discard(job_id)
        st.rerun()
    return job


def show_losses(points: list[LossPoint], title: str) -> None:
    """A loss curve over optimiser steps."""
    st.markdown(f"**{title}**")
    frame = pd.DataFrame(points, columns=["step", "loss"]).set_index("step")
    st.line_chart(frame, x_label="step", y_label="loss", height=220)


def show_job_problems(job: Job) -> None:
    """Why the job failed (if it did) and the problem of each item that failed."""
    if job["status"] == "failed":
        st.error(f"The job failed: {job['message']}", icon=":material/error:")
    elif job["status"] == "cancelled":
        st.warning("The job was cancelled.", icon=":material/cancel:")
    for problem in job["errors"]:
        st.error(f"**{problem['item']}**: {problem['detail']}", icon=":material/warning:")


def _progress_text(job: Job) -> str:
    status = "Waiting for its turn" if job["status"] == "queued" else "Working"
    detail = f" — {job['message']}" if job["message"] else ""
    return f"{status}: {job['progress']:.0%}{detail}"
