"""Errors lorag reports to people: each names the thing to fix."""

from __future__ import annotations


class LoragError(Exception):
    """Base class: a problem the user can act on (the CLI prints it without a traceback)."""


class ConfigError(LoragError):
    """A setting is wrong; the message names the setting (e.g. ``generator.model``)."""


class ModelNotFoundError(ConfigError):
    """A model named by a setting cannot be found locally or offline."""


class DocumentError(LoragError):
    """A file cannot be ingested: empty, binary, undecodable, corrupt, encrypted, unsupported."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class CollectionNotFoundError(LoragError):
    """The named collection does not exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(sorted(known)) or "none yet"
        super().__init__(f"unknown collection {name!r} (collections: {listed})")
        self.name = name


class StoreLockedError(LoragError):
    """The embedded store's folder is in use by another process."""


class InvalidQuestionError(LoragError):
    """The question is empty or too long."""


class AdapterError(LoragError):
    """An adapter folder is missing, unsafe, or made for another base model."""
