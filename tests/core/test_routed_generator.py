"""The ``auto`` back end's router on real tiny generators: the base model answers on the base
back end, and the adapters' back end is loaded once, only when an adapter is first attached."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core.errors import AdapterError
from assistant.core.models import load_generator
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
