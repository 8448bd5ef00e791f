"""The one place a serving generator's back end is picked: ``generator.backend`` → a loader.

Training always loads the transformers model (:func:`load_causal_lm`); serving may run the same
weights on llama.cpp. Both read the same tokenizer and chat template, and adapters trained with
PEFT attach to the transformers back end (the llama.cpp one serves the base model only, for now).
``auto`` (the default) answers for the base on llama.cpp when the model has a GGUF that runtime
computes right, and for adapters on transformers (:mod:`.routed_generator`); otherwise it is
plain ``transformers``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from assistant.core.models.devices import configure_threads
from assistant.core.models.hf_generator import eos_token_ids, load_generator
from assistant.core.models.sources import PACKAGED_GENERATORS, model_not_found
from assistant.core.protocols import Generator
from assistant.core.settings import GeneratorBackend, Settings

logger = logging.getLogger(__name__)


def load_llamacpp_generator(settings: Settings) -> Generator:
    """The llama.cpp back end over the GGUF of ``generator.model`` (or ``generator.gguf``)."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    from assistant.core.models.llamacpp_generator import LlamaCppGenerator
    from assistant.core.models.sources import resolve_generator_path

    spec = settings.generator
    gguf = _gguf_file(settings)
    folder = resolve_generator_path(settings)  # the tokenizer and chat template training uses
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    eos = GenerationConfig.from_pretrained(folder, local_files_only=True).eos_token_id
    trained = int(AutoConfig.from_pretrained(folder, local_files_only=True).max_position_embeddings)
    return LlamaCppGenerator(
        gguf,
        tokenizer,
        spec.model,
        threads=configure_threads(settings),
        context_window=min(trained, settings.generation.context_tokens + 512),
        eos_ids=eos_token_ids(eos, tokenizer),
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
    """llama.cpp for the base and transformers for adapters, or transformers alone when the
    model has no GGUF, the runtime is not installed, or it refuses the GGUF."""
    from assistant.core.errors import ModelNotFoundError
    from assistant.core.models.routed_generator import RoutedGenerator

    try:
        fast = load_llamacpp_generator(settings)
    except ModelNotFoundError as refused:
        if settings.generator.gguf is not None:
            raise  # a GGUF named on purpose must load, or say why
        logger.info("answering on transformers: %s", refused)
        return load_generator(settings)
    return RoutedGenerator(fast, lambda: load_generator(settings))


BACKENDS: dict[GeneratorBackend, Callable[[Settings], Generator]] = {
    "auto": load_auto_generator,
    "transformers": load_generator,
    "llamacpp": load_llamacpp_generator,
}


def load_serving_generator(settings: Settings) -> Generator:
    """The generator that answers questions, on the back end ``generator.backend`` names."""
    return BACKENDS[settings.generator.backend](settings)
