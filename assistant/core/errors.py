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
    """The named collection does not exist; with no ``known`` collection at all, the message
    says how to create one."""

    def __init__(self, name: str, known: list[str]) -> None:
        if known:
            message = f"unknown collection {name!r} (collections: {', '.join(sorted(known))})"
        else:
            message = (
                f"unknown collection {name!r}: there is no collection yet; create one by "
                "ingesting documents (`lorag ingest PATH --collection NAME`, an upload on the "
                "UI's Documents page, or POST /v1/collections then an upload)"
            )
        super().__init__(message)
        self.name = name
        self.known = known


class SourceNotFoundError(LoragError):
    """A collection has no such document, or a document no such passage."""


class OriginalUnavailableError(LoragError):
    """A document's original file cannot be served: gone from its place (``changed`` False),
    or no longer the version that was ingested (``changed`` True)."""

    def __init__(self, message: str, changed: bool) -> None:
        super().__init__(message)
        self.changed = changed


class StoreLockedError(LoragError):
    """The embedded store's folder is in use by another process."""


class InvalidQuestionError(LoragError):
    """The question is empty or too long."""


class AdapterError(LoragError):
    """An adapter folder is missing, unsafe, or made for another base model."""


class GeneratorUnavailableError(LoragError):
    """The remote generator server (``generator.backend = "remote"``) cannot be reached or
    failed; the message names its URL."""


class StoreError(LoragError):
    """A snapshot, restore or migration cannot be done as asked; the message says why and what
    to do instead."""


class AdapterTaintedError(AdapterError):
    """An adapter version was trained on a document that has since been erased: it is not
    served, promoted or bound until it is retrained without it."""
