"""The ``auto`` back end: the base model on ik_llama.cpp, with the adapters that passed their
parity check applied on that same loaded base, and any other adapter on transformers + PEFT.

An adapter folder that holds ``adapter.gguf`` (written by the registry only after the adapter's
answers on llama.cpp matched its answers on transformers, :mod:`assistant.training`) is loaded
into the base's llama.cpp runtime and switched per request; any other adapter, or every adapter
under ``generator.adapter_runtime = 'transformers'``, answers on transformers, loaded the first
time an adapter needs it (never for a user who has none). Both back ends render and tokenize
with the same tokenizer, so prompts and budgets are the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from assistant.core.errors import AdapterError
from assistant.core.models.lora_gguf import LORA_GGUF
from assistant.core.protocols import Generator

Loader = Callable[[], Generator]


class RoutedGenerator:
    """A :class:`~assistant.core.protocols.Generator`: ``base`` answers for the base model and,
    with ``adapters_on_base``, for adapters with a GGUF LoRA file; ``load_transformers`` makes
    the back end of the others, once, when first needed."""

    def __init__(
        self, base: Generator, load_transformers: Loader, *, adapters_on_base: bool = True
    ) -> None:
        self.base = base
        self.model_id = base.model_id
        self.context_window = base.context_window
        self._load_transformers = load_transformers
        self._adapters_on_base = adapters_on_base
        self._transformers: Generator | None = None
        self._owners: dict[str, Generator] = {}
        self._lock = threading.Lock()

    @property
    def adapters(self) -> list[str]:
        return list(self._owners)

    def backend_of(self, adapter: str) -> str:
        """``llamacpp`` or ``transformers``: where the loaded ``adapter`` answers."""
        return "llamacpp" if self._for(adapter) is self.base else "transformers"

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
        avoid: Sequence[str] = (),
    ) -> Iterator[str]:
        return self._for(adapter).stream(messages, max_new_tokens, temperature, adapter, avoid)

    def generate(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        adapter: str | None = None,
        avoid: Sequence[str] = (),
    ) -> str:
        return "".join(self.stream(messages, max_new_tokens, temperature, adapter, avoid))

    def generate_batch(
        self, batch: list[list[dict[str, str]]], max_new_tokens: int, adapter: str | None = None
    ) -> list[str]:
        return self._for(adapter).generate_batch(batch, max_new_tokens, adapter)

    def load_adapter(self, path: str, name: str) -> None:
        if name in self._owners:
            raise AdapterError(f"an adapter named {name!r} is already loaded")
        checked = (Path(path) / LORA_GGUF).is_file()
        backend = self.base if checked and self._adapters_on_base else self._transformers_backend()
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

    def _transformers_backend(self) -> Generator:
        with self._lock:
            if self._transformers is None:
                self._transformers = self._load_transformers()
            return self._transformers
