"""The adapter registry: every trained adapter, by name and version, in one folder.

Layout under ``settings.data_dir / "adapters"``::

    adapters/
      bindings.json                 a collection's default adapter: {"kb": "support", ...}
      <name>/
        promotions.json             the promoted versions in order: {"history": [1, 3]}
        <version>/                  1, 2, 3, ...
          adapter_config.json       the PEFT adapter (safetensors only)
          adapter_model.safetensors
          train_config.json         copied from the training run, where it wrote them
          prompt_template.json
          metrics.json
          loss.png
          adapter.gguf              its GGUF LoRA file, when it passed its llama.cpp parity check
          training-data.jsonl       the rows it was trained on, where the run had a dataset file
          manifest.json             what the adapter is: see :class:`AdapterRecord`

A version is written to a temporary folder and renamed into place, so a failed registration
leaves nothing behind. The last entry of ``promotions.json`` is the promoted version (its
manifest says ``promoted``; earlier ones say ``archived``); ``NAME`` alone means that version,
or the newest where none was promoted. The manifest records the base model's content hash, and
an adapter is refused on a generator whose weights differ (:func:`check_base`).

The manifest also records the documents the training rows came from (their ids and content
hashes). Erasing one of them (:meth:`AdapterRegistry.taint`) marks every version trained on it
as tainted, a fact in its manifest (which document, from which collection, when, by which
erasure), and rewrites its kept training rows without the document's; a tainted version is not
served, promoted or bound (:func:`check_untainted`) until it is retrained into a new version.

Torch and peft are imported only by :meth:`AdapterRegistry.merge`.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from assistant.core.errors import AdapterError, AdapterTaintedError
from assistant.core.files import read_json_object, write_json
from assistant.core.models import (
    LORA_GGUF,
    HFGenerator,
    check_adapter_folder,
    load_causal_lm,
    resolve_generator_path,
)
from assistant.core.prompt import TEMPLATE_FILE, PromptTemplate, load_template
from assistant.core.settings import Settings
from assistant.core.store.schema import check_name as check_collection_name
from assistant.core.training_rows import drop_rows_of

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from transformers import BatchEncoding, PreTrainedModel

Method = Literal["lora", "qlora", "prompt_tuning"]
Status = Literal["candidate", "promoted", "archived"]

MANIFEST = "manifest.json"
PROMOTIONS = "promotions.json"
BINDINGS = "bindings.json"
METRICS_FILE = "metrics.json"
RUN_FILES = ("train_config.json", TEMPLATE_FILE, METRICS_FILE, "loss.png")
"""Files copied from a training run's folder, where present (the PEFT files are in its
``adapter/`` subfolder)."""
TRAINING_DATA = "training-data.jsonl"
"""A version's training rows: what :func:`assistant.training.retrain_adapter` trains on again."""
BASE_HASHES = "base-hashes.json"
MERGE_RECORD = "lorag-merge.json"
BASE = "base"
"""The adapter reference that means the base model alone, even on a bound collection: no
adapter may take this name."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_REF = re.compile(rf"(?P<name>{_NAME.pattern})(?:@(?P<version>[1-9][0-9]*))?")
_RESERVED = frozenset({BINDINGS, BASE})

# Prompts on which a merged model must answer as the adapter does (see AdapterRegistry.merge).
_MERGE_CHECKS = (
    ("Where does the river flow?", "The river flows through the old town and into the sea."),
    ("Who won the prize?", "In 1911 Marie Curie won her second Nobel prize, in chemistry."),
    ("What is bread made of?", "Bread is made from flour, water, salt and yeast."),
)


@dataclass(frozen=True)
class TrainingOrigin:
    """Where an adapter comes from: the base it was trained on and the data it learnt from
    (``source_doc_hashes``: the content hash of each source document, where it is known)."""

    base_model: str
    base_hash: str
    method: Method
    dataset_fingerprint: str
    source_doc_ids: tuple[str, ...] = ()
    source_doc_hashes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        settings: Settings,
        *,
        method: Method,
        dataset_fingerprint: str,
        source_doc_ids: Sequence[str] = (),
        source_doc_hashes: Mapping[str, str] | None = None,
    ) -> TrainingOrigin:
        """The origin of an adapter trained now on the configured generator (the documents
        of ``source_doc_hashes`` count as source documents too)."""
        hashes = dict(sorted((source_doc_hashes or {}).items()))
        return cls(
            base_model=settings.generator.model,
            base_hash=base_model_hash(settings),
            method=method,
            dataset_fingerprint=dataset_fingerprint,
            source_doc_ids=tuple(sorted({*source_doc_ids, *hashes})),
            source_doc_hashes=hashes,
        )


@dataclass(frozen=True)
class Taint:
    """An erasure that reached an adapter version: a document it was trained on was deleted."""

    doc_id: str
    collection: str
    erased_at: str
    erasure_id: str
    trained_hash: str | None = None
    """The content hash of the document as the version was trained on it (``None``: unknown)."""

    def describe(self) -> str:
        """One phrase for messages: which document, erased from where and when."""
        return (
            f"document {self.doc_id} (erased from collection {self.collection!r} at "
            f"{self.erased_at}, erasure {self.erasure_id})"
        )


@dataclass(frozen=True)
class AdapterRecord:
    """One registered adapter version, as its ``manifest.json`` describes it."""

    name: str
    version: int
    adapter_dir: Path
    base_model: str
    base_hash: str
    method: Method
    dataset_fingerprint: str
    source_doc_ids: tuple[str, ...]
    created: str
    status: Status
    metrics: dict[str, Any] = field(default_factory=dict)
    lora_gguf_sha256: str | None = None
    """The sha256 of the version's ``adapter.gguf`` (its GGUF LoRA file, kept only when the
    adapter passed its llama.cpp parity check); ``None``: it has none and answers on
    transformers."""
    source_doc_hashes: dict[str, str] = field(default_factory=dict)
    """The content hash of each source document the version was trained on, where known."""
    tainted_by: tuple[Taint, ...] = ()
    """The erasures of documents it was trained on; any: it is tainted and not served."""

    @property
    def tainted(self) -> bool:
        """Whether a document this version was trained on has been erased."""
        return bool(self.tainted_by)

    @property
    def ref(self) -> str:
        """``NAME@VERSION``: how people name this version."""
        return f"{self.name}@{self.version}"

    @property
    def key(self) -> str:
        """The name to load this version under in a generator (PEFT names hold no ``.``)."""
        return self.ref.replace(".", "~")

    def template(self) -> PromptTemplate:
        """The prompt template the adapter was trained with (the default where none was saved)."""
        return load_template(self.adapter_dir)

    def manifest(self) -> dict[str, Any]:
        """The contents of ``manifest.json``."""
        data = asdict(self)
        del data["adapter_dir"]
        data["source_doc_ids"] = list(self.source_doc_ids)
        data["tainted_by"] = [asdict(taint) for taint in self.tainted_by]
        return data

    @classmethod
    def read(cls, folder: Path) -> AdapterRecord:
        """The version in ``folder`` (manifests written before taints were recorded read as
        untainted, with no content hashes)."""
        data = json.loads((folder / MANIFEST).read_text())
        data["source_doc_ids"] = tuple(data["source_doc_ids"])
        data["tainted_by"] = tuple(Taint(**taint) for taint in data.get("tainted_by", ()))
        return cls(adapter_dir=folder, **data)


@dataclass(frozen=True)
class TaintedVersion:
    """A version an erasure reached: its record, now tainted, and the training rows of the
    erased documents removed from its kept training data."""

    record: AdapterRecord
    rows_removed: int


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@VERSION`` split into the name and the version (``None``: not given)."""
    match = _REF.fullmatch(ref)
    if match is None:
        raise AdapterError(
            f"invalid adapter reference {ref!r}: use NAME or NAME@VERSION, where NAME is "
            "1-64 letters, digits, '_', '.' or '-' starting with a letter or digit, and "
            "VERSION is 1, 2, ..."
        )
    version = match["version"]
    return match["name"], None if version is None else int(version)


