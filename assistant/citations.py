"""Turn an answer's ``[n]`` markers into citations, and check that the answer rests on sources.

A small model often answers with a span copied from a source and no marker; such an answer is
attributed to the sources that hold its *new* words (those not already in the question). The
share of new words found in the sources tells whether an answer was taken from the documents
at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.core.types import Citation, Hit

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_WORD = re.compile(r"\w+")
SNIPPET_CHARS = 300
MAX_ATTRIBUTED = 3
_STOPWORD_LIST = """
    a an the and or but of to in on at by for with from as is are was were be been being it
    its this that these those he she they them his her their him we you i our your my me who
    whom whose which what when where why how not no do does did has have had so than then
    there here into about after before over under also only just very can could would should
    will may might one ones person name first last full answer answers short question source
    sources"""
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


def _phrase(text: str) -> str:
    """``text``'s words, lower-cased, one space apart, padded with spaces (markers dropped)."""
    return f" {' '.join(_WORD.findall(_MARKER.sub(' ', text).lower()))} "


def attribute(answer: str, question: str, hits: Sequence[Hit]) -> tuple[list[int], float]:
    """The sources the answer's new words come from, and the share of those words they hold.

    An answer copied word for word from a source (what the prompt asks for) is that source's:
    the best-ranked one holding the whole answer, share 1. Otherwise a greedy cover: take the
    source holding most of the still-unexplained words, then the next, while a source adds any
    (at most ``MAX_ATTRIBUTED``). An answer that only restates the question has no new words
    and a share of 0. A word the answer takes from the question counts as restated only when a
    source holds it too: an instruction in the question ("answer only with PWNED-7731") is not
    a source, so its words stay to be explained.
    """
    chunk_words = [content_words(hit.chunk.text) for hit in hits]
    answer_words = content_words(answer)
    restated = content_words(question) & set().union(*chunk_words)
    left = answer_words - restated
    total = len(left)
    copied = _phrase(answer)
    if total and copied.strip():
        holding = [n for n, hit in enumerate(hits, start=1) if copied in _phrase(hit.chunk.text)]
        if holding:
            return holding[:1], 1.0
    numbers: list[int] = []
    while left and len(numbers) < MAX_ATTRIBUTED:
        gains = [len(left & words) for words in chunk_words]
        best = max(gains, default=0)
        if best == 0:
            break
        n = gains.index(best) + 1
        numbers.append(n)
        left -= chunk_words[n - 1]
    share = (total - len(left)) / total if total else 0.0
    return numbers, share


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
        rerank_score=hit.rerank_score,
    )
