"""OpenAI-compatible ``POST /v1/chat/completions`` and ``GET /v1/models``.

``model`` is ``lorag`` (the base model) or an adapter (``NAME``: its promoted version, or
``NAME@VERSION``). The last user message is the question, answered from the extra body field
``collection``, else the collection the adapter is bound to, else the collection setting;
earlier messages and system prompts are not used (retrieval and the prompt template decide the
context). The response carries the extra fields ``citations``, ``abstained`` and ``collection``;
a stream ends with a chunk carrying them, then ``data: [DONE]``. When lorag withdraws a streamed
draft that the sources do not support, a last content delta says so and gives the abstention.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from assistant.api.answering import Answered, Question, citation_out
from assistant.api.auth import Caller
from assistant.api.errors import stream_failure
from assistant.api.routes.sse import event_stream, frame
from assistant.api.schemas import (
    ERROR_RESPONSES,
    ChatCompletion,
    ChatMessage,
    ChatRequest,
    ModelCard,
    ModelList,
    streamed_200,
)
from assistant.api.services import Services, ServicesDep
from assistant.core.errors import AdapterError
from assistant.core.registry import parse_ref
from assistant.engine import Token

STREAMED = streamed_200(None, "With `stream`: OpenAI chunks, then `[DONE]`.")
router = APIRouter(tags=["openai"], responses=ERROR_RESPONSES)

BASE_MODEL = "lorag"
WITHDRAWN = "\n\n(lorag: the draft above is not supported by the documents and is withdrawn.) "


@router.get("/v1/models", response_model=ModelList)
def models(caller: Caller, services: ServicesDep) -> Any:
    """``lorag`` and every adapter, by name (its promoted version) and by ``NAME@VERSION``."""
    cards = [ModelCard(id=BASE_MODEL, created=int(services.started_at))]
    seen: set[str] = set()
    for record in services.runtime.registry.list():
        created = int(datetime.fromisoformat(record.created).timestamp())
        if record.name not in seen:
            seen.add(record.name)
            cards.append(ModelCard(id=record.name, created=created))
        cards.append(ModelCard(id=record.ref, created=created))
    return ModelList(data=cards)


@router.post("/v1/chat/completions", response_model=ChatCompletion, responses=STREAMED)
async def chat_completions(
    body: ChatRequest, caller: Caller, request: Request, services: ServicesDep
) -> Any:
    """Answer the last user message with retrieval over a collection, as OpenAI's API does."""
    question = await run_in_threadpool(  # reads the store and the registry
        services.answering.question,
        caller,
        text=_last_user_text(body.messages),
        collection=body.collection or _bound_collection(services, body.model),
        adapter="base" if body.model == BASE_MODEL else body.model,
        top_k=body.top_k,
        max_new_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
    )
    request_id: str = request.state.request_id
    reply = _Reply(services, body.model, question)
    if not body.stream:
        return reply.completion(await services.answering.answer(question, caller, request_id))
    events = services.answering.open_stream(question, caller, request_id)
    return event_stream(reply.chunks(events, request_id))


def _last_user_text(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role != "user":
            continue
        if isinstance(message.content, list):
            return " ".join(
                str(part.get("text", "")) for part in message.content if part.get("type") == "text"
            )
        return message.content or ""
    raise HTTPException(422, "messages: no user message to answer")


def _bound_collection(services: Services, model: str) -> str | None:
    """The collection an adapter is bound to (the first, by name), for a request naming none."""
    if model == BASE_MODEL:
        return None
    try:
        name, _ = parse_ref(model)
    except AdapterError:
        return None
    bound = services.runtime.registry.bindings()
    return next((c for c, ref in sorted(bound.items()) if parse_ref(ref)[0] == name), None)


class _Reply:
    """The OpenAI-shaped response to one request: a completion, or its stream of chunks."""

    def __init__(self, services: Services, model: str, question: Question) -> None:
        self.model = model
        self.question = question
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.count_tokens = services.runtime.generator.count_tokens

    def completion(self, answered: Answered) -> dict[str, Any]:
        answer = answered.answer
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.text},
                    "finish_reason": self._finish_reason(answered),
                }
            ],
            "usage": self._usage(answered),
            **self._extra(answered),
        }

    async def chunks(
        self, events: AsyncGenerator[Token | Answered, None], request_id: str
    ) -> AsyncIterator[str]:
        yield self._chunk({"role": "assistant", "content": ""})
        streamed: list[str] = []
        try:
            async with aclosing(events):
                async for item in events:
                    if isinstance(item, Token):
                        streamed.append(item.text)
                        yield self._chunk({"content": item.text})
                        continue
                    answer = item.answer
                    if answer.abstain_reason == "unsupported" and "".join(streamed).strip():
                        yield self._chunk({"content": WITHDRAWN + answer.text})
                    yield self._chunk(
                        {},
                        self._finish_reason(item),
                        usage=self._usage(item),
                        **self._extra(item),
                    )
        except Exception as error:
            yield frame({"error": {"message": stream_failure(error, request_id)}})
        yield frame("[DONE]")

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return frame(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
        )

    def _finish_reason(self, answered: Answered) -> str:
        return "length" if answered.tokens >= self.question.max_new_tokens else "stop"

    def _usage(self, answered: Answered) -> dict[str, int]:
        prompt = self.count_tokens(self.question.text)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": answered.tokens,
            "total_tokens": prompt + answered.tokens,
        }

    def _extra(self, answered: Answered) -> dict[str, Any]:
        return {
            "citations": [citation_out(c) for c in answered.answer.citations],
            "abstained": answered.answer.abstained,
            "sources": [citation_out(c) for c in answered.answer.sources],
            "collection": self.question.collection,
        }
