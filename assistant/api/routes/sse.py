"""Server-sent events: one ``event:``/``data:`` frame, an OpenAI chat completion chunk as one,
and the response that streams them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse


def frame(data: Any, event: str | None = None) -> str:
    """One SSE frame carrying ``data`` as JSON (or as is, for a string)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n"


def chat_chunk(
    reply: tuple[str, int, str], delta: dict[str, Any], finish: str | None = None, **extra: Any
) -> str:
    """The frame of one OpenAI ``chat.completion.chunk`` of the reply ``(id, created, model)``:
    ``delta``, the finish reason (on the last), and ``extra`` top-level fields."""
    reply_id, created, model = reply
    return frame(
        {
            "id": reply_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
    )


def event_stream(frames: AsyncIterator[str]) -> StreamingResponse:
    """A ``text/event-stream`` response that proxies do not buffer."""
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
