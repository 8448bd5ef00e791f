"""The reranker: a sentence-transformers cross-encoder behind the Reranker Protocol."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.core.errors import ModelNotFoundError
from assistant.core.models.devices import configure_threads, quiet_loading, resolve_dtype
from assistant.core.models.sources import model_not_found, resolve_reranker_path
from assistant.core.settings import Settings

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


class CrossEncoderReranker:
    """The :class:`~assistant.core.protocols.Reranker` over a sentence-transformers
    ``CrossEncoder`` with one output (a relevance score per query-text pair)."""

    def __init__(self, model: CrossEncoder, model_id: str, batch_size: int) -> None:
        self.model_id = model_id
        self._model = model
        self._batch_size = batch_size
        # A fast tokenizer is not safe to share between threads while its truncation changes.
        self._lock = threading.Lock()

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        with self._lock:
            scores = self._model.predict(
                [(query, text) for text in texts],
                batch_size=self._batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
        return [float(score) for score in scores]


def load_reranker(settings: Settings, path: Path | None = None) -> CrossEncoderReranker:
    """The cross-encoder named by ``retrieval.reranker`` (from ``path`` when it was resolved
    already), on the embedder's device and in its dtype.

    A folder that holds another kind of model (an embedder, a classifier with several labels)
    is refused: loading it as a cross-encoder would score with a random, untrained head."""
    from sentence_transformers import CrossEncoder

    configure_threads(settings)
    value = settings.retrieval.reranker
    path = path or resolve_reranker_path(settings)
    device = settings.embedder.device
    try:
        with quiet_loading():
            model = CrossEncoder(
                str(path),
                device=device,
                local_files_only=True,
                model_kwargs={"dtype": resolve_dtype(settings.embedder.dtype, device)},
            )
    except (OSError, ValueError) as exc:
        tried = [f"the folder {str(path)!r}: {exc}"]
        raise model_not_found("retrieval.reranker", value, tried) from exc
    architectures = model.config.architectures or []
    labels = model.config.num_labels
    if labels != 1 or not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ModelNotFoundError(
            f"retrieval.reranker = {value!r} (env LORAG_RETRIEVAL__RERANKER) is not a "
            f"cross-encoder: {str(path)!r} holds {', '.join(architectures) or 'a model'} with "
            f"{labels} label(s), not a ...ForSequenceClassification model with one label "
            "(e.g. cross-encoder/ms-marco-MiniLM-L6-v2)"
        )
    return CrossEncoderReranker(model, value, settings.embedder.batch_size)
