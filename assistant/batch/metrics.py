"""Scores for one question, as pure functions: answers, retrieval, citations, abstention.

Answers are compared after SQuAD normalisation (lower case, no punctuation, no articles, single
spaces), taking the best match over several expected answers.

Retrieval is scored per document: ``retrieved`` is the source of each retrieved chunk in rank
order, and a document counts once, at the rank of its first chunk. A source matches an expected
one when they are equal or, for a relative expected path (``faq/x.rst``, ``x.rst``), when the
source's path ends with its components.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePath

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised expected answer."""
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(answer) for answer in answers))


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """The best token F1 of ``prediction`` against any expected answer (SQuAD).

    An empty normalised prediction or answer scores 1 only when both are empty.
    """
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for answer in answers:
        gold = normalize_answer(answer).split()
        common = sum((Counter(predicted) & Counter(gold)).values())
        if not predicted or not gold:
            best = max(best, float(predicted == gold))
        elif common:
            precision, recall = common / len(predicted), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def answer_contains(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when a normalised expected answer appears whole (as words) in the normalised
    prediction: the score for answers that must hold a command, a setting or a figure."""
    predicted = f" {normalize_answer(prediction)} "
    expected = [normalize_answer(a) for a in answers]
    return float(any(a and f" {a} " in predicted for a in expected))


def source_matches(source: str, expected: str) -> bool:
    """Whether a retrieved ``source`` is the ``expected`` one: the same string, or for a
    relative ``expected`` path, a path that ends with its whole components (``faq/x.rst``
    matches ``/docs/faq/x.rst``, not ``/docs/xfaq/x.rst``; a bare file name matches that file
    in any folder)."""
    if source == expected:
        return True
    wanted = PurePath(expected).parts
    if not wanted or PurePath(expected).is_absolute():
        return False
    parts = PurePath(source).parts
    return len(parts) >= len(wanted) and parts[-len(wanted) :] == wanted


def _relevant(retrieved: Sequence[str], expected: Sequence[str]) -> list[str | None]:
    """For each distinct retrieved document in rank order, the expected source it is (or None).

    An expected source is credited once, to its first document.
    """
    ranked = list(dict.fromkeys(retrieved))
    credited: set[str] = set()
    relevant: list[str | None] = []
    for source in ranked:
        match = next((e for e in expected if e not in credited and source_matches(source, e)), None)
        if match is not None:
            credited.add(match)
        relevant.append(match)
    return relevant


def recall_at_k(retrieved: Sequence[str], expected: Sequence[str], k: int) -> float:
    """The share of expected sources among the documents of the first ``k`` chunks."""
    wanted = set(expected)
    if not wanted:
        raise ValueError("recall_at_k needs at least one expected source")
    return sum(m is not None for m in _relevant(retrieved[:k], list(wanted))) / len(wanted)


def mrr(retrieved: Sequence[str], expected: Sequence[str]) -> float:
    """1 / the document rank of the first expected source; 0 when none was retrieved."""
    for rank, match in enumerate(_relevant(retrieved, expected), start=1):
        if match is not None:
            return 1 / rank
    return 0.0


def ndcg_at_10(retrieved: Sequence[str], expected: Sequence[str]) -> float:
    """nDCG over the documents of the first 10 chunks, binary relevance.

    The ideal ranking puts every expected source first (at most 10 of them).
    """
    wanted = set(expected)
    if not wanted:
        raise ValueError("ndcg_at_10 needs at least one expected source")
    relevant = _relevant(retrieved[:10], list(wanted))
    dcg = sum(1 / math.log2(rank + 1) for rank, m in enumerate(relevant, 1) if m is not None)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(wanted), 10) + 1))
    return dcg / ideal


def citation_precision(cited_texts: Sequence[str], answers: Sequence[str]) -> float | None:
    """The share of cited chunks whose text holds an expected answer (normalised); ``None``
    when nothing was cited."""
    if not cited_texts:
        return None
    expected = [normalize_answer(answer) for answer in answers if normalize_answer(answer)]
    holding = sum(
        any(f" {a} " in f" {normalize_answer(text)} " for a in expected) for text in cited_texts
    )
    return holding / len(cited_texts)


def cites_expected_source(cited_sources: Sequence[str], expected: Sequence[str]) -> float:
    """1.0 when some citation is to an expected source (see :func:`source_matches`)."""
    return float(any(source_matches(s, e) for s in cited_sources for e in expected))


def abstention_accuracy(abstained: Sequence[bool], unanswerable: Sequence[bool]) -> float:
    """The share of questions where the assistant abstained exactly when it should have."""
    if len(abstained) != len(unanswerable) or not abstained:
        raise ValueError("abstention_accuracy needs as many (and some) flags of each kind")
    return sum(a == u for a, u in zip(abstained, unanswerable, strict=True)) / len(abstained)
