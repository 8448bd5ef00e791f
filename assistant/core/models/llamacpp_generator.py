"""The llama.cpp generator back end: a GGUF base model in-process, nothing compiled.

It runs through ``ik-llama-cpp-python`` (a prebuilt ik_llama.cpp, a llama.cpp fork tuned for
CPUs; a manylinux_2_28 wheel, so glibc 2.28 is enough), calling its C API with ctypes. The
prompt is rendered and tokenized by the base's transformers tokenizer (the converted folder's),
exactly as the transformers back end and training do, and the token ids are fed to llama.cpp:
both back ends see the same ids. Greedy decoding reads the logits with numpy (the package's own
sampler walks the whole vocabulary in Python for every token).

Adapters are refused here for now: with PEFT LoRAs exported to GGUF LoRA files, this runtime's
logit shifts did not follow transformers+PEFT's (cosine 0.4-0.96 between the two shifts, 1.2-2.5x
their size, none at all on ``o_proj``), so an adapter would answer differently than it was
evaluated. Serve adapters with ``generator.backend = 'transformers'``.
One generation runs at a time (a lock); ``generate_batch`` answers its chats one after another.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.core.errors import AdapterError, ModelNotFoundError
from assistant.core.models.hf_generator import count_text_tokens, is_looping, render_chat

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

INSTALL_HINT = "pip install ik-llama-cpp-python==0.1.5"
PROBE = "Say hello."
logger = logging.getLogger(__name__)
_LOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


@_LOG_CALLBACK
def _to_logger(level: int, text: bytes | None, user_data: int | None) -> None:
    """llama.cpp's own log lines (a hundred per model load) go to Python's log at debug level,
    not to the user's terminal."""
    if text:
        logger.debug("%s", text.decode("utf-8", "replace").rstrip())


def _api() -> Any:
    """The ctypes API of the prebuilt library."""
    try:
        from ik_llama_cpp import _ctypes_api as api
    except ImportError as exc:
        raise ModelNotFoundError(
            f"generator.backend = 'llamacpp' needs the llama.cpp runtime: {INSTALL_HINT}"
        ) from exc
    api._lib.llama_log_set(_to_logger, None)
    return api


class LlamaCppGenerator:
    """The :class:`~assistant.core.protocols.Generator` over llama.cpp (see the module doc)."""

    def __init__(
        self,
        gguf: Path,
        tokenizer: PreTrainedTokenizerBase,
        model_id: str,
        *,
        threads: int,
        context_window: int,
        eos_ids: list[int],
    ) -> None:
        from ik_llama_cpp._internals import IkContext, IkModel

        self._api = _api()
        self.model_id = model_id
        self.context_window = context_window
        self.gguf = gguf
        self._tokenizer = tokenizer
        self._model = IkModel(str(gguf))
        # flash attention off: ik_llama.cpp's CPU flash attention asserts on long prompts
        # without AVX-VNNI (its own wrapper turns it off there too).
        self._context = IkContext(
            self._model, n_ctx=context_window, n_threads=threads, flash_attn=False
        )
        self._n_vocab = int(self._model.n_vocab)
        self._n_batch = int(self._context._n_ubatch)
        self._eos_ids = set(eos_ids)
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
        return []

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
    ) -> Iterator[str]:
        self._check_adapter(adapter)
        ids = self._tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]
        return self._pieces(list(ids), max_new_tokens, temperature)

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
        self._check_adapter(adapter)
        return [self.generate(messages, max_new_tokens, 0.0, adapter) for messages in batch]

    def load_adapter(self, path: str, name: str) -> None:
        raise AdapterError(
            f"adapter {name!r}: the llamacpp back end serves the base model only (its LoRA "
            "results did not match transformers+PEFT when measured); set "
            "LORAG_GENERATOR__BACKEND=transformers to answer with adapters"
        )

    def unload_adapter(self, name: str) -> None:
        raise AdapterError(f"no adapter named {name!r} is loaded (loaded: none)")

    def _check_adapter(self, adapter: str | None) -> None:
        if adapter is not None:
            raise AdapterError(f"unknown adapter {adapter!r} (loaded: none)")

    def _decode(self, tokens: list[int], start: int) -> np.ndarray:
        """Feed ``tokens`` at positions ``start``.. and return the last one's logits."""
        from ik_llama_cpp._internals import make_batch_range

        api = self._api
        for offset in range(0, len(tokens), self._n_batch):
            chunk = tokens[offset : offset + self._n_batch]
            last = offset + self._n_batch >= len(tokens)
            batch = make_batch_range(chunk, pos_start=start + offset, logits_last=last)
            try:
                status = self._context.decode(batch)
            finally:
                api.llama_batch_free(batch)
            if status != 0:
                raise RuntimeError(f"llama.cpp could not decode the prompt (status {status})")
        return np.ctypeslib.as_array(self._context.get_logits(-1), shape=(self._n_vocab,))

    def _pieces(self, prompt: list[int], max_new_tokens: int, temperature: float) -> Iterator[str]:
        if len(prompt) + max_new_tokens > self.context_window:
            raise ValueError(
                f"the prompt ({len(prompt)} tokens) and {max_new_tokens} new tokens exceed the "
                f"context window of {self.context_window}"
            )
        rng = np.random.default_rng()
        with self._lock:
            api = self._api
            self._context.kv_cache_clear()
            generated: list[int] = []
            shown = ""
            logits = self._decode(prompt, 0)
            for _ in range(max_new_tokens):
                token = _pick(logits, temperature, rng)
                if token in self._eos_ids or api.llama_token_is_eog(self._model.model, token):
                    break
                generated.append(token)
                text = self._tokenizer.decode(generated, skip_special_tokens=True)
                if not text.endswith("\ufffd") and len(text) > len(shown):
                    yield text[len(shown) :]
                    shown = text
                if is_looping(generated):
                    break
                logits = self._decode([token], len(prompt) + len(generated) - 1)


def _pick(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """The greedy token, or one sampled at ``temperature``."""
    if temperature <= 0:
        return int(logits.argmax())
    scaled = (logits - logits.max()) / temperature
    probs = np.exp(scaled)
    return int(rng.choice(len(probs), p=probs / probs.sum()))
