"""Choosing what answers: the collection's default, the base model alone, an adapter by name
(its promoted version) or one exact version. The values are what ``/v1/ask`` and ``/v1/batch``
take as ``adapter``: ``None``, ``"base"``, ``"NAME"`` or ``"NAME@VERSION"``."""

from __future__ import annotations

from streamlit.delta_generator import DeltaGenerator

from ui.schemas import Adapter
from ui.session import kept

BASE = "base"


def adapter_choices(adapters: list[Adapter]) -> list[str | None]:
    """The default, the base model, then each adapter's name followed by its versions."""
    choices: list[str | None] = [None, BASE]
    for name in sorted({adapter["name"] for adapter in adapters}):
        choices.append(name)
        versions = sorted((a for a in adapters if a["name"] == name), key=lambda a: a["version"])
        choices.extend(adapter["ref"] for adapter in versions)
    return choices


def choice_label(choice: str | None, adapters: list[Adapter], bound: str | None) -> str:
    """How a choice reads in a picker; ``bound`` is the collection's default adapter."""
    if choice is None:
        return f"Collection default ({bound or 'base model'})"
    if choice == BASE:
        return "Base model (no adapter)"
    if "@" in choice:
        found = next((a for a in adapters if a["ref"] == choice), None)
        return f"{choice} · {found['status']}" if found else choice
    promoted = [a for a in adapters if a["name"] == choice and a["status"] == "promoted"]
    return f"{choice} (promoted: v{promoted[0]['version']})" if promoted else choice


def pick_adapter(
    where: DeltaGenerator, adapters: list[Adapter], bound: str | None, *, name: str, help: str
) -> str | None:
    """A picker of :func:`adapter_choices` in ``where`` (the sidebar, a form…), its value kept
    under ``name`` across pages; the choice."""
    choices = adapter_choices(adapters)
    choice: str | None = where.selectbox(
        "Answer with",
        choices,
        format_func=lambda c: choice_label(c, adapters, bound),
        help=help,
        **kept(name, choices),
    )
    return choice
