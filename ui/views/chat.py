"""Chat: ask the chosen collection and read the answer as it is written, with its sources.

The sidebar picks what answers (the collection's default, the base model, an adapter or one of
its versions) and can put the base model and that adapter side by side on the same question.
The conversation is kept in the session until *Clear conversation*, and each question is asked
with it: a follow-up ("which port does it use?") is rewritten by lorag to stand alone, and shown
under its answer as what was searched for. Side by side, each model keeps its own conversation.
Each answer can be rated (thumbs, and a box for the right answer: :mod:`ui.components.feedback`).
A collection without documents says so, and points to the Documents page.
"""

from __future__ import annotations

from typing import TypedDict

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from ui import session
from ui.client import ApiError, LoragClient, StreamDone
from ui.components.adapter_choice import BASE, choice_label, pick_adapter
from ui.components.answer import show_answer
from ui.components.feedback import rate_answer
from ui.schemas import Adapter, Answer
from ui.wording import count

HISTORY = "chat_history"
DOCUMENTS_PAGE = "views/documents.py"


class Reply(TypedDict):
    """One model's reply: its answer, or the error that stopped it."""

    label: str | None
    answer: Answer | None
    error: str | None


class Message(TypedDict):
    """A turn of the conversation: the user's question, or the replies to it."""

    role: str
    question: str
    replies: list[Reply]


def _history() -> list[Message]:
    history: list[Message] = st.session_state.setdefault(HISTORY, [])
    return history


def _conversation(column: int) -> list[tuple[str, str]]:
    """The earlier (question, answer) pairs of the model in ``column`` (an abstention or an
    error as an empty answer)."""
    pairs = []
    for message in _history():
        if message["role"] != "assistant" or not message["replies"]:
            continue
        replies = message["replies"]
        answer = replies[min(column, len(replies) - 1)]["answer"]
        said = answer["answer"] if answer and not answer["abstained"] else ""
        pairs.append((message["question"], said))
    return pairs


def _empty_state(name: str | None) -> None:
    if name is None:
        text = (
            "**Welcome to lorag.** Answers come from your own documents, with the passages "
            "they rest on. Upload a document first, then ask about it here."
        )
    else:
        text = f"The collection **{name}** has no documents yet. Upload a document first."
    st.info(text, icon=":material/upload_file:")
    st.page_link(DOCUMENTS_PAGE, label="Upload documents", icon=":material/upload:")


def _show_outcome(client: LoragClient, answer: Answer | None, error: str | None) -> None:
    if answer is not None:
        show_answer(client, answer)
        rate_answer(client, answer)
    else:
        st.error(error or "No answer came back.", icon=":material/error:")


def _show_reply(client: LoragClient, reply: Reply) -> None:
    if reply["label"]:
        st.markdown(f"**{reply['label']}**")
    _show_outcome(client, reply["answer"], reply["error"])


def _show_message(client: LoragClient, message: Message) -> None:
    with st.chat_message(message["role"]):
        if message["role"] == "user":
            st.markdown(message["question"])
            return
        replies = message["replies"]
        if len(replies) == 1:
            _show_reply(client, replies[0])
            return
        for column, reply in zip(st.columns(len(replies)), replies, strict=True):
            with column:
                _show_reply(client, reply)


def _stream_reply(
    client: LoragClient,
    question: str,
    collection: str,
    target: tuple[str | None, str | None],
    history: list[tuple[str, str]],
) -> Reply:
    """Ask, showing the draft as it streams; then show the finished answer in its place."""
    adapter, label = target
    if label:
        st.markdown(f"**{label}**")
    slot = st.empty()
    slot.markdown(":gray[Searching the documents…]")
    draft = ""
    answer: Answer | None = None
    error: str | None = "The answer stream ended before the answer was complete."
    try:
        for event in client.ask_stream(question, collection, adapter, history):
            if isinstance(event, StreamDone):
                answer, error = event.answer, None
            else:
                draft += event.text
                slot.markdown(draft + " ▌")
    except ApiError as failure:
        error = failure.message
    with slot.container():
        _show_outcome(client, answer, error)
    return Reply(label=label, answer=answer, error=error)


def _targets(
    controls: DeltaGenerator, adapters: list[Adapter], bound: str | None
) -> list[tuple[str | None, str | None]] | None:
    """The (adapter, label) pairs each question goes to; ``None`` when the sidebar's choice
    cannot be compared with the base model."""
    controls.subheader("Answering")
    choice = pick_adapter(
        controls,
        adapters,
        bound,
        name="chat_adapter",
        help="An adapter is the base model specialised to your domain (see Adapters).",
    )
    compare = controls.toggle(
        "Compare with the base model",
        disabled=not adapters,
        help="Ask the base model and the chosen adapter the same question, side by side.",
        **session.kept("chat_compare"),
    )
    if not compare:
        return [(choice, None)]
    if choice == BASE or (choice is None and bound is None):
        controls.warning("Pick an adapter above to compare it with the base model.")
        return None
    return [(BASE, "Base model"), (choice, choice_label(choice, adapters, bound))]


def _conversation_controls(controls: DeltaGenerator) -> None:
    history = _history()
    if controls.button("Clear conversation", icon=":material/delete_sweep:", disabled=not history):
        history.clear()


def main() -> None:
    """The chat page."""
    space = session.workspace()
    client, info = space.client, space.collection
    bound = info["adapter"] if info else None
    targets = _targets(space.controls, client.adapters(), bound)
    _conversation_controls(space.controls)

    st.title("Ask your documents")
    ready = info is not None and info["documents"] > 0
    if info is not None:
        st.caption(
            f"Answers come from the {count(info['documents'], 'document')} of "
            f"**{info['name']}**, with the passages they rest on."
        )
    if not ready:
        _empty_state(info["name"] if info else None)
    for message in _history():
        _show_message(client, message)

    question = st.chat_input(
        "Ask a question about your documents" if ready else "Upload a document first",
        disabled=not ready or targets is None,
    )
    if not question or info is None or targets is None:
        return
    name = info["name"]
    user = Message(role="user", question=question, replies=[])
    _show_message(client, user)
    with st.chat_message("assistant"):
        if len(targets) == 1:
            replies = [_stream_reply(client, question, name, targets[0], _conversation(0))]
        else:
            replies = []
            for i, (column, target) in enumerate(zip(st.columns(2), targets, strict=True)):
                with column:
                    replies.append(_stream_reply(client, question, name, target, _conversation(i)))
    _history().extend([user, Message(role="assistant", question=question, replies=replies)])


main()
