"""The one place lorag loads models: the embedder, the reranker, the generator, its adapters.

Training (``finetune/``) and serving both come through here, so the weights, dtype, tokenizer
and chat template they use cannot drift apart. One module per job:

- :mod:`.sources` — where weights come from (packaged GGUFs, local folders, the Hub);
- :mod:`.gguf` — assembling chunked GGUFs, checking their hash, converting them once;
- :mod:`.devices` — threads and dtypes;
- :mod:`.embedder` — the sentence-transformers embedder;
- :mod:`.reranker` — the sentence-transformers cross-encoder that rescores retrieved chunks;
- :mod:`.generators` — the one place the serving back end is picked (``generator.backend``);
- :mod:`.hf_generator` — the transformers generator back end with PEFT adapters;
- :mod:`.llamacpp_generator` — the llama.cpp back end, over a runtime (:mod:`.llama_ik`,
  ik_llama.cpp: the base model and its LoRA adapters);
- :mod:`.routed_generator` — ``auto``: the base and each adapter on the back end that fits it;
- :mod:`.remote_generator` — ``remote``: an OpenAI-compatible server generates;
- :mod:`.lora_gguf` — PEFT adapters written as GGUF LoRA files;
- :mod:`.adapter_folder` — what an adapter folder must hold to be loaded.

Nothing heavy is imported at module import time: torch, transformers, peft and
sentence-transformers are imported inside the functions that need them.
"""

from assistant.core.models.adapter_folder import PICKLE_SUFFIXES, check_adapter_folder
from assistant.core.models.devices import (
    BNB_HUB_KERNEL_LOGGER,
    configure_threads,
    decode_threads,
    resolve_dtype,
)
from assistant.core.models.embedder import SentenceTransformerEmbedder, load_embedder
from assistant.core.models.generators import BACKENDS, load_serving_generator
from assistant.core.models.gguf import CONVERSION_MARKER, convert_gguf, ensure_converted
from assistant.core.models.hf_generator import (
    HFGenerator,
    is_looping,
    load_causal_lm,
    load_generator,
    plain_prompt,
)
from assistant.core.models.lora_gguf import LORA_GGUF
from assistant.core.models.reranker import CrossEncoderReranker, load_reranker
from assistant.core.models.sources import (
    PACKAGED_GENERATORS,
    PackagedGGUF,
    packaged_gguf,
    resolve_embedder_path,
    resolve_generator_path,
    resolve_reranker_path,
)

__all__ = [
    "BACKENDS",
    "BNB_HUB_KERNEL_LOGGER",
    "CONVERSION_MARKER",
    "LORA_GGUF",
    "PACKAGED_GENERATORS",
    "PICKLE_SUFFIXES",
    "CrossEncoderReranker",
    "HFGenerator",
    "PackagedGGUF",
    "SentenceTransformerEmbedder",
    "check_adapter_folder",
    "configure_threads",
    "convert_gguf",
    "decode_threads",
    "ensure_converted",
    "is_looping",
    "load_causal_lm",
    "load_embedder",
    "load_generator",
    "load_reranker",
    "load_serving_generator",
    "packaged_gguf",
    "plain_prompt",
    "resolve_dtype",
    "resolve_embedder_path",
    "resolve_generator_path",
    "resolve_reranker_path",
]
