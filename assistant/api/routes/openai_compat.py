"""OpenAI-compatible ``POST /v1/chat/completions`` and ``GET /v1/models``.

``model`` picks what answers, so that a client that can send nothing but ``model`` (Open WebUI,
n8n, LangChain) can pick a knowledge base (:func:`target_of`):

- a collection (``team``): answered from it, with the adapter bound to it (if any);
- ``COLLECTION:ADAPTER`` (``team:legal``, ``team:legal@2``, ``team:base``);
- ``lorag`` (the base model) or an adapter (``NAME``: its promoted version, or
  ``NAME@VERSION``), answered from the extra body field ``collection``, else the collection the
  adapter is bound to, else the collection setting.

The last user message is the question; the messages before it are the conversation
(:func:`conversation_of`): a follow-up is rewritten to stand alone before retrieval, and the
model sees the last turns. System (and developer) messages are the user's instructions to the
assistant: they shape the wording, never switch off retrieval, the support check or citations.
The response carries the extra fields ``citations``, ``abstained``, ``sources``, ``query``,
``collection`` and ``adapter`` (``NAME@VERSION``, null for the base model); a stream ends with
a chunk carrying them, then ``data: [DONE]``. When lorag withdraws a streamed draft that the
sources do not support, a last content delta says so and gives the abstention.
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

from assistant.api.answering import BASE, Answered, Question, citation_out
from assistant.api.auth import Caller
from assistant.api.errors import stream_failure
from assistant.api.routes.sse import chat_chunk, event_stream, frame
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
from assistant.conversation import Conversation, Turn
from assistant.core.errors import AdapterError
from assistant.core.registry import parse_ref
from assistant.engine import Token

STREAMED = streamed_200(None, "With `stream`: OpenAI chunks, then `[DONE]`.")
router = APIRouter(tags=["openai"], responses=ERROR_RESPONSES)

BASE_MODEL = "lorag"
WITHDRAWN = "\n\n(lorag: the draft above is not supported by the documents and is withdrawn.) "


@router.get("/v1/models", response_model=ModelList)
def models(caller: Caller, services: ServicesDep) -> Any:
    """``lorag``, every collection the key may read, every adapter by name (its promoted
    version) and by ``NAME@VERSION``, and each readable collection with each adapter
    (``COLLECTION:ADAPTER``); a version tainted by an erasure is left out (it is not served)."""
    started = int(services.started_at)
    adapters: dict[str, int] = {}
    for record in services.runtime.registry.list():
        if record.tainted:
            continue
        created = int(datetime.fromisoformat(record.created).timestamp())
        adapters.setdefault(record.name, created)
        adapters[record.ref] = created
    collections = caller.readable(sorted(services.runtime.store.list_collections()))
    cards = [ModelCard(id=BASE_MODEL, created=started)]
    cards += [ModelCard(id=name, created=started) for name in collections]
    cards += [ModelCard(id=ref, created=created) for ref, created in adapters.items()]
    cards += [
        ModelCard(id=f"{collection}:{ref}", created=created)
        for collection in collections
        for ref, created in adapters.items()
    ]
    return ModelList(data=cards)


@router.post("/v1/chat/completions", response_model=ChatCompletion, responses=STREAMED)
async def chat_completions(
    body: ChatRequest, caller: Caller, request: Request, services: ServicesDep
) -> Any:
    """Answer the last user message with retrieval over a collection, the messages before it
    as the conversation, as OpenAI's API does."""
    text, conversation = conversation_of(body.messages)
    collection, adapter = await run_in_threadpool(target_of, services, body.model, body.collection)
    question = await run_in_threadpool(  # reads the store and the registry
        services.answering.question,
        caller,
        text=text,
        collection=collection,
        adapter=adapter,
        top_k=body.top_k,
        max_new_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        conversation=conversation,
    )
    request_id: str = request.state.request_id
    reply = _Reply(body.model, question)
    if not body.stream:
        return reply.completion(await services.answering.answer(question, caller, request_id))
    events = services.answering.open_stream(question, caller, request_id)
    return event_stream(reply.chunks(events, request_id))


def conversation_of(messages: list[ChatMessage]) -> tuple[str, Conversation]:
    """The question (the last user message) and the conversation before it: each earlier user
    message with the assistant message that answered it (an unanswered one with an empty
    answer), and the system and developer messages as instructions. Messages after the last
    user message, and tool messages, are not used."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last is None:
        raise HTTPException(422, "messages: no user message to answer")
    turns: list[Turn] = []
    instructions: list[str] = []
    asked: str | None = None
    for message in messages[:last]:
        content = message.text()
        if message.role in ("system", "developer"):
            instructions.append(content)
        elif message.role == "user":
            if asked is not None:
                turns.append(Turn(asked, ""))
            asked = content
        elif message.role == "assistant" and asked is not None:
            turns.append(Turn(asked, content))
            asked = None
    if asked is not None:
        turns.append(Turn(asked, ""))
    for message in messages[last + 1 :]:
        if message.role in ("system", "developer"):
            instructions.append(message.text())
    conversation = Conversation(turns=tuple(turns), instructions="\n".join(instructions).strip())
    return messages[last].text(), conversation


def target_of(services: Services, model: str, collection: str | None) -> tuple[str | None, str]:
    """The collection (``None``: the collection setting) and the adapter (a ref, or
    ``"base"``, or ``""`` for the one bound to the collection) that ``model`` names; see the
    module docstring. A ``model`` naming a collection other than the ``collection`` field is
    a 400."""
    if model == BASE_MODEL:
        return collection, BASE
    named, colon, adapter = model.partition(":")
    if colon or model in services.runtime.store.list_collections():
        if collection is not None and collection != named:
            raise HTTPException(
                400,
                f"model {model!r} names the collection {named!r} but the collection field names "
                f"{collection!r}: name one",
            )
        return named, adapter
    return collection or _bound_collection(services, model), model


def _bound_collection(services: Services, model: str) -> str | None:
    """The collection an adapter is bound to (the first, by name), for a request naming none."""
    try:
        name, _ = parse_ref(model)
    except AdapterError:
        return None
    bound = services.runtime.registry.bindings()
    return next((c for c, ref in sorted(bound.items()) if parse_ref(ref)[0] == name), None)


class _Reply:
    """The OpenAI-shaped response to one request: a completion, or its stream of chunks."""

    def __init__(self, model: str, question: Question) -> None:
        self.model = model
        self.question = question
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

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
        return chat_chunk((self.id, self.created, self.model), delta, finish, **extra)

    def _finish_reason(self, answered: Answered) -> str:
        return "length" if answered.tokens >= self.question.max_new_tokens else "stop"

    def _usage(self, answered: Answered) -> dict[str, int]:
        # the whole prompt the model read (instructions, sources, question); 0 when the engine
        # abstained without asking the model
        prompt = int(answered.answer.timings.get("prompt_tokens", 0))
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
            "query": answered.answer.query,
            "collection": self.question.collection,
            "adapter": self.question.adapter.ref if self.question.adapter else None,
        }
