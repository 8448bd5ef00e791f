"""The one place a serving generator's back end is picked: ``generator.backend`` → a loader.

Training always loads the transformers model (:func:`load_causal_lm`); serving may run the same
weights on llama.cpp. All back ends read the same tokenizer and chat template. ``llamacpp``
serves the base model and its adapters on ik_llama.cpp; ``auto`` (the default) does too when the
model has a GGUF that runtime computes right, with only the adapters that passed their parity
check there and the others on transformers + PEFT (:mod:`.routed_generator`); otherwise it is
plain ``transformers``. ``remote`` sends the messages to an OpenAI-compatible server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.core.models.devices import configure_threads, decode_threads
from assistant.core.models.hf_generator import eos_token_ids, load_generator
from assistant.core.models.sources import PACKAGED_GENERATORS, model_not_found
from assistant.core.protocols import Generator
from assistant.core.settings import GeneratorBackend, Settings

if TYPE_CHECKING:
    from assistant.core.models.llamacpp_generator import LlamaCppGenerator

logger = logging.getLogger(__name__)


def load_llamacpp_generator(settings: Settings) -> LlamaCppGenerator:
    """The llama.cpp back end over the GGUF of ``generator.model`` (or ``generator.gguf``), on
    ik_llama.cpp; each PEFT adapter is served through its GGUF LoRA file
    (:func:`.lora_gguf.lora_file_for`)."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    from assistant.core.models.llama_ik import IkLlama
    from assistant.core.models.llamacpp_generator import LlamaCppGenerator
    from assistant.core.models.lora_gguf import lora_file_for
    from assistant.core.models.sources import resolve_generator_path

    gguf = _gguf_file(settings)
    folder = resolve_generator_path(settings)  # the tokenizer and chat template training uses
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    eos = GenerationConfig.from_pretrained(folder, local_files_only=True).eos_token_id
    trained = int(AutoConfig.from_pretrained(folder, local_files_only=True).max_position_embeddings)
    context_window = min(trained, settings.generation.context_tokens + 512)
    exports = settings.cache_dir / "lora-gguf"
    threads = configure_threads(settings)
    return LlamaCppGenerator(
        IkLlama(
            gguf,
            context_window=context_window,
            threads=threads,
            decode_threads=decode_threads(settings, threads),
        ),
        tokenizer,
        settings.generator.model,
        gguf=gguf,
        context_window=context_window,
        eos_ids=eos_token_ids(eos, tokenizer),
        lora_file=lambda adapter: lora_file_for(adapter, folder, exports),
    )


def _gguf_file(settings: Settings) -> Path:
    spec = settings.generator
    if spec.gguf is not None:
        if not spec.gguf.is_file():
            raise model_not_found("generator.gguf", str(spec.gguf), ["the file: it does not exist"])
        return spec.gguf
    packaged = PACKAGED_GENERATORS.get(spec.model)
    gguf = packaged.gguf(settings.cache_dir) if packaged is not None else None
    if gguf is None:
        hint = f" ({packaged.install})" if packaged is not None else ""
        raise model_not_found(
            "generator.gguf",
            "unset",
            [f"the packaged GGUF of {spec.model!r}: none is installed{hint}"],
        )
    return gguf


def load_auto_generator(settings: Settings) -> Generator:
    """ik_llama.cpp for the base and the adapters that passed their parity check, transformers
    for the others (:mod:`.routed_generator`); or transformers alone when the model has no
    GGUF, the runtime is not installed, or it refuses the GGUF."""
    from assistant.core.errors import ModelNotFoundError
    from assistant.core.models.routed_generator import RoutedGenerator

    try:
        fast = load_llamacpp_generator(settings)
    except ModelNotFoundError as refused:
        if settings.generator.gguf is not None:
            raise  # a GGUF named on purpose must load, or say why
        logger.info("answering on transformers: %s", refused)
        return load_generator(settings)
    return RoutedGenerator(
        fast,
        load_transformers=lambda: load_generator(settings),
        adapters_on_base=settings.generator.adapter_runtime == "llamacpp",
    )


def load_remote(settings: Settings) -> Generator:
    """An OpenAI-compatible server's model (:mod:`.remote_generator`)."""
    from assistant.core.models.remote_generator import load_remote_generator

    return load_remote_generator(settings)


BACKENDS: dict[GeneratorBackend, Callable[[Settings], Generator]] = {
    "auto": load_auto_generator,
    "transformers": load_generator,
    "llamacpp": load_llamacpp_generator,
    "remote": load_remote,
}


def load_serving_generator(settings: Settings) -> Generator:
    """The generator that answers questions, on the back end ``generator.backend`` names."""
    return BACKENDS[settings.generator.backend](settings)
