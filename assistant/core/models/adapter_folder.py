"""What makes a folder a PEFT adapter lorag will load: safetensors weights, a config, no pickles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.core.errors import AdapterError
from assistant.core.files import read_json_object

PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})


def check_adapter_folder(folder: Path) -> dict[str, Any]:
    """The ``adapter_config.json`` of the PEFT adapter folder ``folder``, checked to be loadable
    safely: refused with :class:`AdapterError` if missing, incomplete or holding pickle files."""
    if not folder.is_dir():
        raise AdapterError(f"adapter folder {str(folder)!r} does not exist")
    pickles = sorted(p.name for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise AdapterError(
            f"adapter folder {str(folder)!r} holds pickle files ({', '.join(pickles)}), which "
            "can run code when loaded; only safetensors adapters are accepted"
        )
    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        raise AdapterError(f"{str(folder)!r} is not a PEFT adapter: no adapter_config.json")
    if not (folder / "adapter_model.safetensors").is_file():
        raise AdapterError(f"{str(folder)!r} has no adapter_model.safetensors")
    return read_json_object(config_file, AdapterError)
