"""The adapter registry on real PEFT LoRA adapters of the tiny model: versions, refusals that
leave the registry as it was, promotion and rollback, bindings, base checks, merging, serving."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from assistant.core.errors import AdapterError, ConfigError
from assistant.core.models import LORA_GGUF, PICKLE_SUFFIXES, load_generator
from assistant.core.prompt import DEFAULT_TEMPLATE
from assistant.core.registry import (
    BASE_HASHES,
    MANIFEST,
    MERGE_RECORD,
    RUN_FILES,
    TRAINING_DATA,
    AdapterRegistry,
    TrainingOrigin,
    base_model_hash,
    check_base,
    check_lora_gguf,
)
from assistant.core.settings import GeneratorSettings, Settings
from tests.core.test_models import QUESTION, make_lora


@pytest.fixture(scope="module")
def loras(tiny_generator_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("loras")
    return [make_lora(tiny_generator_dir, root / f"lora-{seed}", seed) for seed in (1, 2, 3)]


def make_run(folder: Path, lora: Path, loss: float = 1.25) -> Path:
    """A finished training run's folder: the adapter and the files a run writes beside it."""
    shutil.copytree(lora, folder / "adapter")
    (folder / "train_config.json").write_text(json.dumps({"method": "lora", "rank": 4}))
    (folder / "prompt_template.json").write_text(json.dumps(DEFAULT_TEMPLATE.to_dict()))
    (folder / "metrics.json").write_text(json.dumps({"eval_loss": loss}))
    (folder / "loss.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "checkpoint-10").mkdir()  # what a run leaves that the registry does not keep
    return folder


@pytest.fixture
def runs(tmp_path: Path, loras: list[Path]) -> list[Path]:
    return [make_run(tmp_path / f"run-{i}", lora, 1.0 + i) for i, lora in enumerate(loras)]


@pytest.fixture
def registry(tiny_settings: Settings) -> AdapterRegistry:
    return AdapterRegistry.for_settings(tiny_settings)


@pytest.fixture
def origin(tiny_settings: Settings) -> TrainingOrigin:
    return TrainingOrigin.of(
        tiny_settings, method="lora", dataset_fingerprint="f" * 64, source_doc_ids=["d2", "d1"]
    )


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the sha256 of its content."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_register_copies_the_run_into_version_1(
    registry: AdapterRegistry,
    origin: TrainingOrigin,
    runs: list[Path],
    loras: list[Path],
    tiny_settings: Settings,
) -> None:
    record = registry.register("support", runs[0], origin)
    assert record.adapter_dir == registry.root / "support" / "1"
    assert (record.name, record.version, record.ref, record.status) == (
        "support",
        1,
        "support@1",
        "candidate",
    )
    assert record.base_model == tiny_settings.generator.model
    assert record.base_hash == base_model_hash(tiny_settings)
    assert record.source_doc_ids == ("d1", "d2")
    assert record.metrics == {"eval_loss": 1.0}
    assert record.template() == DEFAULT_TEMPLATE

    peft_files = {path.name for path in loras[0].iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= peft_files
    assert {path.name for path in record.adapter_dir.iterdir()} == (
        peft_files | set(RUN_FILES) | {MANIFEST}
    )
    assert (record.adapter_dir / "adapter_model.safetensors").read_bytes() == (
        loras[0] / "adapter_model.safetensors"
    ).read_bytes()
    manifest = json.loads((record.adapter_dir / MANIFEST).read_text())
    assert manifest == {
        "name": "support",
        "version": 1,
        "base_model": tiny_settings.generator.model,
        "base_hash": record.base_hash,
        "method": "lora",
        "dataset_fingerprint": "f" * 64,
        "source_doc_ids": ["d1", "d2"],
        "created": record.created,
        "status": "candidate",
        "metrics": {"eval_loss": 1.0},
        "lora_gguf_sha256": None,
        "source_doc_hashes": {},
        "tainted_by": [],
    }
    assert registry.list() == [record]
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".")]  # no staging left


