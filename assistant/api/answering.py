"""Answering over HTTP, for ``/v1/ask`` and ``/v1/chat/completions`` alike.

:meth:`Answering.question` checks a request before anything is queued: the key's read right on
the collection (403), the collection (404; 400 when the key can read none yet), the question
(422), the adapter (404 when unknown, 422 when trained on another base, 409 when tainted by an
erasure), and caps the answer's length at ``api.max_new_tokens``.
The answer then runs on the generation queue (:mod:`assistant.api.queue`): :meth:`answer` waits
for it, :meth:`open_stream` yields its tokens as they come. Both give up after
``api.request_timeout_s`` (503, the answer is stopped). One loaded base model serves every
adapter: an adapter is attached to it the first time it is asked for, then switched to. Each
answer is remembered under its request id (:mod:`assistant.api.recent`) for feedback to name.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from concurrent.futures import Future
from contextlib import closing
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from fastapi import HTTPException

from assistant.api.audit import AuditLog
from assistant.api.auth import Principal
from assistant.api.metrics import Metrics
from assistant.api.queue import GenerationQueue, QueueFull
from assistant.api.recent import GivenAnswer, RecentAnswers
from assistant.conversation import Conversation
from assistant.core.errors import AdapterError, CollectionNotFoundError
from assistant.core.registry import AdapterRecord, check_base, check_untainted
from assistant.core.types import Answer, Citation
from assistant.engine import AnswerEvent, Done, Token, check_question
from assistant.runtime import BASE, Runtime
from ingestion.chunking import document_id

R = TypeVar("R")
E = TypeVar("E")


@dataclass(frozen=True)
class Question:
    """A checked request: what to answer, from where, with which adapter, how long at most."""

    text: str
    collection: str
    adapter: AdapterRecord | None
    top_k: int | None
    max_new_tokens: int
    temperature: float | None
    conversation: Conversation | None = None
    closed_book: bool = False


@dataclass(frozen=True)
class Answered:
    """A finished answer with what the API reports beside it."""

    answer: Answer
    question: Question
    queue_s: float
    tokens: int
    answer_id: str
    """The request id: the answer's audit line carries it, and feedback names it."""


class AnswerCancelled(Exception):
    """The request was dropped (timeout, client gone) before its answer was finished."""


