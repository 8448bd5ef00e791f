"""``lorag serve``: run the HTTP API (uvicorn, one process, no auto-reload).

The models are loaded and the store opened before the server listens, so a problem (a missing
model, a store in use by another process, no API keys) stops the command with one line naming
it. One process serves everything: the embedded store belongs to one process, and one loaded
base model serves every adapter.
"""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from assistant.cli.common import out, runtime
from assistant.core.errors import LoragError


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: api.host).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port (default: api.port); 0: a free one, printed."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the HTTP API: /v1/ask, OpenAI-compatible /v1/chat/completions, documents, jobs."""
    import uvicorn

    from assistant.api import create_app
    from assistant.api.logs import configure_logging

    with runtime() as rt:
        app = create_app(rt.settings, runtime=rt)
        rt.engine  # noqa: B018 - load the models and open the store before listening
        api = rt.settings.api
        listening = _listen(host or api.host, api.port if port is None else port)
        bound = listening.getsockname()[1]
        docs = " (docs: /docs)" if app.docs_url else ""
        out.print(f"lorag API on http://{host or api.host}:{bound}{docs}", highlight=False)
        configure_logging(log_level)
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
        with listening:
            uvicorn.Server(config).run(sockets=[listening])


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: one the system picks), so the address
    printed is the one served; a port in use is one line naming it."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise LoragError(f"cannot listen on {host}:{port}: {error.strerror}") from None
