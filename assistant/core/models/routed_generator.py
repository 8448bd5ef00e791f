"""The ``auto`` back end: the base model on llama.cpp, adapters on transformers + PEFT.

llama.cpp decodes about 3.4x faster than transformers here (benchmarks/backends.py) but cannot
yet serve PEFT adapters with the same results (see :mod:`.llamacpp_generator`). So a question
for the base model goes to llama.cpp, and one for an adapter goes to the transformers back end,
which is loaded the first time an adapter is attached (never for a user who has none). Both
back ends render and tokenize with the same tokenizer, so prompts and budgets are the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from assistant.core.protocols import Generator


class RoutedGenerator:
    """A :class:`~assistant.core.protocols.Generator`: ``base`` answers for the base model; the
    generator ``load_adapters_backend`` makes (loaded once, when first needed) holds adapters."""

    def __init__(self, base: Generator, load_adapters_backend: Callable[[], Generator]) -> None:
        self.base = base
        self.model_id = base.model_id
        self.context_window = base.context_window
        self._load = load_adapters_backend
        self._with_adapters: Generator | None = None
        self._lock = threading.Lock()

    @property
    def adapters(self) -> list[str]:
        return [] if self._with_adapters is None else self._with_adapters.adapters

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
        self._adapters_backend().load_adapter(path, name)

    def unload_adapter(self, name: str) -> None:
        self._adapters_backend().unload_adapter(name)

    def _for(self, adapter: str | None) -> Generator:
        """The base back end for the base model; the adapters' one (which names an unknown
        adapter) otherwise."""
        return self.base if adapter is None else self._adapters_backend()

    def _adapters_backend(self) -> Generator:
        with self._lock:
            if self._with_adapters is None:
                self._with_adapters = self._load()
            return self._with_adapters