def test_an_existing_name_needs_a_new_version(
    registry: AdapterRegistry, origin: TrainingOrigin, runs: list[Path]
) -> None:
    registry.register("support", runs[0], origin)
    before = snapshot(registry.root)
    with pytest.raises(AdapterError) as caught:
        registry.register("support", runs[1], origin)
    assert str(caught.value) == (
        "adapter 'support' already exists (versions 1); pass --version to add one"
    )
    assert snapshot(registry.root) == before

    second = registry.register("support", runs[1], origin, version=2)
    assert second.version == 2
    assert second.metrics == {"eval_loss": 2.0}
    before = snapshot(registry.root)
    with pytest.raises(AdapterError, match=r"already exists \(versions 1, 2\)"):
        registry.register("support", runs[2], origin)
    with pytest.raises(AdapterError, match=r"already has version 2 .* --version 3"):
        registry.register("support", runs[2], origin, version=2)
    with pytest.raises(AdapterError, match="1, 2, 3"):
        registry.register("support", runs[2], origin, version=0)
    assert snapshot(registry.root) == before
    assert [record.ref for record in registry.list()] == ["support@1", "support@2"]


@pytest.mark.parametrize("suffix", sorted(PICKLE_SUFFIXES))
def test_a_run_with_pickle_files_is_refused(
    registry: AdapterRegistry, origin: TrainingOrigin, runs: list[Path], suffix: str
) -> None:
    registry.register("support", runs[0], origin)
    before = snapshot(registry.root)
    (runs[1] / "adapter" / f"optimizer{suffix}").write_bytes(b"could run code")
    with pytest.raises(AdapterError, match=f"pickle files \\(optimizer\\{suffix}\\)"):
        registry.register("other", runs[1], origin)
    assert snapshot(registry.root) == before


def test_a_run_without_safetensors_weights_is_refused(
    registry: AdapterRegistry, origin: TrainingOrigin, runs: list[Path], tmp_path: Path
) -> None:
    (runs[0] / "adapter" / "adapter_model.safetensors").unlink()
    with pytest.raises(AdapterError, match=r"no adapter_model\.safetensors"):
        registry.register("support", runs[0], origin)
    with pytest.raises(AdapterError, match="does not exist"):
        registry.register("support", tmp_path / "no-run", origin)
    assert snapshot(registry.root) == {}


@pytest.mark.parametrize(
    "name", ["", "-x", ".hidden", "a/b", "a@1", "é", "x" * 65, "bindings.json", "base"]
)
def test_invalid_names_are_refused(
    registry: AdapterRegistry, origin: TrainingOrigin, runs: list[Path], name: str
) -> None:
    with pytest.raises(AdapterError, match=r"name|reserved"):
        registry.register(name, runs[0], origin)
    assert snapshot(registry.root) == {}


def test_get_by_name_and_version(
    registry: AdapterRegistry, origin: TrainingOrigin, runs: list[Path]
) -> None:
    registry.register("support", runs[0], origin)
    registry.register("support", runs[1], origin, version=2)
    registry.register("legal.v2", runs[2], origin)
    assert registry.get("support").version == 2  # none promoted: the newest
    assert registry.get("support@1").metrics == {"eval_loss": 1.0}
    assert registry.get("legal.v2@1").name == "legal.v2"
    with pytest.raises(AdapterError) as caught:
        registry.get("sales")
    assert str(caught.value) == "unknown adapter 'sales' (adapters: legal.v2, support)"
    with pytest.raises(AdapterError, match=r"'support' has no version 7 \(versions: 1, 2\)"):
        registry.get("support@7")
    for ref in ("support@0", "support@x", "support@", "@1"):
        with pytest.raises(AdapterError, match="NAME@VERSION"):
            registry.get(ref)


def test_an_empty_registry_lists_nothing(registry: AdapterRegistry) -> None:
    assert registry.list() == []
    with pytest.raises(AdapterError, match=r"\(adapters: none yet\)"):
        registry.get("support")


def test_promote_and_rollback(
    registry: AdapterRegistry, origin: TrainingOrigin, runs: list[Path]
) -> None:
    for version, run in enumerate(runs, start=1):
        registry.register("support", run, origin, version=version)
    with pytest.raises(AdapterError, match=r"no earlier promoted version \(none is promoted\)"):
        registry.rollback("support")

    assert registry.promote("support@1").status == "promoted"
    assert registry.get("support").version == 1  # the promoted one, not the newest
    assert registry.promote("support@1").status == "promoted"  # again: nothing changes
    registry.promote("support@3")

    def statuses() -> list[str]:
        return [record.status for record in registry.list()]

    assert statuses() == ["archived", "candidate", "promoted"]
    assert registry.get("support").version == 3

    back = registry.rollback("support")
    assert (back.version, back.status) == (1, "promoted")
    assert statuses() == ["promoted", "candidate", "archived"]
    manifest = json.loads((registry.get("support@1").adapter_dir / MANIFEST).read_text())
    assert manifest["status"] == "promoted"
    with pytest.raises(AdapterError, match=r"no earlier .* \(promoted: version 1\)"):
        registry.rollback("support")
    with pytest.raises(AdapterError, match="unknown adapter 'sales'"):
        registry.rollback("sales")


