"""Turn an answer's ``[n]`` markers into citations, and check that the answer rests on sources.

A small model often answers with a span copied from a source and no marker; such an answer is
attributed to the sources that hold its *new* words (those not already in the question). The
same measure, ``support``, tells whether an answer is grounded at all: an answer whose new words
are mostly absent from every source was not taken from the documents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.core.types import Citation, Hit

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_WORD = re.compile(r"\w+")
SNIPPET_CHARS = 300
ATTRIBUTION_MIN_SUPPORT = 0.5
_STOPWORD_LIST = """
    a an the and or but of to in on at by for with from as is are was were be been being it
    its this that these those he she they them his her their him we you i our your my me who
    whom whose which what when where why how not no do does did has have had so than then
    there here into about after before over under also only just very can could would should
    will may might one ones person name first last full"""
STOPWORDS = frozenset(_STOPWORD_LIST.split())


def cited_numbers(answer: str, n_sources: int) -> list[int]:
    """Source numbers cited as ``[n]`` / ``[n, m]`` in ``answer``, valid ones only, in order."""
    numbers: list[int] = []
    for group in _MARKER.findall(answer):
        for part in group.split(","):
            n = int(part)
            if 1 <= n <= n_sources and n not in numbers:
                numbers.append(n)
    return numbers


def content_words(text: str) -> set[str]:
    """Lower-cased words of ``text`` without stopwords, markers or one-letter tokens."""
    words = {word.lower() for word in _WORD.findall(_MARKER.sub(" ", text))}
    return {word for word in words if len(word) > 1 and word not in STOPWORDS}


def new_words(answer: str, question: str) -> set[str]:
    """The answer's content words that the question does not already contain."""
    return content_words(answer) - content_words(question)


def support(words: set[str], text: str) -> float:
    """The share of ``words`` found in ``text`` (0.0 when there are no words)."""
    if not words:
        return 0.0
    return len(words & content_words(text)) / len(words)


def grounding(answer: str, question: str, hits: Sequence[Hit]) -> float:
    """How much of what the answer adds to the question is found in the sources (0..1).

    An answer that only restates the question adds nothing, and scores 0.
    """
    return support(new_words(answer, question), " ".join(hit.chunk.text for hit in hits))


def attribute(answer: str, question: str, hits: Sequence[Hit]) -> list[int]:
    """Source numbers holding the most of the answer's new words (at least half of them)."""
    words = new_words(answer, question)
    if not hits:
        return []
    shares = [support(words, hit.chunk.text) for hit in hits]
    best = max(shares)
    if best < ATTRIBUTION_MIN_SUPPORT:
        return []
    return [n for n, share in enumerate(shares, start=1) if share == best]


def snippet(text: str, answer: str, width: int = SNIPPET_CHARS) -> str:
    """The part of ``text`` around the first answer word it contains, about ``width`` chars."""
    lowered = text.lower()
    found = [p for p in (lowered.find(w) for w in content_words(answer) if len(w) > 3) if p >= 0]
    start = max(0, min(found) - width // 3) if found else 0
    piece = text[start : start + width].strip()
    return ("…" if start > 0 else "") + piece + ("…" if start + width < len(text) else "")


def to_citation(n: int, hit: Hit, answer: str) -> Citation:
    chunk = hit.chunk
    return Citation(
        n=n,
        source=chunk.source,
        title=chunk.title,
        page=chunk.page,
        heading=chunk.heading,
        snippet=snippet(chunk.text, answer),
        score=hit.score,
        similarity=hit.similarity,
        chunk_id=chunk.id,
    )


def cite(answer: str, question: str, hits: Sequence[Hit]) -> list[Citation]:
    """Citations for ``answer``: its valid ``[n]`` markers, else attribution by word overlap."""
    numbers = cited_numbers(answer, len(hits)) or attribute(answer, question, hits)
    return [to_citation(n, hits[n - 1], answer) for n in numbers]
