"""Where the UI finds the API: ``ui.api_url``, else the address ``lorag serve`` listens on.

Shared by the UI and ``lorag ui``; it imports nothing but the settings.
"""

from __future__ import annotations

from assistant.core.settings import Settings

_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


def api_url(settings: Settings) -> str:
    """The API's base URL for ``settings`` (a wildcard listen address reads as loopback)."""
    if settings.ui.api_url:
        return settings.ui.api_url.rstrip("/")
    host = settings.api.host
    host = "127.0.0.1" if host in _WILDCARD_HOSTS else host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.api.port}"