def test_delete_a_version_or_a_whole_adapter(
    registry: AdapterRegistry, origin: TrainingOrigin, runs: list[Path]
) -> None:
    for version, run in enumerate(runs, start=1):
        registry.register("support", run, origin, version=version)
    registry.promote("support@1")
    registry.promote("support@2")
    registry.promote("support@1")
    registry.bind("kb", "support@3")
    registry.bind("notes", "support")

    with pytest.raises(AdapterError, match="support@1 is the promoted version"):
        registry.delete("support@1")
    assert [record.ref for record in registry.delete("support@3")] == ["support@3"]
    assert registry.bindings() == {"notes": "support"}  # the binding to the deleted version went
    assert [record.version for record in registry.list()] == [1, 2]

    registry.delete("support@2")  # promoted once: the history forgets it
    with pytest.raises(AdapterError, match=r"\(promoted: version 1\)"):
        registry.rollback("support")

    assert [record.ref for record in registry.delete("support")] == ["support@1"]
    assert registry.list() == []
    assert registry.bindings() == {}
    assert sorted(path.name for path in registry.root.iterdir()) == ["bindings.json"]
    with pytest.raises(AdapterError, match="unknown adapter 'support'"):
        registry.delete("support")


def test_collections_bind_a_default_adapter(
    registry: AdapterRegistry, origin: TrainingOrigin, runs: list[Path]
) -> None:
    registry.register("support", runs[0], origin)
    assert registry.binding("kb") is None
    registry.bind("kb", "support")
    registry.bind("notes", "support@1")
    assert registry.binding("kb") == "support"
    assert json.loads((registry.root / "bindings.json").read_text()) == {
        "kb": "support",
        "notes": "support@1",
    }
    with pytest.raises(AdapterError, match="unknown adapter 'sales'"):
        registry.bind("kb", "sales")
    with pytest.raises(AdapterError, match=r"'base' is no adapter: .* remove its binding"):
        registry.bind("kb", "base")
    assert registry.binding("kb") == "support"
    with pytest.raises(ConfigError, match="invalid collection name"):
        registry.bind("no such/collection", "support")
    registry.bind("kb", None)
    assert registry.binding("kb") is None
    assert registry.bindings() == {"notes": "support@1"}


def test_base_hash_is_cached_and_follows_the_weights(
    tiny_settings: Settings, tiny_generator_dir: Path, tmp_path: Path
) -> None:
    copy = shutil.copytree(tiny_generator_dir, tmp_path / "copy")
    settings = tiny_settings.model_copy(update={"generator": GeneratorSettings(model=str(copy))})
    first = base_model_hash(tiny_settings)
    assert base_model_hash(settings) == first  # the same weights in another folder
    cache = json.loads((tiny_settings.cache_dir / "models" / BASE_HASHES).read_text())
    assert {entry["sha256"] for entry in cache.values()} == {first}
    assert set(cache) == {str(tiny_generator_dir.resolve()), str(copy.resolve())}

    config = json.loads((copy / "config.json").read_text())
    config["rms_norm_eps"] = 1e-5
    (copy / "config.json").write_text(json.dumps(config))
    assert base_model_hash(settings) != first
    assert base_model_hash(tiny_settings) == first


def test_an_adapter_for_other_weights_is_refused(
    registry: AdapterRegistry,
    origin: TrainingOrigin,
    runs: list[Path],
    tiny_settings: Settings,
    tiny_generator_dir: Path,
    tmp_path: Path,
) -> None:
    record = registry.register("support", runs[0], origin)
    check_base(record, tiny_settings)
    moved = shutil.copytree(tiny_generator_dir, tmp_path / "moved")
    same = tiny_settings.model_copy(update={"generator": GeneratorSettings(model=str(moved))})
    check_base(record, same)  # the same weights under another name pass

    (moved / "model.safetensors").write_bytes(b"other weights")
    with pytest.raises(AdapterError) as caught:
        check_base(record, same)
    message = str(caught.value)
    assert f"trained on {str(tiny_generator_dir)!r} (weights sha256 {record.base_hash[:12]})" in (
        message
    )
    assert f"not on the configured generator {str(moved)!r}" in message
    assert "generator.model" in message
    with pytest.raises(AdapterError, match="not on the configured generator"):
        registry.merge("support", tmp_path / "merged", same)
    assert not (tmp_path / "merged").exists()


