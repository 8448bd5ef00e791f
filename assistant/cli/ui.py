"""``lorag ui``: open the browser UI (Streamlit), a client of the lorag API over HTTP.

The UI runs as ``streamlit run ui/app.py`` in its own process, with the API's URL and key in
its environment (``LORAG_UI__API_URL``, ``LORAG_UI__API_KEY``). With ``--serve`` the command
first starts ``lorag serve`` (anonymous on loopback when no API key is configured), waits until
it is ready, and stops it when the UI stops: one command for a local assistant.

Streamlit always runs headless: otherwise, on its first run, it asks for an e-mail address on
the terminal, and with no terminal (stdin closed: a service, ``nohup``, CI) it exits and takes
the API with it. lorag opens the browser itself once the UI answers, where a display exists
(``--headless`` keeps it closed).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated

import typer

from assistant.cli.common import fail, out
from assistant.core.errors import ConfigError
from assistant.core.settings import Settings, load_settings

READY_TIMEOUT_S = 900.0
UI_READY_TIMEOUT_S = 120.0
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def streamlit_command(host: str, port: int, max_upload_mb: float) -> list[str]:
    """The ``streamlit run`` command line of the UI, headless (its upload limit: the API's).

    The served UI watches no source files: Streamlit's file watcher is a development aid (it
    offers each open page a rerun when a source file changes) and keeps a watch on every module
    the app imports.
    """
    import ui

    app = Path(ui.__file__).resolve().parent / "app.py"
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--server.maxUploadSize",
        str(math.ceil(max_upload_mb)),
    ]


def serve_environment(settings: Settings) -> dict[str, str]:
    """The environment of the ``lorag serve`` that ``--serve`` starts."""
    env = dict(os.environ)
    if not settings.api.keys:
        if settings.api.host not in LOOPBACK:
            raise fail(
                f"api.host is {settings.api.host}, not loopback: configure API keys "
                "(LORAG_API__KEYS) before serving beyond this machine"
            )
        env["LORAG_API__ALLOW_ANONYMOUS"] = "true"
    return env


@contextmanager
def _api_process(settings: Settings, url: str) -> Iterator[None]:
    """``lorag serve`` in a child process, ready to answer; stopped at the end."""
    command = [sys.executable, "-c", "from assistant.cli import app; app(prog_name='lorag')"]
    child = subprocess.Popen([*command, "serve"], env=serve_environment(settings))
    try:
        out.print(f"Starting the API on {url} (loading the models)…", highlight=False)
        if not _answers(f"{url}/readyz", child, READY_TIMEOUT_S):
            if child.poll() is not None:
                raise fail(f"lorag serve stopped (exit code {child.returncode}); see above")
            raise fail(f"the API at {url} was not ready after {READY_TIMEOUT_S:.0f} s")
        yield
    finally:
        _stop(child)


def has_display(platform: str = sys.platform, env: dict[str, str] | None = None) -> bool:
    """Whether a browser window can open here: macOS and Windows always; elsewhere an X11 or
    Wayland display."""
    env = dict(os.environ) if env is None else env
    if platform == "darwin" or platform.startswith("win"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def _open_browser_when_ready(url: str, child: subprocess.Popen[bytes]) -> None:
    """Open ``url`` in the user's browser once Streamlit answers its health check."""
    if _answers(f"{url}/_stcore/health", child, UI_READY_TIMEOUT_S):
        webbrowser.open(url)


def _answers(url: str, child: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Whether ``url`` answers 200 within ``timeout_s`` while ``child`` (serving it) runs."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while child.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    return False


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def ui(
    host: Annotated[
        str | None, typer.Option(help="Address the UI listens on (default: ui.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="UI port (default: ui.port).")
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(help="The API's URL (default: ui.api_url, else http://api.host:api.port)."),
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Start `lorag serve` too, and stop it with the UI.")
    ] = False,
    headless: Annotated[
        bool, typer.Option("--headless", help="Do not open a browser window, even with a display.")
    ] = False,
) -> None:
    """Open the browser UI: chat with citations, documents, adapters, batch questions."""
    from ui.endpoint import api_url as default_api_url

    try:
        settings = load_settings()
    except ConfigError as error:
        raise fail(str(error)) from None
    if serve and api_url:
        raise fail("--serve starts the API at api.host:api.port; leave out --api-url")
    url = (api_url or default_api_url(settings)).rstrip("/")
    address = (host or settings.ui.host, port or settings.ui.port)
    env = {**os.environ, "LORAG_UI__API_URL": url}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the children on SIGTERM too
    code = 130  # interrupted
    try:
        with _api_process(settings, url) if serve else nullcontext():
            browse = "localhost" if address[0] in {"0.0.0.0", "::"} else address[0]
            ui_url = f"http://{browse}:{address[1]}"
            out.print(f"lorag UI on {ui_url} (API: {url})", highlight=False)
            command = streamlit_command(*address, settings.api.max_upload_mb)
            child = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
            try:
                if not headless and has_display():
                    _open_browser_when_ready(ui_url, child)
                code = child.wait()
            finally:
                _stop(child)
    except KeyboardInterrupt:
        pass
    raise typer.Exit(code)
