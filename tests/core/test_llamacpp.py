"""The llama.cpp back end (marked slow: real GGUFs): Qwen2.5-Coder-0.5B answers on it as on
transformers; adapters and a GGUF the runtime computes wrongly are refused with the reason (and
``auto`` then answers on transformers)."""

from __future__ import annotations

import pytest

from assistant.core.errors import AdapterError, ModelNotFoundError
from assistant.core.models import HFGenerator, load_generator, load_serving_generator
from assistant.core.settings import SMOLLM2, GeneratorSettings, Settings

QWEN = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
THAMES = [
    {"role": "system", "content": "Answer from the source and cite it like [1]."},
    {
        "role": "user",
        "content": "Source [1]: The Thames flows through London and reaches the North Sea."
        "\n\nQuestion: Which sea does the Thames reach?\nShort answer:",
    },
]


def on_llamacpp(settings: Settings) -> Settings:
    backend = settings.generator.model_copy(update={"backend": "llamacpp"})
    return settings.model_copy(update={"generator": backend})


@pytest.mark.slow
def test_qwen_on_llamacpp_streams_the_answers_transformers_gives(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("qwen"),
        generator=GeneratorSettings(model=QWEN),
    )
    llama = load_serving_generator(on_llamacpp(settings))
    question = [{"role": "user", "content": "What is the capital of France? One sentence."}]
    pieces = list(llama.stream(question, max_new_tokens=16))
    assert len(pieces) > 1 and "Paris" in "".join(pieces)

    reference = load_generator(settings).generate_batch([THAMES], 16)[0]
    answer = llama.generate_batch([THAMES], 16)[0]
    assert "North Sea" in answer and answer == reference  # the same ids, the same greedy answer

    with pytest.raises(AdapterError, match="LORAG_GENERATOR__BACKEND=transformers"):
        llama.load_adapter(str(tmp_path_factory.mktemp("adapter")), "legal")
    with pytest.raises(AdapterError, match="unknown adapter 'legal'"):
        llama.stream(THAMES, 8, adapter="legal")


@pytest.mark.slow
def test_a_gguf_the_runtime_computes_wrongly_is_refused_naming_the_setting(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # SmolLM2-135M's Q4_1 GGUF: ik_llama.cpp 0.1.5 ends every answer before its first word.
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("smollm2"),
        generator=GeneratorSettings(model=SMOLLM2),
    )
    with pytest.raises(ModelNotFoundError, match=r"generator\.backend = 'transformers'"):
        load_serving_generator(on_llamacpp(settings))
    # and so the default back end, auto, answers SmolLM2 on transformers
    assert isinstance(load_serving_generator(settings), HFGenerator)
