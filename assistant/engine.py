"""The query engine: question → hybrid retrieval (→ reranking) → numbered sources → streamed
answer → citations.

``QueryEngine.stream`` yields the answer's text as it is generated (``Token``) and ends with the
whole ``Answer`` (``Done``); ``ask`` is the same without streaming. When retrieval is weak or
off the question's topic (:mod:`assistant.relevance`) the model is not called and the fixed
abstain answer is returned. So it is when the model says the sources do not hold the answer, or
when what the answer adds to the question is not found in the sources
(``generation.min_support``): then the model drafts once more, its first token not the one the
withdrawn draft began with, and if that fails too the streamed draft is replaced by the abstain
answer, with ``Answer.abstain_reason`` saying why.

``ask_batch`` answers many questions at once (their embeddings in one batch, their answers in one
generation batch); both paths turn the generated text into an ``Answer`` with ``answer_from``.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import abc
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from typing import Literal

import numpy as np
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from assistant import answer_text
from assistant.citations import attribute, cited_numbers, to_citation
from assistant.conversation import (
    Conversation,
    history_messages,
    search_text,
    standalone_question,
    stands_alone,
    with_conversation,
)
from assistant.core import tracing
from assistant.core.errors import CollectionNotFoundError, InvalidQuestionError
from assistant.core.prompt import DEFAULT_TEMPLATE, PromptTemplate, fit_sources
from assistant.core.protocols import Embedder, Generator, Reranker, SparseEncoder, VectorStore
from assistant.core.settings import GenerationSettings, RetrievalSettings
from assistant.core.types import AbstainReason, Answer, Hit
from assistant.relevance import is_off_topic
from assistant.reranking import rerank

MAX_QUESTION_CHARS = 2000
RetrievalMode = Literal["hybrid", "dense"]


@dataclass(frozen=True)
class Token:
    """A piece of the answer's text, as generated."""

    text: str


@dataclass(frozen=True)
class Done:
    """The finished answer with its citations; always the last event."""

    answer: Answer


AnswerEvent = Token | Done


