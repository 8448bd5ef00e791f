"""The query engine: question → hybrid retrieval → numbered sources → streamed answer → citations.

``QueryEngine.stream`` yields the answer's text as it is generated (``Token``) and ends with the
whole ``Answer`` (``Done``); ``ask`` is the same without streaming. When retrieval is weak the
model is not called and the fixed abstain answer is returned. So it is when the model says the
sources do not hold the answer, or when what the answer adds to the question is not found in
the sources (``generation.min_support``): then the streamed draft is replaced by the abstain
answer, and ``Answer.abstain_reason`` says why.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from assistant.citations import attribute, cited_numbers, to_citation
from assistant.core.errors import CollectionNotFoundError, InvalidQuestionError
from assistant.core.prompt import DEFAULT_TEMPLATE, PromptTemplate, fit_sources
from assistant.core.protocols import Embedder, Generator, SparseEncoder, VectorStore
from assistant.core.settings import GenerationSettings, RetrievalSettings
from assistant.core.types import AbstainReason, Answer, Hit

MAX_QUESTION_CHARS = 2000
_SENTENCE_END = re.compile(r"(?<=[.!?\n])\s+")


@dataclass(frozen=True)
class Token:
    """A piece of the answer's text, as generated."""

    text: str


@dataclass(frozen=True)
class Done:
    """The finished answer with its citations; always the last event."""

    answer: Answer


AnswerEvent = Token | Done


def drop_repeated_sentences(text: str) -> str:
    """``text`` without sentences that repeat an earlier one (a small model's loops)."""
    seen: set[str] = set()
    kept: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        key = sentence.strip().lower()
        if key and key not in seen:
            seen.add(key)
            kept.append(sentence.strip())
    return " ".join(kept)


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
    ) -> None:
        self.embedder = embedder
        self.sparse = sparse
        self.store = store
        self.generator = generator
        self.retrieval = retrieval
        self.generation = generation
        self.template = template

    def retrieve(self, question: str, collection: str, top_k: int | None = None) -> list[Hit]:
        """The best ``top_k`` chunks of ``collection`` for ``question`` (hybrid, RRF-fused)."""
        if not self.store.has_collection(collection):
            raise CollectionNotFoundError(collection, self.store.list_collections())
        return self.store.hybrid_search(
            collection,
            dense=self.embedder.embed_query(question),
            sparse=self.sparse.encode_query(question),
            limit=top_k or self.retrieval.top_k,
            candidates=max(self.retrieval.candidates, top_k or 0),
        )

    def stream(
        self,
        question: str,
        collection: str,
        adapter: str | None = None,
        top_k: int | None = None,
    ) -> Iterator[AnswerEvent]:
        """Answer ``question`` from ``collection``: text pieces, then the ``Answer``."""
        question = check_question(question)
        started = time.perf_counter()
        hits = self.retrieve(question, collection, top_k)
        timings = {"retrieve_s": time.perf_counter() - started}
        if not hits or max(hit.similarity for hit in hits) < self.retrieval.min_similarity:
            yield Token(self.template.abstain_answer)
            timings["total_s"] = time.perf_counter() - started
            yield Done(self._abstain(question, hits, "weak_retrieval", adapter, timings))
            return

        budget = min(self.generation.context_tokens, self.generator.context_window)
        budget -= self.generation.max_new_tokens
        sources = fit_sources(self.template, question, hits, self.generator.count_tokens, budget)
        hits = hits[: len(sources)]
        messages = self.template.messages(question, sources)
        pieces: list[str] = []
        for piece in self.generator.stream(
            messages,
            max_new_tokens=self.generation.max_new_tokens,
            temperature=self.generation.temperature,
            adapter=adapter,
        ):
            if not pieces:
                timings["first_token_s"] = time.perf_counter() - started
            pieces.append(piece)
            yield Token(piece)
        timings["total_s"] = time.perf_counter() - started
        text = drop_repeated_sentences("".join(pieces))
        yield Done(self._answer(question, text, hits, adapter, timings))

    def ask(
        self,
        question: str,
        collection: str,
        adapter: str | None = None,
        top_k: int | None = None,
    ) -> Answer:
        """Answer ``question`` from ``collection`` in one piece."""
        for event in self.stream(question, collection, adapter=adapter, top_k=top_k):
            if isinstance(event, Done):
                return event.answer
        raise AssertionError("QueryEngine.stream ended without a Done event")

    def _answer(
        self,
        question: str,
        text: str,
        hits: list[Hit],
        adapter: str | None,
        timings: dict[str, float],
    ) -> Answer:
        if self.template.is_abstention(text):
            return self._abstain(question, hits, "model_declined", adapter, timings)
        attributed, share = attribute(text, question, hits)
        if share < self.generation.min_support:
            return self._abstain(question, hits, "unsupported", adapter, timings)
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

    def _abstain(
        self,
        question: str,
        hits: list[Hit],
        reason: AbstainReason,
        adapter: str | None,
        timings: dict[str, float],
    ) -> Answer:
        return Answer(
            question=question,
            text=self.template.abstain_answer,
            citations=[],
            abstained=True,
            abstain_reason=reason,
            adapter=adapter,
            sources=[to_citation(n, hit, question) for n, hit in enumerate(hits, start=1)],
            timings=timings,
        )