class AdapterRegistry:
    """Registered adapters under ``root``: register, look up, promote, roll back, bind, merge."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_settings(cls, settings: Settings) -> AdapterRegistry:
        """The registry in ``settings.data_dir / "adapters"``."""
        return cls(settings.data_dir / "adapters")

    # ----------------------------------------------------------------------- writing versions

    def register(
        self,
        name: str,
        run_dir: Path,
        origin: TrainingOrigin,
        *,
        version: int | None = None,
        dataset: Path | None = None,
    ) -> AdapterRecord:
        """Copy a finished training run (``run_dir/adapter/`` + its json/png files, and the
        ``dataset`` it trained on as :data:`TRAINING_DATA`) into a new version of ``name``:
        version 1 for a new name, else the explicit ``version`` asked for.

        Refused, leaving the registry as it was: an invalid or taken name without a new
        ``version``, a taken version, an adapter folder with pickle files or without
        ``adapter_model.safetensors``, an unreadable ``prompt_template.json``.
        """
        _check_name(name)
        existing = self._versions(name)
        listed = ", ".join(map(str, existing))
        if version is None:
            if existing:
                raise AdapterError(
                    f"adapter {name!r} already exists (versions {listed}); "
                    "pass --version to add one"
                )
            version = 1
        elif version < 1:
            raise AdapterError(f"an adapter version is 1, 2, 3, ...: got {version}")
        elif version in existing:
            raise AdapterError(
                f"adapter {name!r} already has version {version} (versions {listed}); "
                f"pass --version {max(existing) + 1} to add one"
            )
        if origin.method not in get_args(Method):
            methods = ", ".join(get_args(Method))
            raise AdapterError(f"unknown training method {origin.method!r} (one of: {methods})")
        adapter_src = run_dir / "adapter"
        check_adapter_folder(adapter_src)
        metrics = _read_run_json(run_dir / METRICS_FILE)
        template = _read_run_json(run_dir / TEMPLATE_FILE)
        if template:
            try:
                PromptTemplate.from_dict(template)
            except TypeError as exc:
                raise AdapterError(
                    f"{str(run_dir / TEMPLATE_FILE)!r} is not a prompt template: {exc}"
                ) from exc

        record = AdapterRecord(
            name=name,
            version=version,
            adapter_dir=self.root / name / str(version),
            base_model=origin.base_model,
            base_hash=origin.base_hash,
            method=origin.method,
            dataset_fingerprint=origin.dataset_fingerprint,
            source_doc_ids=origin.source_doc_ids,
            source_doc_hashes=origin.source_doc_hashes,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            status="candidate",
            metrics=metrics,
            lora_gguf_sha256=_sha256(adapter_src / LORA_GGUF),
        )
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            shutil.copytree(adapter_src, staging, dirs_exist_ok=True)
            for file in RUN_FILES:
                if (run_dir / file).is_file():
                    shutil.copy2(run_dir / file, staging / file)
            if dataset is not None:
                shutil.copyfile(dataset, staging / TRAINING_DATA)
            write_json(staging / MANIFEST, record.manifest())
            record.adapter_dir.parent.mkdir(exist_ok=True)
            os.replace(staging, record.adapter_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return record

    def delete(self, ref: str) -> builtins.list[AdapterRecord]:
        """Delete ``NAME@VERSION``, or with ``NAME`` every version; the deleted records.

        The promoted version of a name is not deleted alone: promote another version or roll
        back first (or delete the whole name). Collection bindings to what is deleted go too.
        """
        name, version = parse_ref(ref)
        if version is None:
            doomed = [self._read(name, v) for v in self._known_versions(name)]
            target = self.root / name
        else:
            record = self.get(ref)
            if record.status == "promoted":
                raise AdapterError(
                    f"{record.ref} is the promoted version of {name!r}: promote another "
                    f"version or roll back first, or delete the whole adapter {name!r}"
                )
            doomed, target = [record], record.adapter_dir
            self._write_history(name, _without(self._history(name), version))
        trash = Path(tempfile.mkdtemp(prefix=".deleting-", dir=self.root))
        os.replace(target, trash / "adapter")
        shutil.rmtree(trash)
        if version is not None and not self._versions(name):
            shutil.rmtree(self.root / name)
        self._write_bindings(
            {
                collection: bound
                for collection, bound in self.bindings().items()
                if not _points_into(bound, name, version)
            }
        )
        return doomed

    def taint(
        self, doc_ids: Collection[str], *, collection: str, erasure_id: str, erased_at: str
    ) -> builtins.list[TaintedVersion]:
        """Mark every version trained on one of ``doc_ids`` as tainted by this erasure (each
        document once: a version already tainted by it keeps its first taint) and rewrite its
        kept training data without the rows naming them; the versions reached.

        A document is matched by id alone, whatever collection it was erased from and whatever
        version of its content the adapter saw: erasing too much is the safe side.
        """
        erased = set(doc_ids)
        reached: builtins.list[TaintedVersion] = []
        for record in self.list():
            hit = sorted(erased.intersection(record.source_doc_ids))
            if not hit:
                continue
            known = {taint.doc_id for taint in record.tainted_by}
            added = tuple(
                Taint(
                    doc_id=doc,
                    collection=collection,
                    erased_at=erased_at,
                    erasure_id=erasure_id,
                    trained_hash=record.source_doc_hashes.get(doc),
                )
                for doc in hit
                if doc not in known
            )
            updated = replace(record, tainted_by=record.tainted_by + added)
            if added:
                write_json(updated.adapter_dir / MANIFEST, updated.manifest())
            rows = drop_rows_of(updated.adapter_dir / TRAINING_DATA, hit)
            reached.append(TaintedVersion(updated, rows))
        return reached

    # ----------------------------------------------------------------------- reading

    def list(self) -> builtins.list[AdapterRecord]:
        """Every registered version, by name then version."""
        if not self.root.is_dir():
            return []
        names = sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name)
        )
        return [self._read(name, version) for name in names for version in self._versions(name)]

    def get(self, ref: str) -> AdapterRecord:
        """The version ``ref`` names: ``NAME@VERSION``, or ``NAME`` for the promoted version
        (the newest where none is promoted)."""
        name, version = parse_ref(ref)
        versions = self._known_versions(name)
        if version is None:
            history = self._history(name)
            return self._read(name, history[-1] if history else versions[-1])
        if version not in versions:
            listed = ", ".join(map(str, versions))
            raise AdapterError(f"adapter {name!r} has no version {version} (versions: {listed})")
        return self._read(name, version)

    # ----------------------------------------------------------------------- promotion

    def promote(self, ref: str) -> AdapterRecord:
        """Make the version ``ref`` names the promoted one; the one promoted before is archived."""
        record = self.get(ref)
        history = self._history(record.name)
        if history and history[-1] == record.version:
            return record
        check_untainted(record)
        self._write_history(record.name, [*history, record.version])
        if history:
            self._set_status(record.name, history[-1], "archived")
        return self._set_status(record.name, record.version, "promoted")

    def rollback(self, name: str) -> AdapterRecord:
        """Promote again the version promoted before the current one; it is returned."""
        _check_name(name)
        self._known_versions(name)
        history = self._history(name)
        if len(history) < 2:
            now = f" (promoted: version {history[-1]})" if history else " (none is promoted)"
            raise AdapterError(f"adapter {name!r} has no earlier promoted version{now}")
        check_untainted(self._read(name, history[-2]))
        self._write_history(name, history[:-1])
        self._set_status(name, history[-1], "archived")
        return self._set_status(name, history[-2], "promoted")

    # ----------------------------------------------------------------------- bindings

    def bind(self, collection: str, ref: str | None) -> None:
        """Make ``ref`` (``NAME`` follows promotions, ``NAME@VERSION`` pins one) the default
        adapter of ``collection``; ``None`` removes the binding."""
        bindings = self.bindings()
        check_collection_name(collection)
        if ref == BASE:
            raise AdapterError(
                f"{BASE!r} is no adapter: a collection answers with the base model when it is "
                "bound to none, so remove its binding instead"
            )
        if ref is None:
            bindings.pop(collection, None)
        else:
            check_untainted(self.get(ref))
            bindings[collection] = ref
        self._write_bindings(bindings)

    def binding(self, collection: str) -> str | None:
        """The adapter reference bound to ``collection``, if any."""
        return self.bindings().get(collection)

    def bindings(self) -> dict[str, str]:
        """Every collection's bound adapter reference."""
        path = self.root / BINDINGS
        return dict(json.loads(path.read_text())) if path.is_file() else {}

    # ----------------------------------------------------------------------- merging

    def merge(self, ref: str, out_dir: Path, settings: Settings) -> Path:
        """Write the base model with the adapter ``ref`` merged in to ``out_dir`` (safetensors,
        with the tokenizer, the prompt template and the adapter's manifest); ``out_dir``.

        The base is loaded in float32 (a QLoRA adapter, trained on a 4-bit base, is merged into
        the full-precision weights). Before anything is written the merged model must give the
        same logits as base + adapter on a few sample prompts, else :class:`AdapterError`.
        ``out_dir`` appears whole or not at all; an existing one is refused.
        """
        import torch
        from peft import PeftModel

        record = self.get(ref)
        check_base(record, settings)
        out_dir = out_dir.expanduser()
        if out_dir.exists():
            raise AdapterError(f"{str(out_dir)!r} already exists: merge into a new folder")
        base, tokenizer = load_causal_lm(settings, dtype=torch.float32)
        renderer = HFGenerator(base, tokenizer, settings.generator.model)
        template = record.template()
        prompts = [
            tokenizer(
                renderer.render(template.messages(question, [template.format_text(1, text)])),
                add_special_tokens=False,
                return_tensors="pt",
            ).to(base.device)
            for question, text in _MERGE_CHECKS
        ]
        with warnings.catch_warnings():  # peft 0.21 reads a property that transformers 5 deprecates
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`")
            model = PeftModel.from_pretrained(base, str(record.adapter_dir))
        model.eval()
        unmerged = _logits(model, prompts)
        merged = model.merge_and_unload()
        gap = max(
            float((a - b).abs().max())
            for a, b in zip(unmerged, _logits(merged, prompts), strict=True)
        )
        scale = max(float(a.abs().max()) for a in unmerged)
        if gap > 1e-3 * max(scale, 1.0):
            raise AdapterError(
                f"merging {record.ref} changed the model's outputs (logits differ by up to "
                f"{gap:.2e}); nothing was written to {str(out_dir)!r}"
            )
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
        try:
            merged.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            write_json(staging / TEMPLATE_FILE, template.to_dict())
            write_json(staging / MERGE_RECORD, record.manifest())
            os.replace(staging, out_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return out_dir

    def export(self, ref: str, out_file: Path, settings: Settings) -> Path:
        """Write the adapter ``ref`` as a GGUF LoRA file (llama.cpp's and Ollama's adapter
        format) at ``out_file``, which must not exist yet; ``out_file``."""
        from assistant.core.models.lora_gguf import export_lora_gguf

        record = self.get(ref)
        check_base(record, settings)
        out_file = out_file.expanduser()
        if out_file.exists():
            raise AdapterError(f"{str(out_file)!r} already exists: export to a new file")
        return export_lora_gguf(record.adapter_dir, resolve_generator_path(settings), out_file)

    # ----------------------------------------------------------------------- internals

    def _versions(self, name: str) -> builtins.list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(
            int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / MANIFEST).is_file()
        )

    def _known_versions(self, name: str) -> builtins.list[int]:
        """The versions of ``name``; an unknown name raises, listing the known ones."""
        versions = self._versions(name)
        if not versions:
            known = ", ".join(sorted({record.name for record in self.list()})) or "none yet"
            raise AdapterError(f"unknown adapter {name!r} (adapters: {known})")
        return versions

    def _read(self, name: str, version: int) -> AdapterRecord:
        return AdapterRecord.read(self.root / name / str(version))

    def _set_status(self, name: str, version: int, status: Status) -> AdapterRecord:
        updated = replace(self._read(name, version), status=status)
        write_json(updated.adapter_dir / MANIFEST, updated.manifest())
        return updated

    def _history(self, name: str) -> builtins.list[int]:
        path = self.root / name / PROMOTIONS
        return list(json.loads(path.read_text())["history"]) if path.is_file() else []

    def _write_history(self, name: str, history: builtins.list[int]) -> None:
        write_json(self.root / name / PROMOTIONS, {"history": history})

    def _write_bindings(self, bindings: dict[str, str]) -> None:
        if bindings or (self.root / BINDINGS).exists():
            write_json(self.root / BINDINGS, dict(sorted(bindings.items())))


def check_base(record: AdapterRecord, settings: Settings) -> None:
    """Refuse ``record`` unless it was trained on the configured generator's weights.

    The weights decide (the content hash): the same model under another folder or id passes.
    """
    configured = base_model_hash(settings)
    if record.base_hash != configured:
        raise AdapterError(
            f"adapter {record.ref} was trained on {record.base_model!r} "
            f"(weights sha256 {record.base_hash[:12]}), not on the configured generator "
            f"{settings.generator.model!r} (weights sha256 {configured[:12]}); set "
            "generator.model (env LORAG_GENERATOR__MODEL) to the adapter's base model"
        )


def check_untainted(record: AdapterRecord) -> None:
    """Refuse ``record`` when a document it was trained on has been erased, naming it."""
    if not record.tainted:
        return
    erased = "; ".join(taint.describe() for taint in record.tainted_by)
    raise AdapterTaintedError(
        f"adapter {record.ref} is tainted: it was trained on {erased}, so it is not served, "
        f"promoted or bound; rebuild it without the erased data with `lorag adapters retrain "
        f"{record.ref}` (then promote the new version), or use another version or the base model"
    )