def make_qlora(base_dir: Path, out: Path, seed: int) -> Path:
    """A LoRA adapter made the QLoRA way, on the base loaded in 4 bits (NF4), its weights
    perturbed so it changes answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    nf4 = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32
    )
    base = AutoModelForCausalLM.from_pretrained(base_dir, quantization_config=nf4)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`")
        peft = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, weight in peft.named_parameters():
            if "lora_" in name:
                weight.copy_(torch.randn(weight.shape, generator=generator) * 0.5)
    peft.save_pretrained(out)
    return out


def check_merged(merged_dir: Path, base_dir: Path, adapter_dir: Path) -> None:
    """The merged model gives base (float32) + adapter's logits and greedy answer, and they
    differ from the base's."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    inputs = tokenizer(
        tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True),
        add_special_tokens=False,
        return_tensors="pt",
    )
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`")
        adapted = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    plain = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    assert merged.dtype == torch.float32
    assert getattr(merged.config, "quantization_config", None) is None
    with torch.no_grad():
        expected = adapted(**inputs).logits
        got = merged(**inputs).logits
        untouched = plain(**inputs).logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got, untouched, atol=1e-2)  # the adapter is really in there
    same = {"max_new_tokens": 12, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    assert torch.equal(merged.generate(**inputs, **same), adapted.generate(**inputs, **same))


def test_merge_writes_a_model_that_answers_as_base_plus_adapter(
    registry: AdapterRegistry,
    origin: TrainingOrigin,
    runs: list[Path],
    tiny_settings: Settings,
    tiny_generator_dir: Path,
    tmp_path: Path,
) -> None:
    record = registry.register("support", runs[0], origin)
    out = registry.merge("support", tmp_path / "merged", tiny_settings)
    assert out == tmp_path / "merged"
    files = {path.name for path in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "prompt_template.json"} <= files
    assert MERGE_RECORD in files
    assert not [name for name in files if Path(name).suffix in PICKLE_SUFFIXES]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".merged")]  # no staging left
    assert json.loads((out / MERGE_RECORD).read_text()) == record.manifest()
    check_merged(out, tiny_generator_dir, record.adapter_dir)

    with pytest.raises(AdapterError, match="already exists"):
        registry.merge("support", out, tiny_settings)


def test_a_qlora_adapter_is_merged_into_the_full_precision_base(
    registry: AdapterRegistry, tiny_settings: Settings, tiny_generator_dir: Path, tmp_path: Path
) -> None:
    qlora = make_qlora(tiny_generator_dir, tmp_path / "qlora", seed=4)
    origin = TrainingOrigin.of(tiny_settings, method="qlora", dataset_fingerprint="q" * 64)
    record = registry.register("support-q", make_run(tmp_path / "run", qlora), origin)
    assert record.method == "qlora"
    out = registry.merge("support-q", tmp_path / "merged", tiny_settings)
    check_merged(out, tiny_generator_dir, record.adapter_dir)


def test_export_writes_the_adapter_as_a_gguf_lora(
    registry: AdapterRegistry,
    origin: TrainingOrigin,
    runs: list[Path],
    tiny_settings: Settings,
    tmp_path: Path,
) -> None:
    import gguf
    import numpy as np
    from safetensors.numpy import load_file
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    record = registry.register("support", runs[0], origin)
    out = registry.export("support", tmp_path / "support.gguf", tiny_settings)
    reader = gguf.GGUFReader(out)
    fields = {name: field.contents() for name, field in reader.fields.items()}
    assert fields["general.architecture"] == "llama"
    assert fields["general.type"] == "adapter"
    assert fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == 8.0
    exported = {t.name: np.asarray(t.data) for t in reader.tensors}
    peft = load_file(str(record.adapter_dir / "adapter_model.safetensors"))
    assert len(exported) == len(peft) == 8  # q and v of 2 layers, A and B each
    config = json.loads((Path(tiny_settings.generator.model) / "config.json").read_text())
    # transformers' own GGUF reader undoes llama.cpp's q/k row order: an independent check of it
    unpermute = LlamaTensorProcessor(config)
    for layer in range(2):
        for hf, name in (("q_proj", "attn_q"), ("v_proj", "attn_v")):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{hf}"
            a = exported[f"blk.{layer}.{name}.weight.lora_a"]
            b = exported[f"blk.{layer}.{name}.weight.lora_b"]
            np.testing.assert_array_equal(a, peft[f"{prefix}.lora_A.weight"])
            b = unpermute.process(b, f"blk.{layer}.{name}.weight").weights
            np.testing.assert_array_equal(b, peft[f"{prefix}.lora_B.weight"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export-")]

    with pytest.raises(AdapterError, match="already exists"):
        registry.export("support", out, tiny_settings)
    with pytest.raises(AdapterError, match="unknown adapter"):
        registry.export("nobody", tmp_path / "nobody.gguf", tiny_settings)


def test_a_registered_adapter_loads_into_the_generator(
    registry: AdapterRegistry, origin: TrainingOrigin, runs: list[Path], tiny_settings: Settings
) -> None:
    first = registry.register("support", runs[0], origin)
    dotted = registry.register("legal.v2", runs[1], origin)
    assert dotted.key == "legal~v2@1"  # PEFT adapter names cannot hold a '.'
    generator = load_generator(tiny_settings)
    base_answer = generator.generate(QUESTION, max_new_tokens=16)
    for record in (first, dotted):
        generator.load_adapter(str(record.adapter_dir), record.key)
    assert generator.adapters == sorted([first.key, dotted.key])
    answers = {
        record.key: generator.generate(QUESTION, max_new_tokens=16, adapter=record.key)
        for record in (first, dotted)
    }
    assert base_answer not in answers.values()
    assert answers[first.key] != answers[dotted.key]


def test_a_checked_gguf_lora_file_is_kept_with_its_hash_and_a_changed_one_refused(
    registry: AdapterRegistry,
    origin: TrainingOrigin,
    runs: list[Path],
    tiny_settings: Settings,
) -> None:
    import hashlib

    from assistant.core.models.lora_gguf import export_lora_gguf

    lora = export_lora_gguf(
        runs[0] / "adapter", Path(tiny_settings.generator.model), runs[0] / "adapter" / LORA_GGUF
    )
    checked = registry.register("support", runs[0], origin)
    assert (checked.adapter_dir / LORA_GGUF).read_bytes() == lora.read_bytes()
    assert checked.lora_gguf_sha256 == hashlib.sha256(lora.read_bytes()).hexdigest()
    assert registry.get("support").lora_gguf_sha256 == checked.lora_gguf_sha256
    check_lora_gguf(checked)
    unchecked = registry.register("legal", runs[1], origin)  # its run kept no GGUF LoRA
    assert unchecked.lora_gguf_sha256 is None
    check_lora_gguf(unchecked)

    (checked.adapter_dir / LORA_GGUF).write_bytes(b"GGUF but not the exported one")
    with pytest.raises(AdapterError, match="does not match its manifest"):
        check_lora_gguf(checked)
    (unchecked.adapter_dir / LORA_GGUF).write_bytes(b"GGUF dropped in by hand")
    with pytest.raises(AdapterError, match="recorded none"):
        check_lora_gguf(unchecked)


def test_a_taint_is_recorded_once_per_document_and_removes_its_rows(
    registry: AdapterRegistry, origin: TrainingOrigin, runs: list[Path], tmp_path: Path
) -> None:
    rows = [{"question": "q?", "sources": [], "answer": "a", "doc_ids": [d]} for d in ("d1", "d3")]
    dataset = tmp_path / "rows.jsonl"
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows))
    registry.register("support", runs[0], origin, dataset=dataset)
    registry.register("other", runs[1], replace(origin, source_doc_ids=("d9",)))
    [first] = registry.taint(["d1"], collection="kb", erasure_id="e1", erased_at="t1")
    assert (first.record.ref, first.rows_removed) == ("support@1", 1)
    [again] = registry.taint(["d1", "d2"], collection="kb", erasure_id="e2", erased_at="t2")
    assert [(t.doc_id, t.erasure_id) for t in again.record.tainted_by] == [
        ("d1", "e1"),
        ("d2", "e2"),
    ]
    assert again.rows_removed == 0  # d2 named no row; d1's went the first time
    kept = (again.record.adapter_dir / TRAINING_DATA).read_text().splitlines()
    assert [json.loads(line)["doc_ids"] for line in kept] == [["d3"]]
    assert registry.get("support").tainted and not registry.get("other").tainted


def test_a_manifest_from_before_taints_reads_as_untainted(
    registry: AdapterRegistry, origin: TrainingOrigin, runs: list[Path]
) -> None:
    record = registry.register("support", runs[0], origin)
    manifest = json.loads((record.adapter_dir / MANIFEST).read_text())
    del manifest["tainted_by"], manifest["source_doc_hashes"]
    (record.adapter_dir / MANIFEST).write_text(json.dumps(manifest))
    assert registry.get("support") == record and not record.tainted
