"""The two ASGI middlewares every request passes through.

:class:`ObserveRequests` gives each request an id (``X-Request-ID``, taken from the request when
it carries a sane one), and when the response has ended counts it in the metrics and writes its
JSON log line (method, route template, status, duration, key id). When traces are on, FastAPI's
own request span (``POST /v1/ask``, continuing a caller's ``traceparent``) is current here: it
gets the request id, and the log line its trace id. :class:`LimitBody` refuses a
body over its limit with 413: at once when ``Content-Length`` says so, else as soon as the bytes
read pass it. Only the routes that take files (:data:`UPLOAD_ROUTES`) allow the larger upload
limit, and only for multipart bodies; every other body, whatever its type, is bounded by the
JSON limit before anything parses it.
"""

from __future__ import annotations

import re
import time
import uuid

from opentelemetry import trace
from opentelemetry.trace import Span
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.errors import error_response, too_large
from assistant.api.logs import log_request
from assistant.api.metrics import Metrics

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
UPLOAD_ROUTES = re.compile(r"/v1/(?:collections/[^/]+/documents|batch|finetune)")
"""The paths whose POST takes uploaded files (documents, question files, training data)."""


class ObserveRequests:
    """Request id, metrics and the request log for every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        span = trace.get_current_span()
        span.set_attribute("lorag.request_id", request_id)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(seconds)
            log_request(
                {
                    "request_id": request_id,
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "key_id": state.get("key_id"),
                    "client": (scope.get("client") or ("", 0))[0],
                    **_trace_id(span),
                }
            )


def _trace_id(span: Span) -> dict[str, str]:
    """``{"trace_id": ...}`` for the log line of a traced request; nothing for an untraced one."""
    if not span.is_recording():
        return {}
    return {"trace_id": format(span.get_span_context().trace_id, "032x")}


class LimitBody:
    """413 for a request body over ``json_limit`` bytes (``upload_limit`` for a multipart
    upload to one of :data:`UPLOAD_ROUTES`)."""

    def __init__(self, app: ASGIApp, *, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        multipart = headers.get("content-type", "").startswith("multipart/form-data")
        takes_files = scope["method"] == "POST" and UPLOAD_ROUTES.fullmatch(scope["path"])
        if multipart and takes_files:
            limit, what, setting = self.upload_limit, "the upload", "api.max_upload_mb"
        else:
            limit, what, setting = self.json_limit, "the request body", "api.max_body_kb"
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            detail = str(too_large(what, limit, setting).detail)
            await error_response(Request(scope), 413, detail)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(what, limit, setting)
            return message

        await self.app(scope, limited, send)
