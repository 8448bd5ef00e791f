"""The ``auto`` back end: the base model on ik_llama.cpp, adapters on mainline llama.cpp when
they passed their parity check, else on transformers + PEFT.

ik_llama.cpp prefills fastest here but cannot apply LoRA adapters right (:mod:`.llama_ik`).
An adapter folder that holds ``adapter.gguf`` (written by the registry only after the adapter's
answers on llama.cpp matched its answers on transformers, :mod:`assistant.training`) is served
by mainline llama.cpp (:mod:`.llama_mainline`); any other adapter, or every adapter when that
runtime is not installed, by transformers. Each adapters' back end is loaded the first time an
adapter needs it (never for a user who has none). All back ends render and tokenize with the
same tokenizer, so prompts and budgets are the same.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from assistant.core.errors import AdapterError, ModelNotFoundError
from assistant.core.models.lora_gguf import LORA_GGUF
from assistant.core.protocols import Generator

logger = logging.getLogger(__name__)
Loader = Callable[[], Generator]


class RoutedGenerator:
    """A :class:`~assistant.core.protocols.Generator`: ``base`` answers for the base model;
    ``load_llamacpp`` (adapters with a GGUF LoRA file) and ``load_transformers`` (the others)
    make the adapters' back ends, each once, when first needed."""

    def __init__(
        self, base: Generator, load_transformers: Loader, load_llamacpp: Loader | None = None
    ) -> None:
        self.base = base
        self.model_id = base.model_id
        self.context_window = base.context_window
        self._loaders = {"transformers": load_transformers, "llamacpp": load_llamacpp}
        self._loaded: dict[str, Generator] = {}
        self._owners: dict[str, Generator] = {}
        self._lock = threading.Lock()

    @property
    def adapters(self) -> list[str]:
        return list(self._owners)

    def backend_of(self, adapter: str) -> str:
        """``llamacpp`` or ``transformers``: where the loaded ``adapter`` answers."""
        owner = self._for(adapter)
        return next(kind for kind, loaded in self._loaded.items() if loaded is owner)

    def count_tokens(self, text: str) -> int:
        return self.base.count_tokens(text)

    def render(self, messages: list[dict[str, str]]) -> str:
        return self.base.render(messages)

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        adapter: str | None = None,
    ) -> Iterator[str]:
        return self._for(adapter).stream(messages, max_new_tokens, temperature, adapter)

    def generate(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        adapter: str | None = None,
    ) -> str:
        return "".join(self.stream(messages, max_new_tokens, temperature, adapter))

    def generate_batch(
        self, batch: list[list[dict[str, str]]], max_new_tokens: int, adapter: str | None = None
    ) -> list[str]:
        return self._for(adapter).generate_batch(batch, max_new_tokens, adapter)

    def load_adapter(self, path: str, name: str) -> None:
        if name in self._owners:
            raise AdapterError(f"an adapter named {name!r} is already loaded")
        backend = None
        if (Path(path) / LORA_GGUF).is_file():
            backend = self._backend("llamacpp")
        backend = backend or self._backend("transformers")
        assert backend is not None
        backend.load_adapter(path, name)
        self._owners[name] = backend

    def unload_adapter(self, name: str) -> None:
        self._for(name).unload_adapter(name)
        del self._owners[name]

    def _for(self, adapter: str | None) -> Generator:
        """The base back end for the base model; the one holding ``adapter`` otherwise."""
        if adapter is None:
            return self.base
        if adapter not in self._owners:
            loaded = ", ".join(self._owners) or "none"
            raise AdapterError(f"unknown adapter {adapter!r} (loaded: {loaded})")
        return self._owners[adapter]

    def _backend(self, kind: str) -> Generator | None:
        """The adapters' back end ``kind``, loaded once; ``None`` when it cannot load here."""
        with self._lock:
            if kind not in self._loaded:
                loader = self._loaders[kind]
                if loader is None:
                    return None
                try:
                    self._loaded[kind] = loader()
                except ModelNotFoundError as missing:
                    if kind == "transformers":
                        raise
                    logger.info("adapters answer on transformers: %s", missing)
                    self._loaders[kind] = None
                    return None
            return self._loaded[kind]
