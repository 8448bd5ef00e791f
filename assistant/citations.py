"""Turn an answer's ``[n]`` markers into citations of the sources it was given.

A small model often answers with a span copied from a source and no marker. Then the answer is
attributed to the sources that contain most of its words (``attribute``), so every answer that
is not an abstention points at retrieved chunks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.core.types import Citation, Hit

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_WORD = re.compile(r"\w+")
SNIPPET_CHARS = 300


def cited_numbers(answer: str, n_sources: int) -> list[int]:
    """Source numbers cited as ``[n]`` / ``[n, m]`` in ``answer``, valid ones only, in order."""
    numbers: list[int] = []
    for group in _MARKER.findall(answer):
        for part in group.split(","):
            n = int(part)
            if 1 <= n <= n_sources and n not in numbers:
                numbers.append(n)
    return numbers


def _words(text: str) -> set[str]:
    return {word.lower() for word in _WORD.findall(text)}


def attribute(answer: str, hits: Sequence[Hit]) -> list[int]:
    """Source numbers whose text holds the most of the answer's words (at least half of them)."""
    answer_words = _words(_MARKER.sub(" ", answer))
    if not answer_words or not hits:
        return []
    overlaps = [len(answer_words & _words(hit.chunk.text)) / len(answer_words) for hit in hits]
    best = max(overlaps)
    if best < 0.5:
        return []
    return [n for n, overlap in enumerate(overlaps, start=1) if overlap == best]


def snippet(text: str, answer: str, width: int = SNIPPET_CHARS) -> str:
    """The part of ``text`` around the first answer word it contains, about ``width`` chars."""
    lowered = text.lower()
    positions = [lowered.find(word) for word in _words(answer) if len(word) > 3]
    found = [p for p in positions if p >= 0]
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


def cite(answer: str, hits: Sequence[Hit]) -> list[Citation]:
    """Citations for ``answer``: its valid ``[n]`` markers, else attribution by word overlap."""
    numbers = cited_numbers(answer, len(hits)) or attribute(answer, hits)
    return [to_citation(n, hits[n - 1], answer) for n in numbers]
