"""The ``auto`` back end's router on real tiny generators: the base model answers on the base
back end; an adapters' back end is loaded once, only when an adapter first needs it; an adapter
with a GGUF LoRA file (it passed its parity check) goes to the base's llama.cpp back end, any
other to transformers."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core.errors import AdapterError
from assistant.core.models import LORA_GGUF, load_generator
from assistant.core.models.lora_gguf import export_lora_gguf
from assistant.core.models.routed_generator import RoutedGenerator
from assistant.core.protocols import Generator
from assistant.core.settings import Settings
from tests.core.test_models import make_lora

CHAT = [{"role": "user", "content": "What is the hotel limit?"}]


def test_base_questions_never_load_the_adapters_back_end(
    tiny_settings: Settings, tiny_generator_dir: Path, tmp_path: Path
) -> None:
    loads: list[Generator] = []

    def load_with_adapters() -> Generator:
        loads.append(load_generator(tiny_settings))
        return loads[-1]

    base = load_generator(tiny_settings)
    routed = RoutedGenerator(base, load_with_adapters)
    assert routed.generate(CHAT, 8) == base.generate(CHAT, 8)
    assert routed.generate_batch([CHAT, CHAT], 8) == base.generate_batch([CHAT, CHAT], 8)
    assert routed.adapters == [] and loads == []
    assert routed.count_tokens("one two") == base.count_tokens("one two")

    routed.load_adapter(str(make_lora(tiny_generator_dir, tmp_path / "lora", seed=1)), "lora")
    routed.load_adapter(str(make_lora(tiny_generator_dir, tmp_path / "other", seed=2)), "other")
    assert len(loads) == 1 and routed.adapters == ["lora", "other"]
    with_adapter = routed.generate(CHAT, 8, adapter="lora")
    assert with_adapter == loads[0].generate(CHAT, 8, adapter="lora")
    assert with_adapter != routed.generate(CHAT, 8)  # the base still answers on the base
    routed.unload_adapter("other")
    assert routed.adapters == ["lora"]
    with pytest.raises(AdapterError, match="other"):
        routed.generate(CHAT, 8, adapter="other")


def test_an_adapter_with_a_gguf_lora_file_answers_on_the_base_back_end(
    tiny_settings: Settings, tiny_generator_dir: Path, tmp_path: Path
) -> None:
    # A real tiny generator stands in for the base's llama.cpp back end: what is tested here is
    # which back end each adapter is sent to (tests/core/test_llamacpp.py runs the real runtime).
    checked = make_lora(tiny_generator_dir, tmp_path / "checked", seed=1)
    export_lora_gguf(checked, tiny_generator_dir, checked / LORA_GGUF)
    unchecked = make_lora(tiny_generator_dir, tmp_path / "unchecked", seed=2)
    base, transformers = load_generator(tiny_settings), load_generator(tiny_settings)
    routed = RoutedGenerator(base, load_transformers=lambda: transformers)
    routed.load_adapter(str(checked), "checked")
    routed.load_adapter(str(unchecked), "unchecked")
    assert routed.backend_of("checked") == "llamacpp"
    assert routed.backend_of("unchecked") == "transformers"
    assert base.adapters == ["checked"] and transformers.adapters == ["unchecked"]
    assert routed.generate(CHAT, 8, adapter="checked") == base.generate(CHAT, 8, adapter="checked")
    with pytest.raises(AdapterError, match="already loaded"):
        routed.load_adapter(str(unchecked), "checked")


def test_adapters_kept_on_transformers_by_the_setting_never_reach_the_base(
    tiny_settings: Settings, tiny_generator_dir: Path, tmp_path: Path
) -> None:
    checked = make_lora(tiny_generator_dir, tmp_path / "checked", seed=1)
    export_lora_gguf(checked, tiny_generator_dir, checked / LORA_GGUF)
    base, transformers = load_generator(tiny_settings), load_generator(tiny_settings)
    kept = RoutedGenerator(base, lambda: transformers, adapters_on_base=False)
    kept.load_adapter(str(checked), "kept")
    assert kept.backend_of("kept") == "transformers" and base.adapters == []
