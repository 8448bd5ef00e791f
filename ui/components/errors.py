"""API errors on the page: one readable message, never a traceback."""

from __future__ import annotations

import streamlit as st

from ui.client import ApiError


def show_error(error: ApiError) -> None:
    """Show what went wrong and what to do about it."""
    st.error(error.message, icon=":material/error:")
