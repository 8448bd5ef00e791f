"""The transformers generator back end: a causal LM with PEFT adapters on one loaded base.

It is the training-parity reference (``finetune/`` loads its base through :func:`load_causal_lm`)
and the QLoRA path.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.core.errors import AdapterError
from assistant.core.models.adapter_folder import check_adapter_folder
from assistant.core.models.devices import configure_threads, quiet_loading, resolve_dtype
from assistant.core.models.sources import model_not_found, resolve_generator_path
from assistant.core.settings import Settings

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase


def load_causal_lm(
    settings: Settings, **from_pretrained: Any
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The generator's transformers model and tokenizer, for serving and for training.

    ``from_pretrained`` keywords (``dtype``, ``quantization_config``, ...) override the settings.
    The tokenizer always has a pad token (the EOS token when the model names none).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    configure_threads(settings)
    spec = settings.generator
    path = resolve_generator_path(settings)
    from_pretrained.setdefault("dtype", resolve_dtype(spec.dtype, spec.device))
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        with quiet_loading():
            model = AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, **from_pretrained
            )
    except (OSError, ValueError) as exc:
        raise model_not_found(
            "generator.model", spec.model, [f"the folder {str(path)!r}: {exc}"]
        ) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if "quantization_config" not in from_pretrained and "device_map" not in from_pretrained:
        model.to(spec.device)
    return model, tokenizer


def load_generator(settings: Settings) -> HFGenerator:
    """The generator named by ``settings.generator``, ready to stream, without adapters."""
    model, tokenizer = load_causal_lm(settings)
    model.eval()
    return HFGenerator(model, tokenizer, settings.generator.model)


def plain_prompt(messages: list[dict[str, str]]) -> str:
    """The prompt for a model without a chat template: ``Role: content`` blocks, ``Assistant:``."""
    turns = "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in messages)
    return turns + "Assistant:"


def render_chat(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> str:
    """The prompt ``tokenizer``'s chat template makes of ``messages`` (generation prompt added);
    :func:`plain_prompt` for a model without one. Every back end renders through here."""
    if not tokenizer.chat_template:
        return plain_prompt(messages)
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def eos_token_ids(
    configured: int | list[int] | None, tokenizer: PreTrainedTokenizerBase
) -> list[int]:
    """The ids that end an answer: the generation config's ``eos_token_id`` (one, several or
    none) and the tokenizer's own EOS token."""
    ids = (
        list(configured)
        if isinstance(configured, list)
        else []
        if configured is None
        else [configured]
    )
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def count_text_tokens(tokenizer: PreTrainedTokenizerBase, text: str) -> int:
    """Tokens of ``text``, without special tokens."""
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def check_loaded(adapter: str | None, loaded: Sequence[str]) -> None:
    """Raise AdapterError naming the loaded adapters when ``adapter`` is not one of them."""
    if adapter is not None and adapter not in loaded:
        raise AdapterError(f"unknown adapter {adapter!r} (loaded: {', '.join(loaded) or 'none'})")


