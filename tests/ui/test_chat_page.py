"""The chat page against the real API: streamed answers with the model that wrote them,
abstentions said as such, side-by-side base vs adapter, history kept and cleared, empty states
that point to the Documents page, and refusals as readable messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Selectbox

from assistant.conversation import Conversation
from tests.api.conftest import KEYS, QUESTION
from tests.ui.conftest import LiveApi, open_page, texts


def ask(app: AppTest, question: str = QUESTION) -> AppTest:
    app.chat_input[0].set_value(question).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def picker(app: AppTest, label: str) -> Selectbox[Any]:
    return next(box for box in app.sidebar.selectbox if box.label == label)


def test_an_answer_says_which_model_wrote_it_and_when_it_abstains(api: LiveApi) -> None:
    app = open_page()
    assert app.title[0].value == "Ask your documents"
    assert picker(app, "Collection").value == "kb"
    ask(app)
    user, assistant = app.chat_message
    assert user.name == "user" and user.markdown[0].value == QUESTION
    assert assistant.name == "assistant"
    captions = texts(assistant, "caption")
    assert "Answered by the base model from *kb*" in captions
    # The tiny random model's draft is not supported by the sources: lorag withdraws it.
    [warning] = assistant.warning
    assert "No answer from the documents." in warning.value
    assert "not supported by the sources" in warning.value


def test_the_conversation_is_kept_until_cleared(
    api: LiveApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = api.runtime.engine
    asked_with: list[Conversation | None] = []

    def stream(*args: Any) -> Any:
        asked_with.append(args[4] if len(args) > 4 else None)
        return type(engine).stream(engine, *args)

    monkeypatch.setattr(engine, "stream", stream)
    app = open_page()
    ask(app, "What is the hotel limit per night?")
    ask(app, "How many days of leave do employees get?")
    app.run()
    assert [m.name for m in app.chat_message] == ["user", "assistant"] * 2
    first, second = asked_with  # each question is asked with the conversation before it
    assert first is not None and first.turns == ()
    assert second is not None and [t.question for t in second.turns] == [
        "What is the hotel limit per night?"
    ]
    assert second.turns[0].answer == ""  # the first answer was an abstention
    assert app.chat_message[2].markdown[0].value == "How many days of leave do employees get?"
    app.switch_page("views/documents.py").run()
    app.switch_page("views/chat.py").run()
    assert len(app.chat_message) == 4
    clear = next(b for b in app.sidebar.button if b.label == "Clear conversation")
    clear.click().run()
    assert not app.chat_message


def test_base_and_an_adapter_answer_side_by_side(api: LiveApi) -> None:
    app = open_page()
    picker(app, "Answer with").set_value("ops@2").run()
    app.sidebar.toggle[0].set_value(True).run()
    ask(app)
    assistant = app.chat_message[1]
    left, right = assistant.columns
    assert left.markdown[0].value == "**Base model**"
    assert right.markdown[0].value.startswith("**ops@2 · ")  # and its status
    assert "Answered by the base model" in texts(left, "caption")
    assert "Answered by adapter ops@2 from *kb*" in texts(right, "caption")
    # The choice outlives a visit to another page.
    app.switch_page("views/adapters.py").run()
    app.switch_page("views/chat.py").run()
    assert picker(app, "Answer with").value == "ops@2" and app.sidebar.toggle[0].value


def test_comparing_needs_an_adapter(api: LiveApi) -> None:
    app = open_page()
    picker(app, "Answer with").set_value("base").run()
    app.sidebar.toggle[0].set_value(True).run()
    assert "Pick an adapter above" in app.sidebar.warning[0].value
    assert app.chat_input[0].disabled


def test_an_empty_collection_points_to_the_documents_page(api: LiveApi) -> None:
    from ui.client import LoragClient

    LoragClient(api.url, KEYS["admin"][0]).create_collection("chat-empty")
    app = open_page()
    picker(app, "Collection").set_value("chat-empty").run()
    assert "has no documents yet. Upload a document first." in app.info[0].value
    assert app.get("page_link")[0].proto.page.endswith("documents")
    assert app.chat_input[0].disabled


def test_a_first_time_user_is_welcomed_and_sent_to_upload(
    api: LiveApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORAG_UI__API_KEY", KEYS["outsider"][0])  # no collection it can read
    app = open_page()
    assert "Welcome to lorag" in app.info[0].value
    assert "Upload a document first" in app.info[0].value
    assert app.chat_input[0].disabled


def test_a_refused_key_is_a_message_and_a_key_typed_in_the_sidebar_fixes_it(
    api: LiveApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORAG_UI__API_KEY", "wrong-key-0123456789")
    app = open_page()
    assert not app.exception
    [error] = app.error
    assert "The API refused the key (401)" in error.value
    app.sidebar.text_input[0].set_value(KEYS["reader"][0]).run()
    assert not app.error and app.title[0].value == "Ask your documents"
    assert "key: the key entered in the sidebar" in texts(app.sidebar, "caption")


def test_an_api_that_is_down_is_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAG_UI__API_URL", "http://127.0.0.1:9")
    app = open_page()
    assert not app.exception
    assert "cannot be reached" in app.error[0].value and "lorag serve" in app.error[0].value


def test_an_answer_is_rated_and_corrected(api: LiveApi) -> None:
    feedback = api.settings.data_dir / "feedback.jsonl"
    before = feedback.read_text().splitlines() if feedback.is_file() else []
    app = ask(open_page())
    app.feedback[0].set_value(0).run()  # thumbs down
    assert "Thanks: your rating is kept to improve the answers." in [t.value for t in app.toast]
    app.run()  # the same rating is not sent again
    expander = next(e for e in app.expander if e.label == "Correct this answer")
    expander.text_area[0].set_value("The hotel limit is 120 euros per night.")
    next(b for b in app.button if b.label == "Send the correction").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert "Thanks: your correction is kept" in " ".join(t.value for t in app.toast)
    rated = [json.loads(line) for line in feedback.read_text().splitlines()[len(before) :]]
    assert [(r["rating"], r["correction"]) for r in rated] == [
        ("down", None),
        ("down", "The hotel limit is 120 euros per night."),
    ]
    assert rated[0]["question"] == QUESTION and rated[0]["collection"] == "kb"
    assert rated[0]["answer_id"] == rated[1]["answer_id"]
