"""lorag's browser UI: the script ``streamlit run ui/app.py`` runs (``lorag ui`` starts it).

Each run sets the page up and runs the chosen page of ``views/``: Chat, Documents, Adapters or
Batch (not ``pages/``: Streamlit would serve a file there on its own, without this script, when
its URL is opened directly). Each page starts with the shared sidebar
(:func:`ui.session.workspace`). The UI is a thin HTTP client of the lorag API (``docs/api.md``),
so it shows exactly what API users get; an API error a page does not handle itself is shown as
a readable message, never as a traceback.
"""

from __future__ import annotations

import streamlit as st
from pydantic import ValidationError

from ui.client import ApiError
from ui.components.errors import show_error


def _pages() -> list[st.Page]:
    return [
        st.Page("views/chat.py", title="Chat", icon=":material/forum:", default=True),
        st.Page("views/documents.py", title="Documents", icon=":material/folder_open:"),
        st.Page("views/adapters.py", title="Adapters", icon=":material/tune:"),
        st.Page("views/batch.py", title="Batch questions", icon=":material/checklist:"),
    ]


def main() -> None:
    """Run the chosen page, showing what went wrong when the API refuses or fails."""
    st.set_page_config(page_title="lorag", page_icon=":material/forum:", layout="wide")
    page = st.navigation(_pages())
    try:
        page.run()
    except ApiError as error:
        show_error(error)
    except ValidationError as error:
        st.error(f"The UI's settings are invalid: {error}", icon=":material/error:")


main()
