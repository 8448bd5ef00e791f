"""What one browser session keeps, and the sidebar every page starts with.

The API's URL and key come from settings, read when a page runs (``LORAG_UI__API_URL`` and
``LORAG_UI__API_KEY``, see :class:`~assistant.core.settings.UiSettings`; unset URL = the local
``lorag serve`` address). A key typed under *Connection* in the sidebar replaces the configured
one for this session only. The collection picked in the sidebar is shared by every page.

Streamlit forgets a widget's value when the page changes, so values that should outlive a page
are kept under a name of their own (:func:`kept`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from assistant.core.settings import load_settings
from ui.client import LoragClient
from ui.endpoint import api_url
from ui.schemas import Collection
from ui.wording import count

API_KEY = "api_key"
COLLECTION = "collection"
_CLIENT = "_client"
_PENDING_COLLECTION = "_pending_collection"


@dataclass(frozen=True)
class Connection:
    """Where the API is and how this session signs its requests."""

    url: str
    key: str | None
    key_source: str
    timeout_s: float
    default_collection: str


@dataclass(frozen=True)
class Workspace:
    """What a page works with: the client, the collections, the chosen one, and the sidebar
    space for the page's own controls."""

    client: LoragClient
    collections: list[Collection]
    collection: Collection | None
    controls: DeltaGenerator


def connection() -> Connection:
    """This session's connection: settings, with the key typed in the sidebar if any."""
    settings = load_settings()
    typed = st.session_state.get(API_KEY) or None
    configured = settings.ui.api_key.get_secret_value() if settings.ui.api_key else None
    if typed:
        key, source = typed, "the key entered in the sidebar"
    elif configured:
        key, source = configured, "LORAG_UI__API_KEY"
    else:
        key, source = None, "none"
    return Connection(api_url(settings), key, source, settings.ui.timeout_s, settings.collection)


def client(current: Connection) -> LoragClient:
    """This session's API client for ``current`` (rebuilt when the URL or the key changes)."""
    signature = (current.url, current.key, current.timeout_s)
    cached = st.session_state.get(_CLIENT)
    if cached is not None and cached[0] == signature:
        found: LoragClient = cached[1]
        return found
    if cached is not None:
        cached[1].close()
    made = LoragClient(current.url, current.key, current.timeout_s)
    st.session_state[_CLIENT] = (signature, made)
    return made


def workspace() -> Workspace:
    """Start a page: connect, list the collections, draw the sidebar (the collection picker,
    a space for the page's controls, the connection panel)."""
    sidebar = st.sidebar
    picker, controls, panel = sidebar.container(), sidebar.container(), sidebar.container()
    current = connection()
    _connection_panel(panel, current)
    api = client(current)
    collections = api.collections()
    chosen = _pick_collection(picker, collections, current.default_collection)
    return Workspace(api, collections, collection_info(collections, chosen), controls)


def choose_collection(name: str) -> None:
    """Select ``name`` in the sidebar from the next run on."""
    st.session_state[_PENDING_COLLECTION] = name


def collection_info(collections: list[Collection], name: str | None) -> Collection | None:
    """The listed collection called ``name``."""
    return next((c for c in collections if c["name"] == name), None)


def kept(name: str, options: Sequence[object] | None = None) -> dict[str, Any]:
    """Keyword arguments for a widget whose value is kept under ``name`` across pages (and put
    back when the page comes again, if it is still one of ``options``)."""
    widget = _widget(name)
    if widget not in st.session_state and name in st.session_state:
        value = st.session_state[name]
        if options is None or value in options:
            st.session_state[widget] = value
    return {"key": widget, "on_change": _keep, "args": (name,)}


def _widget(name: str) -> str:
    return f"_widget_{name}"


def _keep(name: str) -> None:
    st.session_state[name] = st.session_state[_widget(name)]


def _pick_collection(
    where: DeltaGenerator, collections: list[Collection], default: str
) -> str | None:
    names = [c["name"] for c in collections]
    if not names:
        return None
    pending = st.session_state.pop(_PENDING_COLLECTION, None)
    if pending in names:
        st.session_state[COLLECTION] = st.session_state[_widget(COLLECTION)] = pending
    if st.session_state.get(COLLECTION) not in names:
        st.session_state[COLLECTION] = default if default in names else names[0]
    if st.session_state.get(_widget(COLLECTION), names[0]) not in names:  # deleted meanwhile
        del st.session_state[_widget(COLLECTION)]
    chosen: str = where.selectbox(
        "Collection",
        names,
        help="The set of documents answers come from. Every page works on this collection.",
        **kept(COLLECTION, names),
    )
    st.session_state[COLLECTION] = chosen
    where.caption(_summary(collections[names.index(chosen)]))
    return chosen


def _connection_panel(where: DeltaGenerator, current: Connection) -> None:
    with where.expander("Connection", icon=":material/key:"):
        st.caption(f"API `{current.url}` · key: {current.key_source}")
        st.text_input(
            "API key",
            type="password",
            help="Replaces LORAG_UI__API_KEY for this browser session only.",
            **kept(API_KEY),
        )


def _summary(collection: Collection) -> str:
    text = f"{count(collection['documents'], 'document')} · {count(collection['chunks'], 'chunk')}"
    if collection["adapter"]:
        text += f" · answers with adapter {collection['adapter']}"
    return text
