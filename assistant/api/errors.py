"""Every error the API returns is ``{"detail": "<message naming the problem>"}``, never a traceback.

- A request that does not parse or validate: 400 for a body that is not JSON, else 422, the
  message naming each field (``body.question: Field required``).
- A problem lorag reports (:class:`LoragError`): 404 for an unknown collection, 503 for a store
  in use elsewhere, else 422, with lorag's own message.
- Anything else: 500 with the request id to find the traceback in the log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from assistant.core.errors import CollectionNotFoundError, LoragError, StoreLockedError

log = logging.getLogger("lorag.api")

_LORAG_STATUS: tuple[tuple[type[LoragError], int], ...] = (
    (CollectionNotFoundError, 404),
    (StoreLockedError, 503),
)


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


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    status, detail = describe_validation(list(error.errors()))
    return JSONResponse({"detail": detail}, status_code=status)


async def _lorag_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, LoragError)
    return JSONResponse({"detail": str(error)}, status_code=status_of(error))


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    request_id = request.scope.get("state", {}).get("request_id", "unknown")
    log.error(
        "unhandled error",
        exc_info=error,
        extra={"fields": {"request_id": request_id, "path": request.url.path}},
    )
    return JSONResponse(
        {"detail": f"internal error (request id {request_id}); the server log has the details"},
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer validation errors, lorag errors and unexpected errors as ``{"detail": ...}``."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(LoragError, _lorag_error)
    app.add_exception_handler(Exception, _unexpected)


def too_large(what: str, limit_bytes: int, setting: str) -> HTTPException:
    """413 for a body over its limit, naming the limit and the setting that sets it."""
    return HTTPException(
        413, f"{what} is larger than the limit of {_size(limit_bytes)} (setting {setting})"
    )


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n / 2**10:g} KiB"


def stream_failure(error: Exception, request_id: str) -> str:
    """The message for an error raised after a streamed response has started."""
    if isinstance(error, HTTPException):
        return str(error.detail)
    if isinstance(error, LoragError):
        return str(error)
    log.error(
        "unhandled error in a stream", exc_info=error, extra={"fields": {"request_id": request_id}}
    )
    return f"internal error (request id {request_id}); the server log has the details"
