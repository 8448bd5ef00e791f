"""The llama.cpp generator back end: a GGUF base model in-process, nothing compiled.

The model runs on a prebuilt runtime behind a small interface (:class:`LlamaRuntime`):
ik_llama.cpp (:mod:`.llama_ik`), the fastest measured here, with LoRA adapters. The prompt
is rendered and tokenized by the base's transformers tokenizer (the converted folder's), exactly
as the transformers back end and training do, and the token ids are fed to llama.cpp: both back
ends see the same ids. Greedy decoding reads the logits with numpy.

An adapter is a PEFT folder; what llama.cpp loads is its GGUF LoRA file: ``adapter.gguf`` in the
folder (the registry writes it there when the adapter passed its parity check), else one
exported once into the cache. One generation runs at a time (a lock); ``generate_batch``
answers its chats one after another.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np

from assistant.core.errors import AdapterError, ModelNotFoundError
from assistant.core.models.hf_generator import (
    check_loaded,
    count_text_tokens,
    first_token_ids,
    is_looping,
    render_chat,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PROBE = "Say hello."
logger = logging.getLogger(__name__)
LOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
"""llama.cpp's ``ggml_log_callback``: (level, text, user data)."""


@LOG_CALLBACK
def log_to_debug(level: int, text: bytes | None, user_data: int | None) -> None:
    """llama.cpp's own log lines (a hundred per model load) go to Python's log at debug level,
    not to the user's terminal; the runtime sets it with ``llama_log_set``."""
    if text:
        logger.debug("%s", text.decode("utf-8", "replace").rstrip())


class LlamaRuntime(Protocol):
    """One model and context of a llama.cpp build, its adapters attached by name (see
    :mod:`.llama_ik`)."""

    n_vocab: int

    @property
    def adapters(self) -> list[str]: ...

    def is_end(self, token: int) -> bool: ...

    def load_adapter(self, gguf: Path, name: str) -> None: ...

    def unload_adapter(self, name: str) -> None: ...

    def use(self, name: str | None) -> None:
        """Apply the loaded adapter ``name``, or none (the base model)."""

    def clear(self) -> None:
        """Forget every position fed so far."""

    def decode(self, tokens: list[int]) -> np.ndarray:
        """Feed ``tokens`` after the ones already fed; the last one's logits."""

    def close(self) -> None:
        """Free the model, its context and its adapters."""


class LlamaCppGenerator:
    """The :class:`~assistant.core.protocols.Generator` over a llama.cpp runtime (see the module
    doc). ``lora_file`` gives the GGUF LoRA file of a PEFT adapter folder."""

    def __init__(
        self,
        runtime: LlamaRuntime,
        tokenizer: PreTrainedTokenizerBase,
        model_id: str,
        *,
        gguf: Path,
        context_window: int,
        eos_ids: list[int],
        lora_file: Callable[[Path], Path] | None = None,
    ) -> None:
        self.model_id = model_id
        self.context_window = context_window
        self.gguf = gguf
        self._runtime = runtime
        self._tokenizer = tokenizer
        self._eos_ids = set(eos_ids)
        self._lora_file = lora_file
        self._lock = threading.Lock()
        self._check_runtime()

    def _check_runtime(self) -> None:
        """Refuse a GGUF this runtime computes wrongly: one that ends every answer at once.

        (Seen: SmolLM2-135M's Q4_1 GGUF on ik_llama.cpp 0.1.5 predicts the end of turn as its
        first token for every prompt, so each answer would be empty.)"""
        if not self.generate([{"role": "user", "content": PROBE}], max_new_tokens=4).strip():
            raise ModelNotFoundError(
                f"the llama.cpp runtime gives no text for {self.gguf.name} (its first token is "
                "always the end of turn): serve this model with generator.backend = "
                "'transformers' (env LORAG_GENERATOR__BACKEND)"
            )

    @property
    def adapters(self) -> list[str]:
        return self._runtime.adapters

    def count_tokens(self, text: str) -> int:
        return count_text_tokens(self._tokenizer, text)

    def render(self, messages: list[dict[str, str]]) -> str:
        return render_chat(self._tokenizer, messages)

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        adapter: str | None = None,
        avoid: Sequence[str] = (),
    ) -> Iterator[str]:
        check_loaded(adapter, self._runtime.adapters)
        ids = self._tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]
        banned = first_token_ids(self._tokenizer, avoid)
        return self._pieces(list(ids), max_new_tokens, temperature, adapter, banned)

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
        check_loaded(adapter, self._runtime.adapters)
        return [self.generate(messages, max_new_tokens, 0.0, adapter) for messages in batch]

    def load_adapter(self, path: str, name: str) -> None:
        """Attach the PEFT adapter folder ``path`` as ``name``, through its GGUF LoRA file."""
        if self._lora_file is None:
            self._runtime.load_adapter(Path(path), name)  # the runtime names why it cannot
            return
        lora = self._lora_file(Path(path))
        with self._lock:
            if name in self._runtime.adapters:
                raise AdapterError(f"an adapter named {name!r} is already loaded")
            self._runtime.load_adapter(lora, name)

    def unload_adapter(self, name: str) -> None:
        with self._lock:
            if name not in self._runtime.adapters:
                loaded = ", ".join(self._runtime.adapters) or "none"
                raise AdapterError(f"no adapter named {name!r} is loaded (loaded: {loaded})")
            self._runtime.unload_adapter(name)

    def close(self) -> None:
        """Free the runtime's model and context (the generator cannot answer afterwards)."""
        with self._lock:
            self._runtime.close()

    def _pieces(
        self,
        prompt: list[int],
        max_new_tokens: int,
        temperature: float,
        adapter: str | None,
        banned: list[int],
    ) -> Iterator[str]:
        if len(prompt) + max_new_tokens > self.context_window:
            raise ValueError(
                f"the prompt ({len(prompt)} tokens) and {max_new_tokens} new tokens exceed the "
                f"context window of {self.context_window}"
            )
        rng = np.random.default_rng()
        with self._lock:
            runtime = self._runtime
            runtime.use(adapter)
            runtime.clear()
            generated: list[int] = []
            shown = ""
            logits = runtime.decode(prompt)
            if banned:
                logits = logits.copy()
                logits[banned] = -np.inf
            for _ in range(max_new_tokens):
                token = _pick(logits, temperature, rng)
                if token in self._eos_ids or runtime.is_end(token):
                    break
                generated.append(token)
                text = cast(str, self._tokenizer.decode(generated, skip_special_tokens=True))
                if not text.endswith("\ufffd") and len(text) > len(shown):
                    yield text[len(shown) :]
                    shown = text
                if is_looping(generated):
                    break
                logits = runtime.decode([token])


def _pick(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """The greedy token, or one sampled at ``temperature``."""
    if temperature <= 0:
        return int(logits.argmax())
    scaled = (logits - logits.max()) / temperature
    probs = np.exp(scaled)
    return int(rng.choice(len(probs), p=probs / probs.sum()))
