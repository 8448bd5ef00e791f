"""The llama.cpp back end (marked slow: real GGUFs): Qwen2.5-Coder-0.5B answers on it as on
transformers; a GGUF ik_llama.cpp computes wrongly is refused with the reason (and ``auto`` then
answers on transformers); a LoRA moves its logits as PEFT does and answers the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.core.errors import AdapterError, ModelNotFoundError
from assistant.core.models import (
    HFGenerator,
    load_causal_lm,
    load_generator,
    load_serving_generator,
    resolve_generator_path,
)
from assistant.core.models.generators import load_llamacpp_generator
from assistant.core.models.llama_ik import IkLlama
from assistant.core.models.lora_gguf import lora_file_for
from assistant.core.settings import SMOLLM2, GeneratorSettings, Settings

QWEN = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
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


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings on the packaged Qwen2.5-Coder-0.5B, one data dir (converted once) per module."""
    return Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("qwen"),
        generator=GeneratorSettings(model=QWEN),
    )


@pytest.mark.slow
def test_qwen_on_llamacpp_streams_the_answers_transformers_gives(qwen: Settings) -> None:
    settings = qwen
    llama = load_serving_generator(on_llamacpp(settings))
    question = [{"role": "user", "content": "What is the capital of France? One sentence."}]
    pieces = list(llama.stream(question, max_new_tokens=16))
    assert len(pieces) > 1 and "Paris" in "".join(pieces)

    reference = load_generator(settings).generate_batch([THAMES], 16)[0]
    answer = llama.generate_batch([THAMES], 16)[0]
    assert "North Sea" in answer and answer == reference  # the same ids, the same greedy answer

    with pytest.raises(AdapterError, match="unknown adapter 'legal'"):
        llama.stream(THAMES, 8, adapter="legal")

    # told to avoid its answer, it starts another way (as transformers does, the same ids)
    redraft = llama.generate(THAMES, 16, avoid=[answer])
    assert not redraft.startswith(answer.split()[0])
    assert redraft == load_generator(settings).generate(THAMES, 16, avoid=[answer])


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


def qwen_lora(base_dir: Path, out: Path) -> Path:
    """A real PEFT LoRA on Qwen2.5-Coder-0.5B, every projection adapted, its B weights random
    (a trained adapter's size) so that it moves the logits."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.bfloat16)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=PROJECTIONS)
    peft = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weight in peft.named_parameters():
            if "lora_B" in name:
                weight.copy_(torch.randn(weight.shape, generator=generator) * 0.02)
    peft.save_pretrained(out)
    return out


@pytest.mark.slow
def test_a_lora_on_llamacpp_moves_the_logits_as_peft_does_and_answers_the_same(
    qwen: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import torch
    from peft import PeftModel

    settings = qwen
    base_dir = resolve_generator_path(settings)
    adapter = qwen_lora(base_dir, tmp_path_factory.mktemp("lora") / "lora")
    llama = load_llamacpp_generator(settings)
    llama.load_adapter(str(adapter), "lora")  # exported once into the cache, then loaded
    assert llama.adapters == ["lora"]

    # The adapter's shift of the next-token logits, on both runtimes: the same direction and
    # size (with ik_llama.cpp's fused up/gate kernel on, which drops those LoRA terms, the
    # cosine was -0.2).
    model, tokenizer = load_causal_lm(settings)
    ids = tokenizer(llama.render(THAMES), add_special_tokens=False)["input_ids"]
    peft = PeftModel.from_pretrained(model, str(adapter)).eval()
    with torch.inference_mode():
        with peft.disable_adapter():
            torch_base = peft(torch.tensor([ids])).logits[0, -1].float().numpy()
        torch_lora = peft(torch.tensor([ids])).logits[0, -1].float().numpy()
    runtime = IkLlama(llama.gguf, context_window=1024, threads=2, decode_threads=1)
    lora = lora_file_for(adapter, base_dir, settings.cache_dir / "lora-gguf")  # the same file
    runtime.load_adapter(lora, "lora")
    runtime.clear()
    llama_base = runtime.decode(ids).copy()
    runtime.use("lora")
    runtime.clear()
    llama_lora = runtime.decode(ids).copy()
    runtime.close()
    shift_torch, shift_llama = torch_lora - torch_base, llama_lora - llama_base
    cosine = float(shift_torch @ shift_llama) / float(
        np.linalg.norm(shift_torch) * np.linalg.norm(shift_llama)
    )
    size = float(np.linalg.norm(shift_llama) / np.linalg.norm(shift_torch))
    assert cosine > 0.95 and 0.8 < size < 1.25, (cosine, size)

    # Answers: the adapter on llama.cpp gives transformers + PEFT's greedy answer, and the base
    # answers as the base between two adapter requests (switched per request, one base loaded).
    reference = load_generator(settings)
    reference.load_adapter(str(adapter), "lora")
    question = [{"role": "user", "content": "What is the capital of France? One sentence."}]
    for chat in (THAMES, question):
        assert llama.generate(chat, 16, adapter="lora") == reference.generate(
            chat, 16, adapter="lora"
        )
    assert llama.generate(question, 16) == reference.generate(question, 16)
    llama.unload_adapter("lora")
    with pytest.raises(AdapterError, match="unknown adapter 'lora'"):
        llama.generate(question, 4, adapter="lora")
