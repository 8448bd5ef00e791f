"""Server-sent events: one ``event:``/``data:`` frame, and the response that streams them."""

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


def event_stream(frames: AsyncIterator[str]) -> StreamingResponse:
    """A ``text/event-stream`` response that proxies do not buffer."""
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
