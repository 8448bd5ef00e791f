"""Where and how models run: torch's thread count, the dtype a setting resolves to, and
loading without transformers' progress bars."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from assistant.core.settings import DType, Settings

if TYPE_CHECKING:
    import torch

BNB_HUB_KERNEL_LOGGER = "bitsandbytes.backends.cpu.ops"
"""On CPUs with AVX512-BF16, importing bitsandbytes logs a warning that it could not fetch a 4-bit
kernel from the Hugging Face hub (``pip install kernels``). lorag runs offline and bitsandbytes
falls back to its built-in CPU kernel, so :func:`configure_threads` raises this logger to ERROR."""


def configure_threads(settings: Settings) -> int:
    """Set torch's intra-op thread count: ``settings.threads`` or the cores this process may use.

    Called before any model loads; it also quiets bitsandbytes' hub-kernel hint
    (:data:`BNB_HUB_KERNEL_LOGGER`)."""
    import torch

    logging.getLogger(BNB_HUB_KERNEL_LOGGER).setLevel(logging.ERROR)

    if settings.threads is not None:
        threads = settings.threads
    elif hasattr(os, "sched_getaffinity"):
        threads = len(os.sched_getaffinity(0))
    else:
        threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


def decode_threads(settings: Settings, threads: int) -> int:
    """llama.cpp's threads per generated token: ``generator.decode_threads``, else half of
    ``threads`` (the prompt's), at least 1."""
    return settings.generator.decode_threads or max(1, threads // 2)


def resolve_dtype(name: DType, device: str) -> torch.dtype:
    """The torch dtype for a ``dtype`` setting on ``device``.

    ``auto``: on CUDA bfloat16 where supported, else float16; on CPU bfloat16 when the CPU has
    native bf16 instructions (AVX512-BF16 or AMX; ~1.5-2.5x faster than float32 for our models
    with the same embeddings and answers), else float32; float32 on any other device.
    """
    import torch

    if name != "auto":
        return getattr(torch, name)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # torch.backends.cpu.get_cpu_capability() says "AVX512" with or without bf16; this probe is
    # private (hence getattr), and torch falls back to float32 where it is gone.
    has_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    if device == "cpu" and has_bf16():
        return torch.bfloat16
    return torch.float32


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Load weights without transformers' per-file progress bars (one per model, each start)."""
    from transformers.utils import logging as transformers_logging

    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            transformers_logging.enable_progress_bar()
