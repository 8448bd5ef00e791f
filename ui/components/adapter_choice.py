"""Choosing what answers: the collection's default, the base model alone, an adapter by name
(its promoted version) or one exact version; a version tainted by an erasure says so. The
picker gives what ``/v1/ask`` and ``/v1/batch``
take as ``adapter``: ``None`` (the default), ``"base"``, ``"NAME"`` or ``"NAME@VERSION"``."""

from __future__ import annotations

from streamlit.delta_generator import DeltaGenerator

from ui.schemas import Adapter
from ui.session import kept

BASE = "base"
DEFAULT = "@default"
"""The picker's value for the collection's default (no adapter name starts with ``@``)."""
TAINTED = ", tainted: not served"
"""Said of a version trained on an erased document (the API refuses it)."""


def adapter_choices(adapters: list[Adapter]) -> list[str]:
    """The default, the base model, then each adapter's name followed by its versions."""
    choices = [DEFAULT, BASE]
    for name in sorted({adapter["name"] for adapter in adapters}):
        choices.append(name)
        versions = sorted((a for a in adapters if a["name"] == name), key=lambda a: a["version"])
        choices.extend(adapter["ref"] for adapter in versions)
    return choices


def choice_label(choice: str | None, adapters: list[Adapter], bound: str | None) -> str:
    """How a choice (or ``None``, the default) reads; ``bound`` is the collection's adapter."""
    if choice in (None, DEFAULT):
        return f"Collection default ({bound or 'base model'})"
    if choice == BASE:
        return "Base model (no adapter)"
    if "@" in choice:
        found = next((a for a in adapters if a["ref"] == choice), None)
        if found is None:
            return choice
        return f"{choice} · {found['status']}{TAINTED if found['tainted'] else ''}"
    promoted = [a for a in adapters if a["name"] == choice and a["status"] == "promoted"]
    if not promoted:
        return choice
    tainted = TAINTED if promoted[0]["tainted"] else ""
    return f"{choice} (promoted: v{promoted[0]['version']}{tainted})"


def pick_adapter(
    where: DeltaGenerator, adapters: list[Adapter], bound: str | None, *, name: str, help: str
) -> str | None:
    """A picker of :func:`adapter_choices` in ``where`` (the sidebar, a form…), its value kept
    under ``name`` across pages; the choice (``None``: the collection's default)."""
    choices = adapter_choices(adapters)
    choice: str = where.selectbox(
        "Answer with",
        choices,
        format_func=lambda c: choice_label(c, adapters, bound),
        help=help,
        **kept(name, choices),
    )
    return None if choice == DEFAULT else choice
