"""A PEFT LoRA adapter written as a GGUF LoRA file, the adapter format of llama.cpp and Ollama.

What llama.cpp's own ``convert_lora_to_gguf.py`` writes, for the architectures lorag trains:
``general.type = adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``, and for each
adapted linear layer its ``lora_a`` (PEFT's ``lora_A``, rank x in) and ``lora_b`` (``lora_B``,
out x rank) under the GGUF tensor name of the layer (``blk.0.attn_q.weight.lora_a``). llama.cpp
computes the scale alpha / rank itself. Llama-family GGUFs hold the query and key weights with
their rows permuted for llama.cpp's rotary embedding, so an adapter's ``lora_b`` of those two
layers is permuted the same way; Qwen2/Qwen3 GGUFs keep the Hugging Face order.

That script is not installable as a package (it ships only inside llama.cpp's source tree), so
this module does its job with the ``gguf`` library it uses. It writes through a temporary file,
so a failed export leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from assistant.core.errors import AdapterError
from assistant.core.files import read_json_object
from assistant.core.models.adapter_folder import check_adapter_folder

# Hugging Face architecture → (gguf architecture name, whether q/k rows are permuted).
ARCHITECTURES: dict[str, tuple[str, bool]] = {
    "LlamaForCausalLM": ("LLAMA", True),
    "MistralForCausalLM": ("LLAMA", True),
    "Qwen2ForCausalLM": ("QWEN2", False),
    "Qwen3ForCausalLM": ("QWEN3", False),
}
LORA_GGUF = "adapter.gguf"
"""An adapter folder's GGUF LoRA file, where the registry writes it (after its parity check)."""
_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<half>[AB])\.weight$")


def export_lora_gguf(adapter_dir: Path, base_dir: Path, out_file: Path) -> Path:
    """Write the PEFT adapter in ``adapter_dir`` (trained on the model in ``base_dir``, whose
    ``config.json`` is read) as a GGUF LoRA file at ``out_file``; ``out_file``.

    Refused with :class:`AdapterError`: an architecture or adapted layer llama.cpp's format has
    no name for (a layer number beyond the base's included), DoRA or rank-stabilised adapters
    (their scale is not alpha / rank).
    """
    import gguf
    from safetensors.numpy import load_file

    adapter_config = check_adapter_folder(adapter_dir)
    base_config = read_json_object(base_dir / "config.json", AdapterError)
    arch_name, permuted = _architecture(base_config)
    if adapter_config.get("use_dora") or adapter_config.get("use_rslora"):
        raise AdapterError(
            "this adapter uses DoRA or rank-stabilised LoRA, which the GGUF LoRA format (scale "
            "alpha / rank) cannot express: train it without them to export it"
        )
    arch = gguf.MODEL_ARCH[arch_name]
    layers = int(base_config["num_hidden_layers"])
    names = gguf.get_tensor_name_map(arch, layers)
    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))

    tensors: dict[str, np.ndarray] = {}
    for key in sorted(weights):
        match = _LORA_KEY.match(key)
        if match is None:
            raise AdapterError(f"adapter tensor {key!r} is not a LoRA A/B weight: cannot export it")
        module = match["module"]
        name = names.get_name(module)
        if name is None:
            raise AdapterError(
                f"adapted layer {module!r} has no name in llama.cpp's {arch_name.lower()} GGUF "
                "layout: cannot export it"
            )
        data = weights[key].astype(np.float32)
        if match["half"] == "B" and permuted and module.endswith(("q_proj", "k_proj")):
            data = _permute_rows(data, base_config, module.endswith("k_proj"))
        tensors[f"{name}.weight.lora_{match['half'].lower()}"] = data

    out_file = out_file.expanduser()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".export-", suffix=".gguf", dir=out_file.parent)
    os.close(handle)
    try:
        writer = gguf.GGUFWriter(temporary, gguf.MODEL_ARCH_NAMES[arch])
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(adapter_config["lora_alpha"]))
        for name, data in tensors.items():
            writer.add_tensor(name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(temporary, out_file)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return out_file


def lora_file_for(adapter_dir: Path, base_dir: Path, exports: Path) -> Path:
    """The GGUF LoRA file of the PEFT adapter in ``adapter_dir``: its own ``adapter.gguf``,
    else one exported once under ``exports``, named by the adapter's and the base's content."""
    shipped = adapter_dir / LORA_GGUF
    if shipped.is_file():
        return shipped
    digest = hashlib.sha256()
    for file in (
        adapter_dir / "adapter_config.json",
        adapter_dir / "adapter_model.safetensors",
        base_dir / "config.json",
    ):
        digest.update(file.read_bytes() if file.is_file() else b"-")
    out = exports / f"{digest.hexdigest()[:32]}.gguf"
    return out if out.is_file() else export_lora_gguf(adapter_dir, base_dir, out)


def _architecture(config: dict[str, Any]) -> tuple[str, bool]:
    known = [ARCHITECTURES[a] for a in config.get("architectures", []) if a in ARCHITECTURES]
    if not known:
        raise AdapterError(
            f"the base model's architecture {config.get('architectures')} cannot be exported as "
            f"a GGUF LoRA here (supported: {', '.join(ARCHITECTURES)})"
        )
    return known[0]


def _permute_rows(rows: np.ndarray, config: dict[str, Any], is_key: bool) -> np.ndarray:
    """``rows`` (a q or k projection's output rows) in the order llama.cpp's Llama GGUFs use:
    each head's two rotary halves interleaved (as llama.cpp's converter permutes the weights)."""
    heads = int(config["num_attention_heads"])
    if is_key:
        heads = int(config.get("num_key_value_heads") or heads)
    shape = rows.shape
    return rows.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