class Answering:
    """Checks questions and answers them on the generation queue."""

    def __init__(
        self, runtime: Runtime, queue: GenerationQueue, metrics: Metrics, audit: AuditLog
    ) -> None:
        self.runtime = runtime
        self.queue = queue
        self.metrics = metrics
        self.audit = audit
        self.api = runtime.settings.api
        self.recent = RecentAnswers(self.api.feedback_answers)
        self._adapter_lock = threading.Lock()

    def question(
        self,
        caller: Principal,
        *,
        text: str,
        collection: str | None,
        adapter: str | None,
        top_k: int | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        conversation: Conversation | None = None,
        closed_book: bool = False,
    ) -> Question:
        """Check a request (see the module docstring); the :class:`Question` to answer."""
        name = collection or self.runtime.settings.collection
        caller.require(name, "read")
        store = self.runtime.store
        if not store.has_collection(name):
            missing = CollectionNotFoundError(name, caller.readable(store.list_collections()))
            if not missing.known:  # nothing to answer from until a collection is made
                raise HTTPException(400, str(missing))
            raise missing
        wanted = max_new_tokens or self.runtime.settings.generation.max_new_tokens
        return Question(
            text=check_question(text, self.api.max_question_chars),
            collection=name,
            adapter=self.resolve_adapter(adapter, name),
            top_k=top_k,
            max_new_tokens=min(wanted, self.api.max_new_tokens),
            temperature=temperature,
            conversation=conversation,
            closed_book=closed_book,
        )

    def resolve_adapter(self, ref: str | None, collection: str | None) -> AdapterRecord | None:
        """The adapter version ``ref`` names (``None``: the one bound to ``collection``;
        ``"base"``: none); 404 for an unknown one, 409 for one tainted by an erasure."""
        registry = self.runtime.registry
        if ref == BASE:
            return None
        ref = ref or (registry.binding(collection) if collection else None)
        if ref is None:
            return None
        try:
            record = registry.get(ref)
        except AdapterError as error:
            raise HTTPException(404, str(error)) from None
        check_base(record, self.runtime.settings)
        check_untainted(record)
        return record

    async def answer(self, question: Question, caller: Principal, request_id: str) -> Answered:
        """The whole answer (503 when the queue is full or the answer runs past the timeout)."""
        submitted = time.perf_counter()
        return await self.run_queued(
            lambda cancel: self._generate(question, caller, request_id, cancel, None, submitted)
        )

    def open_stream(
        self, question: Question, caller: Principal, request_id: str
    ) -> AsyncGenerator[Token | Answered, None]:
        """Queue the answer now (503 at once when full); its tokens, then the :class:`Answered`.

        Closing the iterator early (the client left) stops the answer. Running past the timeout
        raises an HTTPException(503) from the iterator.
        """
        submitted = time.perf_counter()
        return self.stream_queued(
            lambda emit, cancel: self._generate(
                question, caller, request_id, cancel, emit, submitted
            )
        )

    async def run_queued(self, work: Callable[[threading.Event], R]) -> R:
        """``work(cancel)``'s result, run on the generation queue (503 when the queue is full
        or the work runs past ``api.request_timeout_s``; ``cancel`` is then set)."""
        cancel = threading.Event()
        future = self._submit(lambda: work(cancel))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.api.request_timeout_s)
        except TimeoutError:
            cancel.set()
            raise self._timed_out() from None

    def stream_queued(
        self, work: Callable[[Callable[[E], None], threading.Event], R]
    ) -> AsyncGenerator[E | R, None]:
        """Queue ``work(emit, cancel)`` now (503 at once when full); what it emits as it runs,
        then its result. Closing the iterator early sets ``cancel``; running past the timeout
        raises an HTTPException(503) from the iterator."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[E | None] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: E | None) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening
                cancel.set()

        future = self._submit(lambda: work(emit, cancel))
        future.add_done_callback(lambda _: emit(None))

        async def drain() -> AsyncGenerator[E | R, None]:
            deadline = loop.time() + self.api.request_timeout_s
            try:
                while (
                    item := await asyncio.wait_for(events.get(), deadline - loop.time())
                ) is not None:
                    yield item
                yield future.result()
            except TimeoutError:
                raise self._timed_out() from None
            finally:
                cancel.set()
                future.cancel()

        return drain()

    def _submit(self, work: Callable[[], R]) -> Future[R]:
        try:
            return self.queue.submit(work)
        except QueueFull as full:
            raise HTTPException(
                503, str(full), headers={"Retry-After": str(full.retry_after)}
            ) from None

    def _timed_out(self) -> HTTPException:
        self.metrics.rejected.labels("timeout").inc()
        retry = self.queue.retry_after()
        return HTTPException(
            503,
            f"no answer within {self.api.request_timeout_s:g} s (api.request_timeout_s): the "
            f"server is busy; retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )

    def _generate(
        self,
        question: Question,
        caller: Principal,
        request_id: str,
        cancel: threading.Event,
        emit: Callable[[Token], None] | None,
        submitted: float,
    ) -> Answered:
        """Run on the queue's worker: attach the adapter, stream the answer, count, audit."""
        queue_s = time.perf_counter() - submitted
        if cancel.is_set():
            raise AnswerCancelled
        key = self.attach(question.adapter, question.collection)
        engine = copy.copy(self.runtime.engine)  # shares the models and the adapter templates
        settings: dict[str, float] = {"max_new_tokens": question.max_new_tokens}
        if question.temperature is not None:
            settings["temperature"] = question.temperature
        engine.generation = engine.generation.model_copy(update=settings)
        pieces: list[str] = []
        answer: Answer | None = None
        events = (
            engine.stream_closed_book(question.text, key)
            if question.closed_book
            else engine.stream(
                question.text, question.collection, key, question.top_k, question.conversation
            )
        )
        with closing(cast(Generator[AnswerEvent, None, None], events)):  # stops the model early
            for event in events:
                if cancel.is_set():
                    raise AnswerCancelled
                if isinstance(event, Done):
                    answer = event.answer
                else:
                    pieces.append(event.text)
                    if emit is not None:
                        emit(event)
        assert answer is not None
        tokens = 0
        if "first_token_s" in answer.timings:  # the model was called
            tokens = self.runtime.generator.count_tokens("".join(pieces))
            self.metrics.tokens.inc(tokens)
            self.metrics.first_token.observe(answer.timings["first_token_s"])
        record = question.adapter
        self.audit.answer(
            key_id=caller.key_id,
            action="answer",
            collection=question.collection,
            adapter=record.name if record else None,
            adapter_version=record.version if record else None,
            answer=answer,
            request_id=request_id,
        )
        given = GivenAnswer(
            caller.key_id, question.collection, record.ref if record else None, answer
        )
        self.recent.remember(request_id, given)
        return Answered(answer, question, queue_s, tokens, request_id)

    def attach(self, record: AdapterRecord | None, collection: str) -> str | None:
        """Load ``record``'s adapter onto the base (once) and return its name there."""
        if record is None:
            return None
        with self._adapter_lock:
            return self.runtime.use_adapter(record.ref, collection)


def citation_out(citation: Citation) -> dict[str, Any]:
    """A citation as the API shows it."""
    return {
        "n": citation.n,
        "source": citation.source,
        "title": citation.title,
        "page": citation.page,
        "heading": citation.heading,
        "snippet": citation.snippet,
        "score": citation.score,
        "similarity": citation.similarity,
        "rerank_score": citation.rerank_score,
        "doc_id": document_id(citation.source),
        "chunk_id": citation.chunk_id,
    }


def ask_response(answered: Answered) -> dict[str, Any]:
    """The ``/v1/ask`` body for a finished answer."""
    answer, question = answered.answer, answered.question
    timings = answer.timings
    retrieve = timings.get("retrieve_s", 0.0)
    total = timings.get("total_s", retrieve)
    first = timings.get("first_token_s")
    prompt_tokens = timings.get("prompt_tokens")
    return {
        "answer_id": answered.answer_id,
        "answer": answer.text,
        "abstained": answer.abstained,
        "abstain_reason": answer.abstain_reason,
        "citations": [citation_out(c) for c in answer.citations],
        "sources": [citation_out(c) for c in answer.sources],
        "query": answer.query,
        "collection": question.collection,
        "adapter": question.adapter.name if question.adapter else None,
        "adapter_version": question.adapter.version if question.adapter else None,
        "timings": {
            "queue_ms": round(answered.queue_s * 1000, 1),
            "retrieve_ms": round(retrieve * 1000, 1),
            "first_token_ms": round(first * 1000, 1) if first is not None else None,
            "generate_ms": round((total - retrieve) * 1000, 1),
            "total_ms": round(total * 1000, 1),
            "prompt_tokens": int(prompt_tokens) if prompt_tokens is not None else None,
        },
    }