def base_model_hash(settings: Settings) -> str:
    """sha256 over the generator folder's ``*.safetensors`` files and ``config.json``.

    Computed once per folder and cached in ``cache_dir/models/base-hashes.json`` under the
    folder's path with the files' sizes and modification times; a changed file is hashed again.
    """
    folder = resolve_generator_path(settings).resolve()
    files = sorted(
        p for p in folder.iterdir() if p.suffix == ".safetensors" or p.name == "config.json"
    )
    signature = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    cache = settings.cache_dir / "models" / BASE_HASHES
    try:
        entries: dict[str, Any] = json.loads(cache.read_text()) if cache.is_file() else {}
    except ValueError:  # a damaged cache is rebuilt
        entries = {}
    entry = entries.get(str(folder))
    if entry is not None and entry["files"] == signature:
        return str(entry["sha256"])
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    entries[str(folder)] = {"files": signature, "sha256": digest.hexdigest()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_json(cache, entries)
    return digest.hexdigest()


def _logits(model: PeftModel | PreTrainedModel, prompts: list[BatchEncoding]) -> list[torch.Tensor]:
    import torch

    with torch.no_grad():
        return [model(**prompt).logits.float() for prompt in prompts]


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise AdapterError(
            f"invalid adapter name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    if name in _RESERVED:
        raise AdapterError(f"{name!r} is reserved in the registry: choose another name")


def _without(history: list[int], version: int) -> list[int]:
    """``history`` without ``version``, runs of one version left behind joined into one."""
    kept: list[int] = []
    for entry in history:
        if entry != version and kept[-1:] != [entry]:
            kept.append(entry)
    return kept


def _points_into(bound: str, name: str, version: int | None) -> bool:
    """Whether the bound reference ``bound`` names ``name`` (every version when ``version`` is
    ``None``) or exactly ``name@version``."""
    bound_name, bound_version = parse_ref(bound)
    return bound_name == name and (version is None or bound_version == version)


def _sha256(path: Path) -> str | None:
    """The sha256 of the file at ``path``, or ``None`` when there is none."""
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_lora_gguf(record: AdapterRecord) -> None:
    """Refuse a version whose ``adapter.gguf`` is not the file its manifest recorded."""
    found = _sha256(record.adapter_dir / LORA_GGUF)
    if found != record.lora_gguf_sha256:
        raise AdapterError(
            f"adapter {record.ref}: {LORA_GGUF} does not match its manifest (sha256 "
            f"{found or 'missing'}, recorded {record.lora_gguf_sha256 or 'none'}); register it "
            "again or delete the file"
        )


def _read_run_json(path: Path) -> dict[str, Any]:
    """A JSON object a training run wrote (``{}`` where the file is absent)."""
    return read_json_object(path, AdapterError) if path.is_file() else {}
