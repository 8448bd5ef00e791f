"""How an OpenAI chat becomes a question and a conversation, and what ``model`` selects."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from assistant.api.routes.openai_compat import conversation_of
from assistant.api.schemas import ChatMessage
from assistant.conversation import Conversation, Turn


def _chat(*pairs: tuple[str, object]) -> list[ChatMessage]:
    return [ChatMessage(role=role, content=content) for role, content in pairs]  # type: ignore[arg-type]


def test_the_last_user_message_is_the_question_and_the_ones_before_are_turns() -> None:
    question, conversation = conversation_of(
        _chat(
            ("system", "Be brief."),
            ("user", "Which command starts the API?"),
            ("assistant", "lorag serve"),
            (
                "user",
                [{"type": "text", "text": "Which port"}, {"type": "text", "text": "does it use?"}],
            ),
        )
    )
    assert question == "Which port does it use?"
    assert conversation == Conversation(
        turns=(Turn("Which command starts the API?", "lorag serve"),), instructions="Be brief."
    )


def test_unanswered_questions_and_trailing_messages_keep_their_place() -> None:
    question, conversation = conversation_of(
        _chat(
            ("user", "first"),
            ("user", "second"),
            ("assistant", "answer to second"),
            ("tool", "ignored"),
            ("user", "third"),
            ("assistant", "a draft after the question"),
            ("developer", "Answer in German."),
        )
    )
    assert question == "third"
    assert conversation.turns == (Turn("first", ""), Turn("second", "answer to second"))
    assert conversation.instructions == "Answer in German."


def test_a_chat_without_a_user_message_is_refused() -> None:
    with pytest.raises(HTTPException) as refused:
        conversation_of(_chat(("system", "Be brief."), ("assistant", "hello")))
    assert refused.value.status_code == 422
