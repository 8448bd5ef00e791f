"""ik_llama.cpp in-process, through the prebuilt ``ik-llama-cpp-python`` (a llama.cpp fork tuned
for CPUs; a manylinux_2_28 wheel, so glibc 2.28 is enough, nothing compiles).

It is the fastest runtime measured here, for the base model and with a LoRA adapter alike
(benchmarks/backends.py). Two load-time choices matter:

- the weights are repacked into its interleaved CPU layout (``repack_tensors``, the ``-rtr`` of
  its tools): on the 0.5B, prompt tokens/s +8 %, decoding +25 %;
- its fused up/gate projection (``fused_up_gate``, on by default) is turned off: the fused
  kernel skips a LoRA's ``up_proj`` and ``gate_proj`` terms, and with it on an adapter's shift
  of the next-token logits had cosine -0.2 to the shift transformers + PEFT computes (0.998
  with it off, size 0.98x), at no measured speed cost for the base.

Adapters are GGUF LoRA files (:mod:`.lora_gguf`), loaded beside the one base and switched per
request (``llama_lora_adapter_set`` at scale 1: alpha / rank is in the file).
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any

import numpy as np

from assistant.core.errors import AdapterError, ModelNotFoundError
from assistant.core.models.llamacpp_generator import log_to_debug

INSTALL_HINT = "pip install ik-llama-cpp-python==0.1.5"


@functools.cache
def _api() -> Any:
    """The runtime's ctypes API, with the functions its own layer leaves untyped typed (once)."""
    try:
        from ik_llama_cpp import _ctypes_api as api
    except ImportError as exc:
        raise ModelNotFoundError(
            f"generator.backend = 'llamacpp' needs the llama.cpp runtime: {INSTALL_HINT}"
        ) from exc
    lib, p = api._lib, ctypes.c_void_p
    signatures: dict[str, tuple[object, list[object]]] = {
        "llama_set_n_threads": (None, [p, ctypes.c_int32, ctypes.c_int32]),
        "llama_lora_adapter_init": (p, [p, ctypes.c_char_p]),
        "llama_lora_adapter_set": (ctypes.c_int32, [p, p, ctypes.c_float]),
        "llama_lora_adapter_clear": (None, [p]),
        "llama_lora_adapter_free": (None, [p]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    lib.llama_log_set(log_to_debug, None)
    api.llama_backend_init()
    return api


class IkLlama:
    """One model and one context of ik_llama.cpp, with LoRA adapters attached by name.

    Not thread-safe: the generator that owns it serialises calls."""

    def __init__(
        self, gguf: Path, *, context_window: int, threads: int, decode_threads: int | None = None
    ) -> None:
        self._api = api = _api()
        self._lib = api._lib
        model_params = api.llama_model_default_params()
        model_params.repack_tensors = True
        self._model = api.llama_model_load_from_file(str(gguf).encode(), model_params)
        if not self._model:
            raise ModelNotFoundError(f"ik_llama.cpp could not load the model file {gguf}")
        params = api.llama_context_default_params()
        params.n_ctx = params.n_batch = context_window
        params.n_threads = params.n_threads_batch = threads
        # flash attention off: ik_llama.cpp's CPU flash attention asserts on long prompts
        # without AVX-VNNI (its own wrapper turns it off there too).
        params.flash_attn = False
        params.fused_up_gate = False  # the fused kernel drops a LoRA's up/gate terms
        self._context = api.llama_init_from_model(self._model, params)
        if not self._context:
            api.llama_free_model(self._model)
            raise ModelNotFoundError(f"ik_llama.cpp could not make a context for {gguf}")
        self._lib.llama_set_n_threads(self._context, decode_threads or threads, threads)
        self._vocab = api.llama_model_get_vocab(self._model)
        self.n_vocab = int(api.llama_vocab_n_tokens(self._vocab))
        self.n_batch = int(api.llama_n_ubatch(self._context))
        self._position = 0
        self._adapters: dict[str, int] = {}
        self._active: str | None = None

    @property
    def adapters(self) -> list[str]:
        return list(self._adapters)

    def is_end(self, token: int) -> bool:
        return bool(self._api.llama_token_is_eog(self._model, token))

    def load_adapter(self, gguf: Path, name: str) -> None:
        """Load a GGUF LoRA file as ``name`` (not yet applied)."""
        handle = self._lib.llama_lora_adapter_init(self._model, str(gguf).encode())
        if not handle:
            raise AdapterError(f"ik_llama.cpp could not load the LoRA file {gguf}")
        self._adapters[name] = handle

    def unload_adapter(self, name: str) -> None:
        if self._active == name:
            self.use(None)
        self._lib.llama_lora_adapter_free(self._adapters.pop(name))

    def use(self, name: str | None) -> None:
        """Apply the loaded adapter ``name`` alone, or none (the base model)."""
        if name == self._active:
            return
        self._lib.llama_lora_adapter_clear(self._context)
        self._active = None
        if name is not None:
            status = self._lib.llama_lora_adapter_set(self._context, self._adapters[name], 1.0)
            if status != 0:
                raise AdapterError(f"ik_llama.cpp refused the adapter {name!r} (status {status})")
            self._active = name

    def clear(self) -> None:
        """Forget every position (the next decode starts at 0)."""
        self._api.llama_kv_cache_clear(self._context)
        self._position = 0

    def decode(self, tokens: list[int]) -> np.ndarray:
        """Feed ``tokens`` after the ones already fed; the last one's logits."""
        from ik_llama_cpp._internals import make_batch_range

        api = self._api
        for offset in range(0, len(tokens), self.n_batch):
            chunk = tokens[offset : offset + self.n_batch]
            last = offset + self.n_batch >= len(tokens)
            batch = make_batch_range(chunk, pos_start=self._position, logits_last=last)
            try:
                status = api.llama_decode(self._context, batch)
            finally:
                api.llama_batch_free(batch)
            if status != 0:
                raise RuntimeError(f"llama.cpp could not decode the prompt (status {status})")
            self._position += len(chunk)
        logits = api.llama_get_logits_ith(self._context, -1)
        return np.ctypeslib.as_array(logits, shape=(self.n_vocab,))

    def close(self) -> None:
        for name in list(self._adapters):
            self.unload_adapter(name)
        if self._context:
            self._api.llama_free(self._context)
            self._context = None
        if self._model:
            self._api.llama_free_model(self._model)
            self._model = None
