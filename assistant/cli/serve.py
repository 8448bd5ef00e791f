"""``lorag serve``: run the HTTP API (uvicorn, one process, no auto-reload).

The models are loaded and the store opened before the server listens, so a problem (a missing
model, a store in use by another process, no API keys) stops the command with one line naming
it. One process serves everything: the embedded store belongs to one process, and one loaded
base model serves every adapter.
"""

from __future__ import annotations

from typing import Annotated

import typer

from assistant.cli.common import out, runtime


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: api.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default: api.port).")
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
        address = (host or api.host, port or api.port)
        docs = " (docs: /docs)" if app.docs_url else ""
        out.print(f"lorag API on http://{address[0]}:{address[1]}{docs}", highlight=False)
        configure_logging(log_level)
        uvicorn.run(
            app,
            host=address[0],
            port=address[1],
            log_config=None,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
