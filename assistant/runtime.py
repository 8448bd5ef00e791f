"""The running parts of lorag, built from settings on first use.

A CLI command or the API server makes one ``Runtime``; each part (store, embedder, reranker,
generator, engine) is loaded the first time it is needed, so ``lorag collections`` loads no model
and ``lorag ingest`` loads no generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.core.errors import AdapterError
from assistant.core.prompt import PromptTemplate, load_template
from assistant.core.registry import (
    BASE,
    AdapterRegistry,
    check_base,
    check_lora_gguf,
    check_untainted,
)
from assistant.core.settings import Settings

if TYPE_CHECKING:
    from assistant.core.models import CrossEncoderReranker, SentenceTransformerEmbedder
    from assistant.core.protocols import Generator, VectorStore
    from assistant.core.sparse import Bm25Encoder
    from assistant.engine import QueryEngine
    from assistant.erasure import ErasureReport
    from assistant.feedback import FeedbackLog
    from assistant.sources import Originals
    from ingestion.pipeline import Ingestor


ORIGINALS_DIR = "originals"
"""Under ``data_dir``: the kept copies of uploaded files (:class:`~assistant.sources.Originals`)."""
CLI_USER = "cli"
"""Who the audit log and erasure reports name for what the command line did."""


@dataclass(frozen=True)
class AdapterChoice:
    """An adapter to attach: its PEFT folder, its name on the generator, its prompt template."""

    folder: Path
    key: str
    template: PromptTemplate
    ref: str
    """How answers name it: ``NAME@VERSION``, or the folder's path."""


class Runtime:
    """Lazily built store, models and engine for one process."""

    def __init__(self, settings: Settings) -> None:
        from assistant.core.models import configure_threads

        self.settings = settings
        configure_threads(settings)

    @cached_property
    def store(self) -> VectorStore:
        from assistant.core.store import open_store

        return open_store(self.settings)

    @cached_property
    def originals(self) -> Originals:
        """The kept copies of uploaded files (so that their citations open)."""
        from assistant.sources import Originals

        return Originals(self.settings.data_dir / ORIGINALS_DIR)

    @cached_property
    def feedback(self) -> FeedbackLog:
        """The ratings and corrections people gave answers (:mod:`assistant.feedback`)."""
        from assistant.feedback import FeedbackLog

        return FeedbackLog.for_settings(self.settings)

    def delete_documents(
        self,
        collection: str,
        doc_ids: Sequence[str],
        *,
        requested_by: str = CLI_USER,
        request_id: str | None = None,
    ) -> ErasureReport:
        """Erase documents: their chunks (from the store's files too), the kept copies of their
        files, and what was made from them (:func:`~assistant.erasure.erase_documents`)."""
        from assistant.erasure import erase_documents

        return erase_documents(
            self, collection, doc_ids, requested_by=requested_by, request_id=request_id
        )

    def delete_collection(
        self, collection: str, *, requested_by: str = CLI_USER, request_id: str | None = None
    ) -> ErasureReport:
        """Erase a collection: every document as :meth:`delete_documents` does, then the
        collection and its adapter binding."""
        from assistant.erasure import erase_documents

        return erase_documents(
            self,
            collection,
            (),
            requested_by=requested_by,
            request_id=request_id,
            whole_collection=True,
        )

    @cached_property
    def embedder(self) -> SentenceTransformerEmbedder:
        from assistant.core.models import load_embedder

        return load_embedder(self.settings)

    @cached_property
    def reranker_path(self) -> Path | None:
        """The local folder of the cross-encoder ``retrieval.reranker`` names (``None``: off)."""
        from assistant.core.models import resolve_reranker_path

        return resolve_reranker_path(self.settings) if self.settings.retrieval.reranker else None

    def check_reranker(self) -> Path | None:
        """:attr:`reranker_path`, found now: a name that finds nothing raises here, before any
        model loads."""
        return self.reranker_path

    @cached_property
    def reranker(self) -> CrossEncoderReranker | None:
        from assistant.core.models import load_reranker

        path = self.reranker_path
        return None if path is None else load_reranker(self.settings, path)

    @cached_property
    def sparse(self) -> Bm25Encoder:
        from assistant.core.sparse import Bm25Encoder

        return Bm25Encoder()

    @cached_property
    def generator(self) -> Generator:
        from assistant.core.models import load_serving_generator

        return load_serving_generator(self.settings)

    @cached_property
    def engine(self) -> QueryEngine:
        from assistant.engine import QueryEngine

        return QueryEngine(
            embedder=self.embedder,
            sparse=self.sparse,
            store=self.store,
            generator=self.generator,
            retrieval=self.settings.retrieval,
            generation=self.settings.generation,
            reranker=self.reranker,
            trace_questions=self.settings.api.log_question_text,
        )

    def ingestor(self, collection: str, show_progress: bool = False) -> Ingestor:
        from ingestion.pipeline import Ingestor

        return Ingestor(
            store=self.store,
            embedder=self.embedder,
            sparse=self.sparse,
            chunking=self.settings.chunking,
            collection=collection,
            show_progress=show_progress,
        )

    @cached_property
    def registry(self) -> AdapterRegistry:
        return AdapterRegistry.for_settings(self.settings)

    def adapter_for(self, ref: str | None, collection: str | None = None) -> AdapterChoice | None:
        """The adapter ``ref`` names, checked but not loaded (an unknown name or folder, one
        trained on another base, or one tainted by an erasure raises here, before any model
        loads).

        ``ref`` is a registered adapter (``NAME`` or ``NAME@VERSION``), the folder of a PEFT
        adapter, or ``"base"`` (none); with no ``ref``, the adapter bound to ``collection`` (if
        any)."""
        if ref == BASE:
            return None
        ref = ref or (self.registry.binding(collection) if collection else None)
        if ref is None:
            return None
        folder = Path(ref).expanduser()
        try:
            record = self.registry.get(ref)
        except AdapterError:
            if not folder.is_dir():
                raise
            return AdapterChoice(
                folder, folder.resolve().name, load_template(folder), str(folder.resolve())
            )
        check_base(record, self.settings)
        check_untainted(record)
        check_lora_gguf(record)
        return AdapterChoice(record.adapter_dir, record.key, record.template(), record.ref)

    def use_adapter(self, ref: str | None, collection: str | None = None) -> str | None:
        """Attach the adapter :meth:`adapter_for` names to the generator and return the name to
        answer with. The adapter's prompt template goes with it. The base model is loaded once;
        each adapter is attached once and then switched to per request."""
        choice = self.adapter_for(ref, collection)
        if choice is None:
            return None
        if choice.key not in self.generator.adapters:
            self.generator.load_adapter(str(choice.folder), choice.key)
        self.engine.templates[choice.key] = choice.template
        return choice.key

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
