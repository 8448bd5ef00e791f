"""Every error the API returns is ``{"detail": "<message naming the problem>"}``, never a traceback.

- A request that does not parse or validate: 400 for a body that is not JSON, else 422, the
  message naming each field (``body.question: Field required``).
- A problem lorag reports (:class:`LoragError`): 404 for an unknown collection, document or
  passage, 409 for an adapter tainted by an erasure, 503 for a store in use elsewhere, else
  422, with lorag's own message.
- An ``HTTPException`` raised by a route: its status, message and headers.
- Anything else: 500 with the request id to find the traceback in the log.

On the OpenAI-compatible routes the body also holds OpenAI's ``{"error": {"message", "type",
"code"}}``, which OpenAI clients put in the exceptions they raise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.core.errors import (
    AdapterTaintedError,
    CollectionNotFoundError,
    GeneratorUnavailableError,
    LoragError,
    SourceNotFoundError,
    StoreLockedError,
)

log = logging.getLogger("lorag.api")

OPENAI_PATHS = ("/v1/chat/", "/v1/models", "/generate/v1/")
_LORAG_STATUS: tuple[tuple[type[LoragError], int], ...] = (
    (CollectionNotFoundError, 404),
    (SourceNotFoundError, 404),
    (AdapterTaintedError, 409),
    (StoreLockedError, 503),
    (GeneratorUnavailableError, 502),
)
_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    503: "server_busy",
}


def status_of(error: LoragError) -> int:
    """The HTTP status a lorag error is answered with."""
    return next((status for kind, status in _LORAG_STATUS if isinstance(error, kind)), 422)


def describe_validation(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """The status and the message for a request that failed validation."""
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "invalid JSON")
            return 400, f"the request body is not valid JSON: {reason}"
    problems = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ())) or "request"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return 422, "; ".join(problems)


def error_response(
    request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """``{"detail"}`` (with OpenAI's ``error`` object on the OpenAI routes) at ``status``."""
    body: dict[str, Any] = {"detail": detail}
    if request.url.path.startswith(OPENAI_PATHS):
        kind = _OPENAI_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
        body["error"] = {"message": detail, "type": kind, "code": status}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    status, detail = describe_validation(list(error.errors()))
    return error_response(request, status, detail)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    return error_response(request, error.status_code, str(error.detail), error.headers)


async def _lorag_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, LoragError)
    return error_response(request, status_of(error), str(error))


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    request_id = request.scope.get("state", {}).get("request_id", "unknown")
    log.error(
        "unhandled error",
        exc_info=error,
        extra={"fields": {"request_id": request_id, "path": request.url.path}},
    )
    detail = f"internal error (request id {request_id}); the server log has the details"
    return error_response(request, 500, detail)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as ``{"detail": ...}`` (see the module docstring)."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(LoragError, _lorag_error)
    app.add_exception_handler(Exception, _unexpected)


def too_large(what: str, limit_bytes: int, setting: str) -> HTTPException:
    """413 for a body over its limit, naming the limit and the setting that sets it."""
    return HTTPException(
        413, f"{what} is larger than the limit of {_size(limit_bytes)} (setting {setting})"
    )


def stream_failure(error: Exception, request_id: str) -> str:
    """The message for an error raised after a streamed response has started."""
    if isinstance(error, HTTPException):
        return str(error.detail)
    if isinstance(error, LoragError):
        return str(error)
    log.error(
        "unhandled error in a stream",
        exc_info=error,
        extra={"fields": {"request_id": request_id}},
    )
    return f"internal error (request id {request_id}); the server log has the details"


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n / 2**10:g} KiB"
