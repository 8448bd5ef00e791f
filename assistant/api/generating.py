"""Plain generation for ``/generate/v1``: this server's model and adapters, no retrieval.

What vLLM or llama.cpp's server offer, so that another lorag (``generator.backend = "remote"``)
or any OpenAI client can use the model loaded here. The messages go to the model as they are;
``model`` is the base model (``generator.model``) or an adapter pushed with
:meth:`ModelServing.load` (vLLM's ``load_lora_adapter`` API), whose name is kept apart from the
adapters lorag's own answers attach. Generations share the answers' queue (one at a time, 503
with ``Retry-After`` when full) and are audited as ``generate``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncGenerator, Callable
from contextlib import closing
from dataclasses import dataclass

from fastapi import HTTPException

from assistant.api.answering import AnswerCancelled, Answering
from assistant.api.audit import AuditLog
from assistant.api.auth import Principal
from assistant.api.metrics import Metrics
from assistant.core.errors import AdapterError
from assistant.runtime import Runtime


def pushed_name(name: str) -> str:
    """The name an adapter pushed as ``name`` has on the generator: never a registry key, and
    one PEFT takes (letters, digits and underscores)."""
    return "pushed_" + hashlib.sha256(name.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Generation:
    """A checked request: the messages, the adapter's name on the generator (``None``: the
    base), and the decoding settings."""

    messages: list[dict[str, str]]
    model: str
    adapter: str | None
    max_new_tokens: int
    temperature: float
    avoid: tuple[str, ...] = ()


@dataclass(frozen=True)
class Generated:
    """A finished generation and its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int


class ModelServing:
    """Generates from messages on the generation queue; holds the pushed adapters."""

    def __init__(
        self, runtime: Runtime, answering: Answering, metrics: Metrics, audit: AuditLog
    ) -> None:
        self.runtime = runtime
        self.answering = answering
        self.metrics = metrics
        self.audit = audit
        self._pushed: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def base_model(self) -> str:
        return self.runtime.settings.generator.model

    def models(self) -> list[str]:
        """The base model, then the pushed adapters by name."""
        with self._lock:
            return [self.base_model, *sorted(self._pushed)]

    def generation(
        self,
        model: str,
        messages: list[dict[str, str]],
        max_new_tokens: int | None,
        temperature: float | None,
        avoid: list[str],
    ) -> Generation:
        """Check a request: a known model (404 naming those served), a length within
        ``api.max_new_tokens``."""
        with self._lock:
            adapter = None if model == self.base_model else self._pushed.get(model)
        if model != self.base_model and adapter is None:
            raise HTTPException(
                404, f"unknown model {model!r} (served: {', '.join(self.models())})"
            )
        settings = self.runtime.settings
        wanted = max_new_tokens or settings.generation.max_new_tokens
        return Generation(
            messages=messages,
            model=model,
            adapter=adapter,
            max_new_tokens=min(wanted, settings.api.max_new_tokens),
            temperature=settings.generation.temperature if temperature is None else temperature,
            avoid=tuple(avoid),
        )

    async def complete(self, generation: Generation, caller: Principal) -> Generated:
        return await self.answering.run_queued(
            lambda cancel: self._generate(generation, caller, cancel, None)
        )

    def stream(
        self, generation: Generation, caller: Principal
    ) -> AsyncGenerator[str | Generated, None]:
        """Queue the generation now (503 at once when full); its pieces, then the whole."""
        return self.answering.stream_queued(
            lambda emit, cancel: self._generate(generation, caller, cancel, emit)
        )

    async def load(self, name: str, path: str, caller: Principal) -> None:
        """Attach the PEFT adapter folder ``path`` (on this machine) under ``name``; 400 when
        that name is taken, 422 for a folder that cannot be loaded here."""
        caller.require(None, "admin")
        with self._lock:
            if name in self._pushed or name == self.base_model:
                raise HTTPException(400, f"the adapter {name!r} has already been loaded")
        generator = self.runtime.generator
        await self.answering.run_queued(  # never while the model generates
            lambda _: generator.load_adapter(path, pushed_name(name))
        )
        with self._lock:
            self._pushed[name] = pushed_name(name)
        self.audit.change(
            key_id=caller.key_id, action="generate.load_adapter", target={"adapter": name}
        )

    async def unload(self, name: str, caller: Principal) -> None:
        caller.require(None, "admin")
        with self._lock:
            loaded = self._pushed.pop(name, None)
        if loaded is None:
            raise HTTPException(404, f"no adapter {name!r} has been loaded")
        generator = self.runtime.generator
        await self.answering.run_queued(lambda _: generator.unload_adapter(loaded))
        self.audit.change(
            key_id=caller.key_id, action="generate.unload_adapter", target={"adapter": name}
        )

    def _generate(
        self,
        generation: Generation,
        caller: Principal,
        cancel: threading.Event,
        emit: Callable[[str], None] | None,
    ) -> Generated:
        """Run on the queue's worker: stream the model's pieces, count, audit."""
        if cancel.is_set():
            raise AnswerCancelled
        generator = self.runtime.generator
        pieces: list[str] = []
        try:
            stream = generator.stream(
                generation.messages,
                generation.max_new_tokens,
                generation.temperature,
                generation.adapter,
                generation.avoid,
            )
        except AdapterError as error:  # unloaded since the request was checked
            raise HTTPException(404, str(error)) from None
        with closing(stream):  # type: ignore[type-var]
            for piece in stream:
                if cancel.is_set():
                    raise AnswerCancelled
                pieces.append(piece)
                if emit is not None:
                    emit(piece)
        text = "".join(pieces)
        generated = Generated(
            text=text,
            prompt_tokens=generator.count_tokens(generator.render(generation.messages)),
            completion_tokens=generator.count_tokens(text),
        )
        self.metrics.tokens.inc(generated.completion_tokens)
        self.audit.change(
            key_id=caller.key_id,
            action="generate",
            target={
                "model": generation.model,
                "prompt_tokens": generated.prompt_tokens,
                "completion_tokens": generated.completion_tokens,
            },
        )
        return generated
