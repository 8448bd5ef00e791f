"""The embedder: a sentence-transformers model behind the Embedder Protocol."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from assistant.core.models.devices import configure_threads, quiet_loading, resolve_dtype
from assistant.core.models.sources import model_not_found, resolve_embedder_path
from assistant.core.settings import Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class SentenceTransformerEmbedder:
    """The :class:`~assistant.core.protocols.Embedder` over a sentence-transformers model."""

    def __init__(self, model: SentenceTransformer, model_id: str, batch_size: int) -> None:
        self.model_id = model_id
        self.dimension = int(model.get_embedding_dimension())
        self.max_tokens = int(model.max_seq_length)
        self._model = model
        self._batch_size = batch_size
        # A fast tokenizer is not safe to share between threads while its truncation changes.
        self._lock = threading.Lock()

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Float32, L2-normalised vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            raw = self._model.encode(
                list(texts),
                batch_size=self._batch_size,
                convert_to_tensor=True,
                show_progress_bar=show_progress,
            )
        vectors = raw.float().cpu().numpy()
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this embedder, without special tokens or truncation."""
        with self._lock:
            encoded = self._model.tokenizer(
                text, add_special_tokens=False, truncation=False, verbose=False
            )
        return len(encoded["input_ids"])


def load_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    """The embedder named by ``settings.embedder``, on its device, in its dtype."""
    from sentence_transformers import SentenceTransformer

    configure_threads(settings)
    spec = settings.embedder
    path = resolve_embedder_path(settings)
    try:
        with quiet_loading():
            model = SentenceTransformer(
                str(path),
                device=spec.device,
                local_files_only=True,
                model_kwargs={"dtype": resolve_dtype(spec.dtype, spec.device)},
            )
    except (OSError, ValueError) as exc:
        tried = [f"the folder {str(path)!r}: {exc}"]
        raise model_not_found("embedder.model", spec.model, tried) from exc
    return SentenceTransformerEmbedder(model, spec.model, spec.batch_size)
