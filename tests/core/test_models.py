"""Model loading: tiny models through the real loaders, and (marked slow) the real defaults."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from assistant.core import models
from assistant.core.errors import AdapterError, ModelNotFoundError
from assistant.core.models import (
    CONVERSION_MARKER,
    HFGenerator,
    configure_threads,
    decode_threads,
    ensure_converted,
    load_embedder,
    load_generator,
    load_reranker,
    resolve_dtype,
    resolve_generator_path,
)
from assistant.core.settings import (
    EmbedderSettings,
    GeneratorSettings,
    RetrievalSettings,
    Settings,
)

QUESTION = [
    {"role": "system", "content": "Answer from the sources."},
    {"role": "user", "content": "What does the river do?"},
]


@pytest.fixture(scope="module")
def generator(tiny_generator_dir: Path) -> HFGenerator:
    settings = Settings(_env_file=None, generator=GeneratorSettings(model=str(tiny_generator_dir)))
    return load_generator(settings)


def make_lora(base_dir: Path, out: Path, seed: int) -> Path:
    """A real PEFT LoRA adapter on the tiny model, its weights perturbed so it changes answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    with warnings.catch_warnings():  # peft 0.21 reads a property that transformers 5 deprecates
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`")
        peft = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, weight in peft.named_parameters():
            if "lora_" in name:
                weight.copy_(torch.randn(weight.shape, generator=generator) * 0.5)
    peft.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def adapters(tiny_generator_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("adapters")
    return [make_lora(tiny_generator_dir, root / f"lora-{seed}", seed) for seed in (1, 2)]


# --------------------------------------------------------------------------- settings → models


def test_configure_threads_uses_the_setting(tiny_settings: Settings) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        assert configure_threads(tiny_settings.model_copy(update={"threads": 1})) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_llamacpp_decodes_on_half_the_prompt_threads_unless_set(tiny_settings: Settings) -> None:
    assert [decode_threads(tiny_settings, n) for n in (1, 2, 16)] == [1, 1, 8]
    generator = tiny_settings.generator.model_copy(update={"decode_threads": 3})
    assert decode_threads(tiny_settings.model_copy(update={"generator": generator}), 2) == 3


def test_explicit_dtypes_are_honoured() -> None:
    import torch

    assert resolve_dtype("float32", "cpu") is torch.float32
    assert resolve_dtype("bfloat16", "cpu") is torch.bfloat16
    assert resolve_dtype("auto", "cpu") in (torch.float32, torch.bfloat16)


def test_generator_dtype_setting_reaches_the_model(tiny_settings: Settings) -> None:
    import torch

    spec = tiny_settings.generator.model_copy(update={"dtype": "float32"})
    loaded = load_generator(tiny_settings.model_copy(update={"generator": spec}))
    assert loaded._base.dtype is torch.float32


def test_unknown_generator_names_the_setting(tiny_settings: Settings, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    settings = tiny_settings.model_copy(update={"generator": GeneratorSettings(model=missing)})
    with pytest.raises(ModelNotFoundError) as raised:
        load_generator(settings)
    message = str(raised.value)
    assert "generator.model" in message
    assert "LORAG_GENERATOR__MODEL" in message
    assert missing in message
    assert "local folder" in message and "Hugging Face" in message


def test_unknown_hub_id_names_the_setting(tiny_settings: Settings) -> None:
    settings = tiny_settings.model_copy(
        update={"embedder": EmbedderSettings(model="nobody/no-such-embedder")}
    )
    with pytest.raises(ModelNotFoundError) as raised:
        load_embedder(settings)
    message = str(raised.value)
    assert "embedder.model" in message and "LORAG_EMBEDDER__MODEL" in message
    assert "nobody/no-such-embedder" in message


# --------------------------------------------------------------------------- embedder


def test_embedder_gives_normalised_vectors(tiny_settings: Settings) -> None:
    embedder = load_embedder(tiny_settings)
    assert embedder.model_id == tiny_settings.embedder.model
    assert embedder.dimension == 32
    assert embedder.max_tokens == 128
    texts = [f"the river flows past bend number {n}" for n in range(11)]
    vectors = embedder.embed_documents(texts)
    assert vectors.shape == (11, 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.embed_query(texts[3]), vectors[3], atol=2e-2)
    assert embedder.embed_documents([]).shape == (0, 32)


def test_embedder_counts_tokens_without_specials_or_truncation(tiny_settings: Settings) -> None:
    embedder = load_embedder(tiny_settings)
    assert embedder.count_tokens("") == 0
    assert embedder.count_tokens("bread") == 1
    long_text = "the committee met on tuesday " * 100
    assert embedder.count_tokens(long_text) > embedder.max_tokens


# --------------------------------------------------------------------------- reranker


def with_reranker(settings: Settings, reranker: str) -> Settings:
    """``settings`` with ``reranker``, in float32 (as the reference CrossEncoder runs)."""
    embedder = settings.embedder.model_copy(update={"dtype": "float32"})
    retrieval = RetrievalSettings(reranker=reranker)
    return settings.model_copy(update={"retrieval": retrieval, "embedder": embedder})


def test_reranker_scores_as_the_cross_encoder_predicts(
    tiny_settings: Settings, tiny_cross_encoder_dir: Path
) -> None:
    from sentence_transformers import CrossEncoder

    reranker = load_reranker(with_reranker(tiny_settings, str(tiny_cross_encoder_dir)))
    assert reranker.model_id == str(tiny_cross_encoder_dir)
    passages = ["The river Thames flows through London.", "Bread is baked in a hot oven."]
    scores = reranker.score("Where does the Thames flow?", passages)
    expected = CrossEncoder(str(tiny_cross_encoder_dir)).predict(
        [("Where does the Thames flow?", passage) for passage in passages]
    )
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert scores[0] != scores[1]
    assert reranker.score("anything", []) == []


def test_missing_reranker_folder_names_the_setting(tiny_settings: Settings, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-reranker")
    with pytest.raises(ModelNotFoundError) as raised:
        load_reranker(with_reranker(tiny_settings, missing))
    message = str(raised.value)
    assert "retrieval.reranker" in message and "LORAG_RETRIEVAL__RERANKER" in message
    assert f"a local folder {missing!r}: it does not exist" in message


def test_uncached_reranker_hub_id_fails_offline(tiny_settings: Settings) -> None:
    with pytest.raises(ModelNotFoundError) as raised:
        load_reranker(with_reranker(tiny_settings, "nobody/no-such-reranker"))
    message = str(raised.value)
    assert "the Hugging Face Hub id 'nobody/no-such-reranker'" in message
    assert "LORAG_RETRIEVAL__RERANKER" in message


def test_an_embedder_folder_is_not_taken_for_a_cross_encoder(
    tiny_settings: Settings, tiny_embedder_dir: Path
) -> None:
    with pytest.raises(ModelNotFoundError, match="is not a cross-encoder") as raised:
        load_reranker(with_reranker(tiny_settings, str(tiny_embedder_dir)))
    assert "BertModel" in str(raised.value)


# --------------------------------------------------------------------------- generator


def test_generator_reports_its_model(generator: HFGenerator, tiny_generator_dir: Path) -> None:
    assert generator.model_id == str(tiny_generator_dir)
    assert generator.context_window == 1024
    assert generator.count_tokens("") == 0
    assert 0 < generator.count_tokens("The river Thames") < len("The river Thames")


def test_render_applies_the_chat_template(generator: HFGenerator) -> None:
    assert generator.render(QUESTION) == (
        "<|im_start|>system\nAnswer from the sources.<|im_end|>\n"
        "<|im_start|>user\nWhat does the river do?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_render_without_a_chat_template_falls_back(
    tiny_settings: Settings, tiny_generator_dir: Path, tmp_path: Path
) -> None:
    folder = shutil.copytree(tiny_generator_dir, tmp_path / "no-template")
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config.pop("chat_template", None)
    config_file.write_text(json.dumps(config))
    settings = tiny_settings.model_copy(update={"generator": GeneratorSettings(model=str(folder))})
    assert load_generator(settings).render(QUESTION) == (
        "System: Answer from the sources.\n\nUser: What does the river do?\n\nAssistant:"
    )


def test_stream_yields_pieces_of_the_greedy_answer(generator: HFGenerator) -> None:
    import torch

    pieces = list(generator.stream(QUESTION, max_new_tokens=24))
    assert pieces
    assert all(pieces)

    tokenizer = generator._tokenizer
    inputs = tokenizer(generator.render(QUESTION), add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        output = generator._base.generate(
            **inputs, max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    prompt_length = inputs["input_ids"].shape[1]
    expected = tokenizer.decode(output[0][prompt_length:], skip_special_tokens=True)
    assert "".join(pieces) == expected
    assert generator.generate(QUESTION, max_new_tokens=24) == expected


def test_an_answer_told_to_avoid_a_draft_starts_with_another_token(
    generator: HFGenerator,
) -> None:
    from assistant.core.models.hf_generator import first_token_ids

    tokenizer = generator._tokenizer
    draft = generator.generate(QUESTION, max_new_tokens=8)
    redraft = generator.generate(QUESTION, max_new_tokens=8, avoid=[draft])
    first = tokenizer(draft, add_special_tokens=False)["input_ids"][0]
    assert first in first_token_ids(tokenizer, [draft])
    assert tokenizer(redraft, add_special_tokens=False)["input_ids"][0] != first
    # only the first token is constrained: the rest is the model's greedy continuation
    assert generator.generate(QUESTION, max_new_tokens=8, avoid=[]) == draft


def test_closing_a_stream_early_frees_the_model(generator: HFGenerator) -> None:
    pieces = generator.stream(QUESTION, max_new_tokens=200)
    next(pieces)
    pieces.close()
    assert generator.generate(QUESTION, max_new_tokens=4)


def test_concurrent_generations_take_turns(generator: HFGenerator) -> None:
    expected = generator.generate(QUESTION, max_new_tokens=12)
    answers: list[str] = []

    def ask() -> None:
        answers.append(generator.generate(QUESTION, max_new_tokens=12))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [expected] * 3


def test_sampling_runs(generator: HFGenerator) -> None:
    assert isinstance(generator.generate(QUESTION, max_new_tokens=8, temperature=0.8), str)


# --------------------------------------------------------------------------- adapters


def test_adapters_switch_on_one_base(tiny_settings: Settings, adapters: list[Path]) -> None:
    generator = load_generator(tiny_settings)
    base_model = generator._base
    base_answer = generator.generate(QUESTION, max_new_tokens=16)

    generator.load_adapter(str(adapters[0]), "first")
    generator.load_adapter(str(adapters[1]), "second")
    assert generator.adapters == ["first", "second"]
    first = generator.generate(QUESTION, max_new_tokens=16, adapter="first")
    second = generator.generate(QUESTION, max_new_tokens=16, adapter="second")
    assert first != base_answer
    assert second not in (base_answer, first)

    assert generator.generate(QUESTION, max_new_tokens=16) == base_answer
    assert generator.generate(QUESTION, max_new_tokens=16, adapter="first") == first
    assert generator._peft is not None
    assert generator._peft.get_base_model() is base_model

    generator.unload_adapter("second")
    assert generator.adapters == ["first"]
    assert generator.generate(QUESTION, max_new_tokens=16, adapter="first") == first
    assert generator.generate(QUESTION, max_new_tokens=16) == base_answer
    with pytest.raises(
        AdapterError, match=r"no adapter named 'second' is loaded \(loaded: first\)"
    ):
        generator.unload_adapter("second")

    # With the last adapter unloaded, the base answers as before, and adapters load again.
    generator.unload_adapter("first")
    assert generator.adapters == []
    assert generator.generate(QUESTION, max_new_tokens=16) == base_answer
    generator.load_adapter(str(adapters[0]), "again")
    assert generator.generate(QUESTION, max_new_tokens=16, adapter="again") == first
    assert generator.generate(QUESTION, max_new_tokens=16) == base_answer


def test_unknown_adapter_lists_the_loaded_ones(
    tiny_settings: Settings, adapters: list[Path]
) -> None:
    generator = load_generator(tiny_settings)
    with pytest.raises(AdapterError, match="loaded: none"):
        generator.stream(QUESTION, 4, adapter="legal")
    generator.load_adapter(str(adapters[0]), "first")
    with pytest.raises(AdapterError, match=r"'legal' \(loaded: first\)"):
        generator.stream(QUESTION, 4, adapter="legal")
    with pytest.raises(AdapterError, match="already loaded"):
        generator.load_adapter(str(adapters[1]), "first")


@pytest.mark.parametrize("pickle_name", ["adapter_model.bin", "optimizer.pt", "state.pkl"])
def test_adapter_with_a_pickle_file_is_refused(
    generator: HFGenerator, adapters: list[Path], tmp_path: Path, pickle_name: str
) -> None:
    folder = shutil.copytree(adapters[0], tmp_path / "unsafe")
    (folder / pickle_name).write_bytes(b"not loaded")
    with pytest.raises(AdapterError, match="pickle"):
        generator.load_adapter(str(folder), "unsafe")
    assert "unsafe" not in generator.adapters


def test_folder_that_is_not_an_adapter_is_refused(
    generator: HFGenerator, adapters: list[Path], tmp_path: Path
) -> None:
    with pytest.raises(AdapterError, match="does not exist"):
        generator.load_adapter(str(tmp_path / "missing"), "missing")
    with pytest.raises(AdapterError, match=r"adapter_config\.json"):
        generator.load_adapter(str(tmp_path), "empty")
    folder = shutil.copytree(adapters[0], tmp_path / "no-weights")
    (folder / "adapter_model.safetensors").unlink()
    with pytest.raises(AdapterError, match=r"adapter_model\.safetensors"):
        generator.load_adapter(str(folder), "no-weights")


def test_adapter_for_another_base_model_is_refused(
    generator: HFGenerator, adapters: list[Path], tmp_path: Path
) -> None:
    folder = shutil.copytree(adapters[0], tmp_path / "other-base")
    config_file = folder / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = "Qwen/Qwen2.5-0.5B-Instruct"
    config_file.write_text(json.dumps(config))
    with pytest.raises(AdapterError, match=r"Qwen2\.5-0\.5B-Instruct"):
        generator.load_adapter(str(folder), "other")


# --------------------------------------------------------------------------- GGUF conversion


def fake_gguf(tmp_path: Path, content: bytes) -> Path:
    gguf = tmp_path / "package" / "Tiny.Q4_1.gguf"
    gguf.parent.mkdir(exist_ok=True)
    gguf.write_bytes(content)
    return gguf


def test_conversion_is_atomic_and_redone_when_the_gguf_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversions: list[bytes] = []

    def convert(gguf: Path, out: Path) -> None:
        conversions.append(gguf.read_bytes())
        (out / "model.safetensors").write_bytes(gguf.read_bytes())

    target = tmp_path / "cache" / "models" / "Tiny"
    ensure_converted(fake_gguf(tmp_path, b"v1"), target, convert)
    ensure_converted(fake_gguf(tmp_path, b"v1"), target, convert)
    assert conversions == [b"v1"]
    assert json.loads((target / CONVERSION_MARKER).read_text())["sha256"]

    ensure_converted(fake_gguf(tmp_path, b"v2"), target, convert)
    assert conversions == [b"v1", b"v2"]
    assert (target / "model.safetensors").read_bytes() == b"v2"
    assert sorted(p.name for p in target.parent.iterdir()) == ["Tiny"]


def test_failed_conversion_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(gguf: Path, out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed halfway")

    target = tmp_path / "cache" / "models" / "Tiny"
    with pytest.raises(RuntimeError, match="halfway"):
        ensure_converted(fake_gguf(tmp_path, b"v1"), target, crash)
    assert list(target.parent.iterdir()) == []


# --------------------------------------------------------------------------- real defaults


@pytest.fixture(scope="module")
def default_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("defaults"))


@pytest.mark.slow
def test_default_generator_is_converted_once(
    default_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = resolve_generator_path(default_settings)
    assert folder.parent == default_settings.cache_dir / "models"
    assert (folder / "model.safetensors").is_file()
    assert (folder / CONVERSION_MARKER).is_file()

    def must_not_convert(gguf: Path, out: Path) -> None:
        raise AssertionError("converted a second time")

    monkeypatch.setattr(models.gguf, "convert_gguf", must_not_convert)
    assert resolve_generator_path(default_settings) == folder


@pytest.mark.slow
def test_default_generator_answers(default_settings: Settings) -> None:
    generator = load_generator(default_settings)
    assert generator.context_window == 32768  # Qwen2.5's trained context
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    pieces = list(generator.stream(messages, max_new_tokens=24))
    assert len(pieces) > 1  # streamed word by word
    assert "Paris" in "".join(pieces)


@pytest.mark.slow
def test_default_embedder_ranks_similar_sentences_higher(default_settings: Settings) -> None:
    embedder = load_embedder(default_settings)
    assert embedder.dimension == 384
    assert embedder.max_tokens == 256
    query = embedder.embed_query("How do I bake bread at home?")
    related, unrelated = embedder.embed_documents(
        [
            "Mix flour, water, salt and yeast, let the dough rise, then bake it in a hot oven.",
            "The stock market fell sharply after the central bank raised interest rates.",
        ]
    )
    assert query.shape == (384,)
    assert float(query @ related) > float(query @ unrelated) + 0.2


def test_loop_detection_looks_at_back_to_back_repeats_only() -> None:
    from assistant.core.models import is_looping

    assert is_looping([1, 2, 3, 4, 5, 6, 7] * 2)
    assert is_looping([9, 9, 8] + [1, 2, 3, 4, 5, 6] * 3)
    assert not is_looping([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    assert not is_looping([1, 2, 3, 1, 2, 3])  # shorter than the smallest loop checked
    assert not is_looping([1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6])


# --------------------------------------------------------------------------- chunked GGUFs


def test_parts_are_assembled_once_and_checked_against_the_pinned_hash(tmp_path: Path) -> None:
    parts = []
    for n, content in enumerate([b"GGUF-head-", b"middle-", b"tail"], start=1):
        part = tmp_path / f"part{n:02d}.bin"
        part.write_bytes(content)
        parts.append(part)
    whole = b"GGUF-head-middle-tail"
    target = tmp_path / "cache" / "gguf" / "Tiny.Q4_K_M.gguf"

    assert models.gguf.assemble(parts, target, hashlib.sha256(whole).hexdigest()) == target
    assert target.read_bytes() == whole
    first_written = target.stat().st_mtime_ns
    models.gguf.assemble(parts, target, hashlib.sha256(whole).hexdigest())
    assert target.stat().st_mtime_ns == first_written  # not written again

    other = tmp_path / "cache" / "gguf" / "Other.gguf"
    with pytest.raises(ValueError, match="not the pinned"):
        models.gguf.assemble(parts, other, "0" * 64)
    assert sorted(p.name for p in other.parent.iterdir()) == [target.name]  # nothing half-written


def test_a_packaged_model_whose_packages_are_missing_says_how_to_install_them(
    tmp_path: Path,
) -> None:
    missing = models.PackagedGGUF(
        name="Missing.gguf",
        parts=(("lorag_no_such_package_part1", "data/part01.bin"),),
        install="pip install lorag-no-such-package-part1==1.0",
        licence="none",
        sha256="0" * 64,
    )
    assert missing.locate() is None
    assert missing.gguf(tmp_path) is None
    assert "Qwen/Qwen2.5-Coder-0.5B-Instruct" in models.PACKAGED_GENERATORS
    pinned = models.PACKAGED_GENERATORS["Qwen/Qwen2.5-Coder-0.5B-Instruct"]
    assert pinned.sha256 is not None and "==0.9.0" in pinned.install
    for packaged in models.PACKAGED_GENERATORS.values():  # every chunked GGUF is pinned
        assert len(packaged.parts) == 1 or (packaged.sha256 and "==" in packaged.install)
