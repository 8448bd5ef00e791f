"""``POST /v1/ask``: an answer with citations, whole or streamed as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from assistant.api.answering import Answered, ask_response
from assistant.api.auth import Caller
from assistant.api.errors import stream_failure
from assistant.api.routes.sse import event_stream, frame
from assistant.api.schemas import ERROR_RESPONSES, AskRequest, AskResponse, streamed_200
from assistant.api.services import ServicesDep
from assistant.conversation import Conversation, Turn
from assistant.engine import Token

STREAMED = streamed_200(
    ["token", "done", "error"],
    "With `stream`: `token` events, then `done` (the JSON body) or `error`.",
)
router = APIRouter(tags=["asking"], responses=ERROR_RESPONSES)


@router.post("/v1/ask", response_model=AskResponse, responses=STREAMED)
async def ask(body: AskRequest, caller: Caller, request: Request, services: ServicesDep) -> Any:
    """Answer a question from a collection. With ``stream``: ``event: token`` frames
    (``{"text"}``), then ``event: done`` with this route's JSON body, or ``event: error``
    (``{"detail"}``)."""
    answering = services.answering
    question = await run_in_threadpool(  # reads the store and the registry
        answering.question,
        caller,
        text=body.question,
        collection=body.collection,
        adapter=body.adapter,
        top_k=body.top_k,
        max_new_tokens=body.max_new_tokens,
        conversation=Conversation(turns=tuple(Turn(t.question, t.answer) for t in body.history)),
        closed_book=body.no_retrieval,
    )
    request_id: str = request.state.request_id
    if not body.stream:
        return ask_response(await answering.answer(question, caller, request_id))
    return event_stream(_frames(answering.open_stream(question, caller, request_id), request_id))


async def _frames(
    events: AsyncGenerator[Token | Answered, None], request_id: str
) -> AsyncIterator[str]:
    try:
        async with aclosing(events):
            async for item in events:
                if isinstance(item, Token):
                    yield frame({"text": item.text}, "token")
                else:
                    yield frame(ask_response(item), "done")
    except Exception as error:
        yield frame({"detail": stream_failure(error, request_id)}, "error")