def check_question(question: str, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """The question stripped; an empty or over-long one raises InvalidQuestionError."""
    stripped = question.strip()
    if not stripped:
        raise InvalidQuestionError("the question is empty: ask something about your documents")
    if len(stripped) > max_chars:
        raise InvalidQuestionError(
            f"the question is {len(stripped)} characters long, over the limit of {max_chars}"
        )
    return stripped


class QueryEngine:
    """Answers questions over one store with one generator (and its loaded adapters)."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        sparse: SparseEncoder,
        store: VectorStore,
        generator: Generator,
        retrieval: RetrievalSettings,
        generation: GenerationSettings,
        template: PromptTemplate = DEFAULT_TEMPLATE,
        reranker: Reranker | None = None,
        trace_questions: bool = False,
    ) -> None:
        self.embedder = embedder
        self.sparse = sparse
        self.store = store
        self.generator = generator
        self.reranker = reranker
        self.retrieval = retrieval
        self.generation = generation
        self.template = template
        self.templates: dict[str, PromptTemplate] = {}
        self.trace_questions = trace_questions
        """Put question texts on their traces (``api.log_question_text``): off, traces (each
        answer's ``answer`` span with ``retrieve`` and ``generate`` under it,
        :mod:`assistant.core.tracing`) carry no question text."""

    def with_generator(self, generator: Generator) -> QueryEngine:
        """This engine (same store, retrieval and templates) answering with ``generator``."""
        twin = copy.copy(self)
        twin.generator = generator
        twin.templates = dict(self.templates)
        return twin

    def template_for(self, adapter: str | None) -> PromptTemplate:
        """The prompt template an adapter was trained with; the engine's own for the base."""
        return self.templates.get(adapter, self.template) if adapter else self.template

    def retrieve(
        self,
        question: str,
        collection: str,
        top_k: int | None = None,
        mode: RetrievalMode = "hybrid",
        *,
        parent: Span | None = None,
    ) -> list[Hit]:
        """The best ``top_k`` chunks of ``collection`` for ``question``: hybrid (dense and BM25,
        RRF-fused) or dense only, then reordered by the reranker when there is one
        (:mod:`assistant.reranking`). Its ``retrieve`` span goes under ``parent`` (default: the
        current span)."""
        self._check_collection(collection)
        with self._retrieve_span(collection, mode, parent) as span:
            vector = self.embedder.embed_query(question)
            hits = self._search(collection, question, vector, top_k, mode)
            span.set_attributes(tracing.hit_attributes(hits))
        return hits

    def retrieve_batch(
        self,
        questions: Sequence[str],
        collection: str,
        top_k: int | None = None,
        mode: RetrievalMode = "hybrid",
        *,
        parents: Sequence[Span] | None = None,
    ) -> list[list[Hit]]:
        """:meth:`retrieve` for several questions, their embeddings computed in one batch; the
        ``retrieve`` span of each search goes under its question's span in ``parents``."""
        self._check_collection(collection)
        vectors = self.embedder.embed_documents(list(questions))
        found: list[list[Hit]] = []
        for i, (question, vector) in enumerate(zip(questions, vectors, strict=True)):
            with self._retrieve_span(collection, mode, parents[i] if parents else None) as span:
                hits = self._search(collection, question, vector, top_k, mode)
                span.set_attributes(
                    {**tracing.hit_attributes(hits), tracing.BATCH_SIZE: len(questions)}
                )
            found.append(hits)
        return found

    def stream(
        self,
        question: str,
        collection: str,
        adapter: str | None = None,
        top_k: int | None = None,
        conversation: Conversation | None = None,
    ) -> Iterator[AnswerEvent]:
        """Answer ``question`` from ``collection``: text pieces, then the ``Answer``.

        With a ``conversation``, a follow-up is first rewritten to stand alone
        (:mod:`assistant.conversation`; ``Answer.query`` holds the rewrite): retrieval, the
        prompt's question and the support check use the rewrite, and the prompt shows the last
        ``generation.history_turns`` turns before the sources.

        Each question is one trace: an ``answer`` span (under the current span) with the
        ``retrieve`` and ``generate`` spans under it."""
        question = check_question(question)
        self._check_collection(collection)
        traced = self._traced(question, collection, adapter)
        with (
            tracing.span("answer", attributes=traced) as root,
            closing(
                self._stream(root, question, collection, adapter, top_k, conversation)
            ) as events,
        ):
            for event in events:
                if isinstance(event, Done):
                    root.set_attributes(tracing.answer_attributes(event.answer))
                yield event

    def _stream(
        self,
        root: Span,
        question: str,
        collection: str,
        adapter: str | None,
        top_k: int | None,
        conversation: Conversation | None,
    ) -> abc.Generator[AnswerEvent, None, None]:
        template = self.template_for(adapter)
        started = time.perf_counter()
        timings: dict[str, float] = {}
        query = search = question
        if conversation is not None and conversation.turns and not stands_alone(question):
            with tracing.span("condense", root):
                query = standalone_question(self.generator, conversation.turns, question)
            search = search_text(conversation.turns, query)
            timings["condense_s"] = time.perf_counter() - started
        hits = self.retrieve(search, collection, top_k, parent=root)
        timings["retrieve_s"] = time.perf_counter() - started - timings.get("condense_s", 0.0)
        if is_off_topic(query, hits, self.sparse, self.retrieval):
            yield Token(template.abstain_answer)
            timings["total_s"] = time.perf_counter() - started
            answer = self._abstain(template, query, hits, "weak_retrieval", adapter, timings)
            yield Done(_asked(answer, question))
            return

        hits, messages = self._prompt(template, query, hits, conversation)
        timings["prompt_tokens"] = self.generator.count_tokens(self.generator.render(messages))
        pieces: list[str] = []
        for piece in self._drafted(messages, adapter, timings, started, root):
            pieces.append(piece)
            yield Token(piece)
        answer = self._checked(query, hits, messages, "".join(pieces), adapter, timings, root)
        timings["total_s"] = time.perf_counter() - started
        yield Done(_asked(answer, question))

    def stream_closed_book(
        self, question: str, adapter: str | None = None
    ) -> Iterator[AnswerEvent]:
        """Answer ``question`` without documents: what the model (or the adapter) knows by
        itself. Nothing is retrieved or cited; only the model's own refusal abstains. Its trace
        is an ``answer`` span with a ``generate`` span under it."""
        question = check_question(question)
        template = self.template_for(adapter)
        with tracing.span("answer", attributes=self._traced(question, None, adapter)) as root:
            started = time.perf_counter()
            messages = template.closed_book_messages(question)
            prompt = self.generator.render(messages)
            timings: dict[str, float] = {"prompt_tokens": self.generator.count_tokens(prompt)}
            pieces: list[str] = []
            for piece in self._drafted(messages, adapter, timings, started, root):
                pieces.append(piece)
                yield Token(piece)
            answer = self.answer_from(question, [], "".join(pieces), adapter, timings)
            timings["total_s"] = time.perf_counter() - started
            root.set_attributes(tracing.answer_attributes(answer))
            yield Done(answer)

    def ask(
        self,
        question: str,
        collection: str,
        adapter: str | None = None,
        top_k: int | None = None,
        conversation: Conversation | None = None,
    ) -> Answer:
        """Answer ``question`` from ``collection`` in one piece (see :meth:`stream`)."""
        for event in self.stream(question, collection, adapter, top_k, conversation):
            if isinstance(event, Done):
                return event.answer
        raise AssertionError("QueryEngine.stream ended without a Done event")

    def ask_batch(
        self,
        questions: Sequence[str],
        collection: str,
        adapter: str | None = None,
        top_k: int | None = None,
        mode: RetrievalMode = "hybrid",
    ) -> list[Answer]:
        """Answer several questions at once: one retrieval batch, one generation batch.

        Decoding is greedy whatever ``generation.temperature`` says. Each answer's timings are
        the batch's times shared equally among its questions. Each question is one trace, as
        with :meth:`stream`; its ``generate`` span is the whole batch's generation.
        """
        questions = [check_question(question) for question in questions]
        traced = [self._traced(question, collection, adapter) for question in questions]
        with tracing.spans("answer", traced) as roots:
            started = time.perf_counter()
            hits = self.retrieve_batch(questions, collection, top_k, mode, parents=roots)
            retrieve_s = time.perf_counter() - started
            answers = self._answer_batch(questions, hits, adapter, roots)
        for answer in answers:
            answer.timings["retrieve_s"] = retrieve_s / len(answers)
            answer.timings["total_s"] += retrieve_s / len(answers)
        return answers

    def answer_batch(
        self,
        questions: Sequence[str],
        hits: Sequence[list[Hit]] | None,
        adapter: str | None = None,
    ) -> list[Answer]:
        """Answers to ``questions`` from their retrieved ``hits``, generated in one batch.

        With ``hits=None`` each question is asked alone, without sources (what the model knows
        by itself): nothing is cited and only the model's own refusal makes an abstention.
        Each question is one trace (see :meth:`ask_batch`).
        """
        questions = [check_question(question) for question in questions]
        traced = [self._traced(question, None, adapter) for question in questions]
        with tracing.spans("answer", traced) as roots:
            return self._answer_batch(questions, hits, adapter, roots)

    def _answer_batch(
        self,
        questions: Sequence[str],
        hits: Sequence[list[Hit]] | None,
        adapter: str | None,
        roots: Sequence[Span],
    ) -> list[Answer]:
        template = self.template_for(adapter)
        started = time.perf_counter()
        answers: dict[int, Answer] = {}
        prompts: dict[int, tuple[list[Hit], list[dict[str, str]]]] = {}
        for i, question in enumerate(questions):
            if hits is None:
                prompts[i] = ([], template.closed_book_messages(question))
            elif is_off_topic(question, hits[i], self.sparse, self.retrieval):
                weak: AbstainReason = "weak_retrieval"
                answers[i] = self._abstain(template, question, hits[i], weak, adapter, {})
            else:
                prompts[i] = self._prompt(template, question, hits[i])
        generating = {**self._generating(adapter, 0.0), tracing.BATCH_SIZE: len(prompts)}
        parents = [roots[i] for i in prompts]
        with tracing.spans("generate", [generating] * len(prompts), parents) as spans:
            texts = self.generator.generate_batch(
                [messages for _, messages in prompts.values()],
                max_new_tokens=self.generation.max_new_tokens,
                adapter=adapter,
            )
            for span, (_, messages), text in zip(spans, prompts.values(), texts, strict=True):
                self._usage(span, messages, text)
        for (i, (used, messages)), text in zip(prompts.items(), texts, strict=True):
            answers[i] = self._checked(questions[i], used, messages, text, adapter, {}, roots[i])
        share = (time.perf_counter() - started) / max(len(questions), 1)
        ordered = [answers[i] for i in range(len(questions))]
        for answer, root in zip(ordered, roots, strict=True):
            answer.timings.update(total_s=share)
            root.set_attributes(tracing.answer_attributes(answer))
        return ordered

    def answer_from(
        self,
        question: str,
        hits: list[Hit],
        text: str,
        adapter: str | None = None,
        timings: dict[str, float] | None = None,
    ) -> Answer:
        """The ``Answer`` that generated ``text`` makes, given the ``hits`` numbered in its prompt.

        The text is tidied (:func:`assistant.answer_text.tidy`); the answer becomes an abstention
        when the model declined or, with sources, when its new words are not found in them;
        otherwise its ``[n]`` markers (or, without markers, the sources holding its words)
        become its citations.
        """
        template = self.template_for(adapter)
        timings = timings if timings is not None else {}
        text = answer_text.tidy(text)
        if template.is_abstention(text):
            return self._abstain(template, question, hits, "model_declined", adapter, timings)
        attributed, share = attribute(text, question, hits)
        if hits and share < self.generation.min_support:
            return self._abstain(template, question, hits, "unsupported", adapter, timings)
        cited = cited_numbers(text, len(hits)) or attributed
        return Answer(
            question=question,
            text=text,
            citations=[to_citation(n, hits[n - 1], text) for n in cited],
            abstained=False,
            adapter=adapter,
            sources=[to_citation(n, hit, text) for n, hit in enumerate(hits, start=1)],
            timings=timings,
        )

    def _checked(
        self,
        question: str,
        hits: list[Hit],
        messages: list[dict[str, str]],
        draft: str,
        adapter: str | None,
        timings: dict[str, float],
        root: Span,
    ) -> Answer:
        """The ``Answer`` of ``draft`` (:meth:`answer_from`); for a draft the support check
        withdrew, that of a second draft, which may not start as the first did.

        A small model often answers with a word of the question ("Who harassed Eshmun?" →
        "Eshmun"), which the support check withdraws as not taken from the sources. Measured on
        the split abstention check (benchmarks/abstention.py): 7 of the 11 answerable questions
        abstained on were such drafts, and with their first token forbidden 6 got an answer the
        sources hold (3 of them right). The second draft is checked like the first; one that
        still fails is an abstention."""
        answer = self.answer_from(question, hits, draft, adapter, timings)
        if answer.abstain_reason != "unsupported":
            return answer
        started = time.perf_counter()
        redrafting = {**self._generating(adapter, 0.0), "lorag.redraft": True}
        with tracing.span("generate", root, redrafting) as span:
            text = "".join(
                self.generator.stream(
                    messages,
                    max_new_tokens=self.generation.max_new_tokens,
                    adapter=adapter,
                    avoid=[draft],
                )
            )
            self._usage(span, messages, text)
        timings["redraft_s"] = time.perf_counter() - started
        return self.answer_from(question, hits, text, adapter, timings)

    def _drafted(
        self,
        messages: list[dict[str, str]],
        adapter: str | None,
        timings: dict[str, float],
        started: float,
        root: Span,
    ) -> Iterator[str]:
        """The model's draft as it is generated; its first piece's time goes in ``timings``,
        its ``generate`` span under ``root``."""
        temperature = self.generation.temperature
        with tracing.span("generate", root, self._generating(adapter, temperature)) as span:
            pieces: list[str] = []
            for piece in self.generator.stream(
                messages,
                max_new_tokens=self.generation.max_new_tokens,
                temperature=temperature,
                adapter=adapter,
            ):
                if not pieces:
                    timings["first_token_s"] = time.perf_counter() - started
                pieces.append(piece)
                yield piece
            self._usage(span, messages, "".join(pieces))

    def _traced(
        self, question: str, collection: str | None, adapter: str | None
    ) -> dict[str, AttributeValue]:
        """The attributes of a question's ``answer`` span (its text only if allowed)."""
        attributes: dict[str, AttributeValue] = {
            tracing.ADAPTER: adapter or "base",
            tracing.MODEL: self.generator.model_id,
        }
        if collection is not None:
            attributes[tracing.COLLECTION] = collection
        if self.trace_questions:
            attributes[tracing.QUESTION] = question
        return attributes

    def _generating(self, adapter: str | None, temperature: float) -> dict[str, AttributeValue]:
        """The attributes of a ``generate`` span."""
        return {
            tracing.OPERATION: "chat",
            tracing.MODEL: self.generator.model_id,
            tracing.ADAPTER: adapter or "base",
            tracing.MAX_TOKENS: self.generation.max_new_tokens,
            tracing.TEMPERATURE: temperature,
        }

    def _usage(self, span: Span, messages: list[dict[str, str]], text: str) -> None:
        """The prompt's and the answer's token counts on a ``generate`` span (counted only when
        the span is recorded)."""
        if span.is_recording():
            prompt = self.generator.count_tokens(self.generator.render(messages))
            span.set_attributes(
                {
                    tracing.INPUT_TOKENS: prompt,
                    tracing.OUTPUT_TOKENS: self.generator.count_tokens(text),
                }
            )

    def _retrieve_span(
        self, collection: str, mode: RetrievalMode, parent: Span | None
    ) -> AbstractContextManager[Span]:
        """The current span for a search (its rerank span goes under it)."""
        return tracing.current_span(
            "retrieve", parent, {tracing.COLLECTION: collection, "lorag.retrieval.mode": mode}
        )

    def _check_collection(self, collection: str) -> None:
        if not self.store.has_collection(collection):
            raise CollectionNotFoundError(collection, self.store.list_collections())

    def _search(
        self,
        collection: str,
        question: str,
        dense: np.ndarray,
        top_k: int | None,
        mode: RetrievalMode,
    ) -> list[Hit]:
        limit = top_k or self.retrieval.top_k
        pool = limit if self.reranker is None else max(self.retrieval.rerank_candidates, limit)
        if mode == "dense":
            hits = self.store.dense_search(collection, dense, limit=pool)
        else:
            hits = self.store.hybrid_search(
                collection,
                dense=dense,
                sparse=self.sparse.encode_query(question),
                limit=pool,
                candidates=max(self.retrieval.candidates, pool),
            )
        return hits if self.reranker is None else rerank(self.reranker, question, hits, limit)

    def _prompt(
        self,
        template: PromptTemplate,
        question: str,
        hits: list[Hit],
        conversation: Conversation | None = None,
    ) -> tuple[list[Hit], list[dict[str, str]]]:
        """The hits that fit in the prompt's token budget, and the prompt's messages (with a
        conversation's earlier turns, in at most a quarter of the budget, and instructions)."""
        count = self.generator.count_tokens
        budget = min(self.generation.context_tokens, self.generator.context_window)
        budget -= self.generation.max_new_tokens
        history: list[dict[str, str]] = []
        instructions = conversation.instructions if conversation else ""
        if conversation is not None:
            most = self.generation.history_turns
            history = history_messages(conversation.turns, count, budget // 4, most)
            budget -= sum(count(m["content"]) + 4 for m in history) + count(instructions)
        sources = fit_sources(template, question, hits, count, budget)
        messages = template.messages(question, sources)
        if conversation is not None:
            messages = with_conversation(messages, history, instructions)
        return hits[: len(sources)], messages

    def _abstain(
        self,
        template: PromptTemplate,
        question: str,
        hits: list[Hit],
        reason: AbstainReason,
        adapter: str | None,
        timings: dict[str, float],
    ) -> Answer:
        return Answer(
            question=question,
            text=template.abstain_answer,
            citations=[],
            abstained=True,
            abstain_reason=reason,
            adapter=adapter,
            sources=[to_citation(n, hit, question) for n, hit in enumerate(hits, start=1)],
            timings=timings,
        )


def _asked(answer: Answer, question: str) -> Answer:
    """``answer`` (made for the standalone ``answer.question``) as the answer to ``question``:
    the rewrite, when there was one, is kept as ``query``."""
    if answer.question == question:
        return answer
    return dataclasses.replace(answer, question=question, query=answer.question)