def first_token_ids(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[int]:
    """The token each of ``texts`` starts with, written alone or after a space: the tokens an
    answer may not start with when it must not begin like one of them."""
    ids: set[int] = set()
    for text in (text.strip() for text in texts):
        for written in (text, " " + text) if text else ():
            tokens = tokenizer(written, add_special_tokens=False, verbose=False)["input_ids"]
            ids.update(tokens[:1])
    return sorted(ids)


def _model_key(name: str) -> str:
    """The last component of a model id or folder, lower-cased: what names a model loosely."""
    return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()


LOOP_MIN_TOKENS = 6
LOOP_MAX_TOKENS = 48


def is_looping(generated: Sequence[int]) -> bool:
    """Whether the generated tokens end with a block repeated back to back (a degenerate loop).

    Small models decoding greedily fall into loops. A repetition penalty would also penalise
    copying from the sources in the prompt, so only the generated tokens are looked at.
    """
    longest = min(LOOP_MAX_TOKENS, len(generated) // 2)
    return any(
        generated[-size:] == generated[-2 * size : -size]
        for size in range(LOOP_MIN_TOKENS, longest + 1)
    )


class HFGenerator:
    """The :class:`~assistant.core.protocols.Generator` over a transformers causal LM.

    PEFT adapters are attached to the one loaded base under names; ``stream(adapter=name)``
    switches to one without reloading the base, ``adapter=None`` answers with the base alone.
    One generation runs at a time per model (a lock); others wait their turn.
    """

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, model_id: str
    ) -> None:
        self.model_id = model_id
        self.context_window = int(model.config.max_position_embeddings)
        self._base = model
        self._peft: PeftModel | None = None
        self._tokenizer = tokenizer
        self._lock = threading.Lock()
        # What an adapter's base_model_name_or_path may say: the setting or the loaded folder.
        self._base_keys = {_model_key(model_id), _model_key(str(model.config.name_or_path))}
        eos_ids = eos_token_ids(model.generation_config.eos_token_id, tokenizer)
        self._eos_ids = eos_ids
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]

    @property
    def adapters(self) -> list[str]:
        """Names of the adapters loaded on this base."""
        return sorted(self._peft.peft_config) if self._peft is not None else []

    def count_tokens(self, text: str) -> int:
        return count_text_tokens(self._tokenizer, text)

    def render(self, messages: list[dict[str, str]]) -> str:
        return render_chat(self._tokenizer, messages)

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        adapter: str | None = None,
        avoid: Sequence[str] = (),
    ) -> Iterator[str]:
        """Text pieces as they are generated (greedy when ``temperature`` is 0; stops at EOS).

        An unknown ``adapter`` raises :class:`AdapterError` here, before anything is generated.
        Closing the iterator early stops the generation. The answer's first token is never the
        first token of one of ``avoid`` (:func:`first_token_ids`).
        """
        check_loaded(adapter, self.adapters)
        banned = first_token_ids(self._tokenizer, avoid)
        return self._pieces(self.render(messages), max_new_tokens, temperature, adapter, banned)

    def generate(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        adapter: str | None = None,
        avoid: Sequence[str] = (),
    ) -> str:
        """The whole answer at once: :meth:`stream` joined."""
        return "".join(self.stream(messages, max_new_tokens, temperature, adapter, avoid))

    def generate_batch(
        self, batch: list[list[dict[str, str]]], max_new_tokens: int, adapter: str | None = None
    ) -> list[str]:
        """Greedy answers to several chats at once: one forward pass per token for all of them.

        The prompts are left-padded to one length and read in one pass. Each row stops at its
        own EOS or when it falls into a loop (:func:`is_looping` on its generated tokens), and
        is then dropped from the batch (its cache too), so the rows still going do not carry
        finished ones; the pass ends when no row is left or at ``max_new_tokens``. Row for row,
        the texts are those :meth:`generate` gives, up to the last-digit floating-point
        differences that padding can make.

        Like :meth:`stream`, the model runs in a worker thread. (It was moved there when the
        loop ran 3-5x slower from the main thread on a busy 2-core CPU; that was most likely
        OpenMP threads spinning against other work, which ``OMP_WAIT_POLICY=PASSIVE``, set in
        ``assistant/__init__.py``, now prevents.)
        """
        check_loaded(adapter, self.adapters)
        if not batch:
            return []
        import torch
        from transformers import DynamicCache

        generated: list[list[int]] = [[] for _ in batch]
        failures: list[BaseException] = []

        def run(ids: torch.Tensor, mask: torch.Tensor) -> None:
            device = self._base.device
            model = self._peft if self._peft is not None else self._base
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            cache = DynamicCache(config=self._base.config)
            cache_argument = {_cache_keyword(self._base): cache}
            active = list(range(len(batch)))  # the rows still generating, in cache order
            try:
                with torch.inference_mode(), self._adapter_active(adapter):
                    for _ in range(max_new_tokens):
                        logits = model(
                            input_ids=ids,
                            attention_mask=mask,
                            position_ids=positions,
                            use_cache=True,
                            **cache_argument,
                            logits_to_keep=1,
                        ).logits
                        tokens = logits[:, -1].argmax(-1).tolist()
                        going = []
                        for slot, (row, token) in enumerate(zip(active, tokens, strict=True)):
                            generated[row].append(token)
                            if token not in self._eos_ids and not is_looping(generated[row]):
                                going.append(slot)
                        if not going:
                            break
                        if len(going) < len(active):
                            keep = torch.tensor(going, device=device)
                            cache.batch_select_indices(keep)
                            mask, positions = mask[keep], positions[keep]
                            active = [active[slot] for slot in going]
                            tokens = [tokens[slot] for slot in going]
                        ids = torch.tensor(tokens, device=device)[:, None]
                        mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=-1)
                        positions = positions[:, -1:] + 1
            except BaseException as exc:
                failures.append(exc)

        prompts = [self.render(messages) for messages in batch]
        with self._lock:
            padding_side = self._tokenizer.padding_side
            self._tokenizer.padding_side = "left"
            try:
                encoded = self._tokenizer(
                    prompts, add_special_tokens=False, padding=True, return_tensors="pt"
                )
            finally:
                self._tokenizer.padding_side = padding_side
            inputs = [encoded[key].to(self._base.device) for key in ("input_ids", "attention_mask")]
            worker = threading.Thread(
                target=run, args=inputs, name="lorag-generate-batch", daemon=True
            )
            worker.start()
            worker.join()
        if failures:
            raise failures[0]
        return self._tokenizer.batch_decode(generated, skip_special_tokens=True)

    def _generation_config(self, max_new_tokens: int, temperature: float) -> GenerationConfig:
        from transformers import GenerationConfig

        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {}
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            eos_token_id=self._eos_ids,
            pad_token_id=self._pad_id,
            **sampling,
        )

    def _pieces(
        self,
        prompt: str,
        max_new_tokens: int,
        temperature: float,
        adapter: str | None,
        banned: list[int],
    ) -> Iterator[str]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList, TextIteratorStreamer

        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()
        failures: list[BaseException] = []

        def stop_requested(input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
            looping = is_looping(input_ids[0, prompt_length:].tolist())
            return torch.full(
                (input_ids.shape[0],), stop.is_set() or looping, device=input_ids.device
            )

        def first_token_not_banned(input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            if banned and input_ids.shape[1] == prompt_length:
                scores[:, banned] = -torch.inf
            return scores

        def run(inputs: dict[str, torch.Tensor]) -> None:
            try:
                with self._adapter_active(adapter):
                    model = self._peft if self._peft is not None else self._base
                    model.generate(
                        **inputs,
                        generation_config=self._generation_config(max_new_tokens, temperature),
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([stop_requested]),
                        logits_processor=LogitsProcessorList([first_token_not_banned]),
                    )
            except BaseException as exc:
                failures.append(exc)
                streamer.end()

        with self._lock:
            encoded = self._tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
            prompt_length = encoded["input_ids"].shape[1]
            inputs = {key: value.to(self._base.device) for key, value in encoded.items()}
            worker = threading.Thread(
                target=run, args=(inputs,), name="lorag-generate", daemon=True
            )
            worker.start()
            try:
                yield from (piece for piece in streamer if piece)
            finally:
                stop.set()
                worker.join()
        if failures:
            raise failures[0]

    def _adapter_active(self, adapter: str | None) -> AbstractContextManager[object]:
        """Activate ``adapter`` for the duration, or, with ``None``, turn every adapter off."""
        if self._peft is None:
            return nullcontext()
        if adapter is None:
            return self._peft.disable_adapter()
        self._peft.set_adapter(adapter, inference_mode=True)
        return nullcontext()

    def unload_adapter(self, name: str) -> None:
        """Detach the loaded adapter ``name`` (:class:`AdapterError` if none is loaded so). The
        last one takes the PEFT wrapper with it (peft would go on looking up the deleted one as
        active), leaving the base model as it was loaded."""
        with self._lock:
            if self._peft is None or name not in self._peft.peft_config:
                loaded = ", ".join(self.adapters) or "none"
                raise AdapterError(f"no adapter named {name!r} is loaded (loaded: {loaded})")
            with warnings.catch_warnings():
                # peft says which adapter it made active instead; requests name theirs anyway.
                warnings.filterwarnings("ignore", r"Adapter .* was active which is now deleted")
                self._peft.delete_adapter(name)
            if not self._peft.peft_config:
                self._base = self._peft.unload()
                self._peft = None

    def load_adapter(self, path: str, name: str) -> None:
        """Attach the PEFT adapter folder ``path`` under ``name`` (safetensors only).

        Refused with :class:`AdapterError`: a missing or incomplete folder, any pickle file in it
        (``.bin``, ``.pt``, ``.pkl``, ...), an adapter whose ``base_model_name_or_path`` names
        another model, or a name already loaded.
        """
        folder = Path(path).expanduser()
        config = check_adapter_folder(folder)
        recorded = config.get("base_model_name_or_path")
        if recorded and _model_key(str(recorded)) not in self._base_keys:
            raise AdapterError(
                f"adapter {str(folder)!r} was trained on {recorded!r}, "
                f"not on this generator ({self.model_id!r})"
            )
        from peft import PeftModel

        with self._lock:
            if name in self.adapters:
                raise AdapterError(f"an adapter named {name!r} is already loaded")
            try:
                if self._peft is None:
                    with warnings.catch_warnings():
                        # peft 0.21 reads a property that transformers 5 deprecates.
                        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`")
                        self._peft = PeftModel.from_pretrained(
                            self._base, str(folder), adapter_name=name
                        )
                else:
                    self._peft.load_adapter(str(folder), adapter_name=name)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise AdapterError(f"adapter {str(folder)!r} could not be loaded: {exc}") from exc
            self._peft.eval()


def _cache_keyword(model: Any) -> str:
    """The name ``model.forward`` takes its KV cache under: ``cache`` from transformers 5.24
    (``past_key_values`` still works there, with a deprecation warning), ``past_key_values``
    before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
