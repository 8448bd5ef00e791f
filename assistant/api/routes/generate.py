"""The plain OpenAI-compatible model server at ``/generate/v1`` (:mod:`assistant.api.generating`).

``GET /generate/v1/models``, ``POST /generate/v1/chat/completions`` (streamed with ``stream``)
and vLLM's ``POST /generate/v1/load_lora_adapter`` / ``unload_lora_adapter``: another lorag
points ``generator.remote.url`` at ``http://HOST:PORT/generate/v1`` with
``generator.remote.server = "lorag"``. Any valid key may generate (no document is read);
loading and unloading adapters needs ``admin`` on ``"*"``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Request

from assistant.api.auth import Caller
from assistant.api.errors import stream_failure
from assistant.api.generating import Generated, Generation
from assistant.api.routes.sse import chat_chunk, event_stream, frame
from assistant.api.schemas import (
    ERROR_RESPONSES,
    GenerateRequest,
    LoadLoraAdapterRequest,
    ModelCard,
    ModelList,
    PlainCompletion,
    UnloadLoraAdapterRequest,
    streamed_200,
)
from assistant.api.services import ServicesDep

PREFIX = "/generate/v1"
STREAMED = streamed_200(None, "With `stream`: OpenAI chunks, then `[DONE]`.")
router = APIRouter(prefix=PREFIX, tags=["model server"], responses=ERROR_RESPONSES)


@router.get("/models", response_model=ModelList)
def served_models(caller: Caller, services: ServicesDep) -> Any:
    """The base model and the adapters loaded through this API."""
    created = int(services.started_at)
    return ModelList(data=[ModelCard(id=m, created=created) for m in services.serving.models()])


@router.post("/chat/completions", response_model=PlainCompletion, responses=STREAMED)
async def generate(
    body: GenerateRequest, caller: Caller, request: Request, services: ServicesDep
) -> Any:
    """The model's reply to the messages as they are: no retrieval, no added prompt."""
    generation = services.serving.generation(
        body.model,
        [{"role": m.role, "content": m.text()} for m in body.messages],
        body.max_completion_tokens or body.max_tokens,
        body.temperature,
        body.avoid,
    )
    reply = _Reply(generation)
    if not body.stream:
        return reply.completion(await services.serving.complete(generation, caller))
    pieces = services.serving.stream(generation, caller)
    return event_stream(reply.chunks(pieces, request.state.request_id))


@router.post("/load_lora_adapter", response_model=str)
async def load_lora_adapter(
    body: LoadLoraAdapterRequest, caller: Caller, services: ServicesDep
) -> str:
    """Attach a PEFT adapter folder of this machine to the loaded base, under ``lora_name``."""
    await services.serving.load(body.lora_name, body.lora_path, caller)
    return f"Success: LoRA adapter '{body.lora_name}' added successfully."


@router.post("/unload_lora_adapter", response_model=str)
async def unload_lora_adapter(
    body: UnloadLoraAdapterRequest, caller: Caller, services: ServicesDep
) -> str:
    await services.serving.unload(body.lora_name, caller)
    return f"Success: LoRA adapter '{body.lora_name}' removed successfully."


class _Reply:
    """The OpenAI-shaped response to one generation: a completion, or its chunks."""

    def __init__(self, generation: Generation) -> None:
        self.generation = generation
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def completion(self, generated: Generated) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.generation.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": generated.text},
                    "finish_reason": self._finish_reason(generated),
                }
            ],
            "usage": _usage(generated),
        }

    async def chunks(
        self, pieces: AsyncGenerator[str | Generated, None], request_id: str
    ) -> AsyncIterator[str]:
        yield self._chunk({"role": "assistant", "content": ""})
        try:
            async with aclosing(pieces):
                async for item in pieces:
                    if isinstance(item, str):
                        yield self._chunk({"content": item})
                    else:
                        yield self._chunk({}, self._finish_reason(item), usage=_usage(item))
        except Exception as error:
            yield frame({"error": {"message": stream_failure(error, request_id)}})
        yield frame("[DONE]")

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return chat_chunk((self.id, self.created, self.generation.model), delta, finish, **extra)

    def _finish_reason(self, generated: Generated) -> str:
        return "length" if generated.completion_tokens >= self.generation.max_new_tokens else "stop"


def _usage(generated: Generated) -> dict[str, int]:
    return {
        "prompt_tokens": generated.prompt_tokens,
        "completion_tokens": generated.completion_tokens,
        "total_tokens": generated.prompt_tokens + generated.completion_tokens,
    }
