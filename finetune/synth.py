"""Training data from the documents already in a collection, shaped the RAFT way.

For chunks sampled from the collection, a generator (the configured one, or a ``teacher`` the
user names) writes question/answer pairs; a pair is kept only if its answer is a few words all
found in the chunk and it is not a repeat. Small models write few usable pairs, so each chunk is
topped up with extractive cloze questions (a sentence with a number, a name or a long word
blanked out), which are grounded by construction. Every example records its ``origin``.

Each pair becomes a RAFT example (Zhang et al., 2024, "RAFT: Adapting Language Model to Domain
Specific RAG"): the oracle chunk among ``distractors`` hard negatives, the chunks lorag's own
hybrid retriever ranks highest for the question (chunks holding the answer left out), in
shuffled positions, answered with a citation of the oracle's position. An ``abstain_fraction``
of the examples has no oracle, only the distractors, and the template's abstain answer.

Chunks can be held out for evaluation: an ``eval_fraction`` of the sampled chunks (seeded) has
its pairs returned in the report instead of the dataset, and neither they nor the
``exclude_chunk_ids`` (an earlier evaluation set's) are sampled or used as distractors, so no
training row holds their text (:mod:`assistant.evalset` writes and checks the set).

The dataset is JSONL in lorag's ``rag`` format (see ``finetune/data.py``), one example per line,
for a person to review and edit before training::

    {"question", "sources": ["Source [1]: ...", ...], "answer": "... [2]", "chunk_ids": [...],
     "oracle_chunk_id": id | null, "doc_ids": [...], "origin": "model" | "extractive"}

Everything is deterministic for a ``seed``: sampling, cloze choices, positions, which examples
abstain; generation is greedy.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict

from tqdm import tqdm

from assistant.core.errors import ConfigError, LoragError
from assistant.core.files import write_jsonl
from assistant.core.prompt import DEFAULT_TEMPLATE
from assistant.core.types import Chunk, Hit

if TYPE_CHECKING:
    from assistant.core.protocols import Generator
    from assistant.runtime import Runtime

Origin = Literal["model", "extractive"]

POOL_FACTOR = 3
"""Distractors are the first ``distractors`` fitting chunks of the retriever's top
``1 + POOL_FACTOR * distractors`` for the question (and one more per held-out chunk)."""
MIN_CHUNK_WORDS = 8
MAX_ANSWER_WORDS = 12
PAIR_TOKENS = 48
BLANK = "_____"

# The writer is shown one worked example: SmolLM2-135M, asked with instructions alone, repeats
# "Q: What is the passage about?"; after one example it writes Q:/A: pairs.
WRITER_SYSTEM = (
    "You write quiz questions about a passage, each with its short answer copied from the passage."
)
WRITER_USER = "Passage:\n{passage}\n\nWrite {count} with answers."
EXAMPLE_PASSAGE = (
    "The Eiffel Tower was built by Gustave Eiffel's company and finished in 1889. "
    "It stands in Paris, next to the Seine."
)
EXAMPLE_PAIRS = (
    "Q: When was the Eiffel Tower finished?\nA: 1889\n"
    "Q: Which river is the Eiffel Tower next to?\nA: the Seine"
)

_WORD = re.compile(r"\w+")
_LABEL = re.compile(
    r"^\W*(?:\d+[.)]\s*)?(?P<label>q|question|a|answer)\s*\d*\s*[:)]\s*(?P<text>.*)$",
    re.IGNORECASE,
)
_INLINE_ANSWER = re.compile(r"\s(?:A|Answer)\s*\d*\s*:\s*")
_CITATION = re.compile(r"\[\d+\]")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
# Cloze targets, best first: whole numbers, names (runs of capitalised words of two letters or
# more, not opening the sentence), long lower-case words.
_NUMBER = re.compile(r"(?<![\w-])\d+(?:[.,:]\d+)*(?![\w-])")
_NAME = re.compile(r"\b[A-Z][\w-]+(?:\s+[A-Z][\w-]+)*")
_LONG_WORD = re.compile(r"\b[a-z]{7,}\b")


@dataclass(frozen=True)
class QAPair:
    """A question about ``chunk`` and its short answer, with who wrote it."""

    question: str
    answer: str
    origin: Origin
    chunk: Chunk


class RaftRecord(TypedDict):
    """One line of the dataset; ``chunk_ids`` and ``doc_ids`` run parallel to ``sources``."""

    question: str
    sources: list[str]
    answer: str
    chunk_ids: list[str]
    oracle_chunk_id: str | None
    doc_ids: list[str]
    origin: Origin


@dataclass
class SynthReport:
    """What :func:`build_raft_dataset` wrote."""

    out_path: Path
    chunks_used: int
    examples: int
    abstain_examples: int
    origins: dict[str, int]
    dropped: dict[str, int] = field(default_factory=dict)
    """Pairs the generator wrote that were not kept, by reason: ``malformed``,
    ``unsupported`` (answer words not in the chunk), ``trivial`` (answer in the question),
    ``duplicate``."""
    source_doc_ids: list[str] = field(default_factory=list)
    held_out: list[QAPair] = field(default_factory=list)
    """The pairs on the chunks held out for evaluation (``eval_fraction``): not in the dataset."""

    @property
    def dropped_pairs(self) -> int:
        return sum(self.dropped.values())


def build_raft_dataset(
    runtime: Runtime,
    collection: str,
    out_path: Path,
    *,
    teacher: Generator | None = None,
    max_chunks: int = 200,
    questions_per_chunk: int = 2,
    distractors: int = 3,
    abstain_fraction: float = 0.2,
    seed: int = 0,
    show_progress: bool = False,
    eval_fraction: float = 0.0,
    exclude_chunk_ids: Collection[str] = (),
) -> SynthReport:
    """Write a RAFT dataset made from ``collection`` to ``out_path`` (atomically); what it holds.

    Questions come from ``teacher``, else the configured generator, topped up with cloze
    questions; at most ``max_chunks`` chunks are sampled, ``questions_per_chunk`` each. The
    pairs on an ``eval_fraction`` of them are held out (:attr:`SynthReport.held_out`); the
    ``exclude_chunk_ids`` are left out altogether.
    """
    _check_options(max_chunks, questions_per_chunk, distractors, abstain_fraction)
    if not 0.0 <= eval_fraction < 1.0:
        raise ConfigError(f"eval_fraction must be at least 0 and below 1 (got {eval_fraction})")
    excluded = set(exclude_chunk_ids)
    chunks = runtime.store.chunks(collection)
    eligible = [
        chunk
        for chunk in chunks
        if len(_WORD.findall(chunk.text)) >= MIN_CHUNK_WORDS and chunk.id not in excluded
    ]
    if not eligible:
        raise LoragError(
            f"collection {collection!r} has no chunk of {MIN_CHUNK_WORDS} words or more to "
            "make questions from: ingest documents into it first"
        )
    rng = random.Random(seed)
    position = {chunk.id: n for n, chunk in enumerate(chunks)}
    selected = sorted(
        rng.sample(eligible, min(max_chunks, len(eligible))), key=lambda c: position[c.id]
    )
    writer = teacher if teacher is not None else runtime.generator
    dropped: Counter[str] = Counter()
    pairs: list[QAPair] = []
    seen: set[str] = set()
    for chunk in tqdm(selected, desc="questions", unit="chunk", disable=not show_progress):
        pairs.extend(_pairs_for(chunk, writer, questions_per_chunk, seed, seen, dropped))
    held = _held_out_chunks(selected, eval_fraction, seed)
    held_out = [pair for pair in pairs if pair.chunk.id in held]
    pairs = [pair for pair in pairs if pair.chunk.id not in held]
    if not pairs:
        raise LoragError(
            f"no question could be made from the {len(selected)} chunks sampled from "
            f"collection {collection!r}"
        )

    pool = 1 + POOL_FACTOR * distractors + len(excluded | held)  # each may take a place
    negatives = [
        _distractors(runtime, collection, pair, distractors, pool, excluded | held)
        if distractors
        else []
        for pair in pairs
    ]
    can_abstain = [n for n, found in enumerate(negatives) if found]
    wanted = int(abstain_fraction * len(pairs) + 0.5)
    abstaining = set(rng.sample(can_abstain, min(wanted, len(can_abstain))))

    records = [
        _example(pair, found, abstain=n in abstaining, seed=seed)
        for n, (pair, found) in enumerate(zip(pairs, negatives, strict=True))
    ]
    write_jsonl(out_path, records)
    return SynthReport(
        out_path=out_path,
        chunks_used=len({pair.chunk.id for pair in pairs}),
        examples=len(records),
        abstain_examples=len(abstaining),
        origins=dict(sorted(Counter(pair.origin for pair in pairs).items())),
        dropped=dict(sorted(dropped.items())),
        source_doc_ids=sorted({doc for record in records for doc in record["doc_ids"]}),
        held_out=held_out,
    )


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """The ``(question, answer)`` pairs in a model's reply: ``Q:``/``A:`` lines, also numbered
    (``1. Question:``), in bold, or on one line (``Q: ...? A: ...``). Unanswered questions and
    other lines are skipped."""
    pairs: list[tuple[str, str]] = []
    question: str | None = None
    for line in text.replace("*", "").splitlines():
        match = _LABEL.match(line)
        if match is None:
            continue
        body = match["text"].strip()
        if match["label"][0].lower() == "q":
            inline = _INLINE_ANSWER.search(body)
            if inline is None:
                question = body
            else:
                pairs.append((body[: inline.start()], body[inline.end() :]))
                question = None
        elif question is not None:
            pairs.append((question, body))
            question = None
    return [(_clean_question(q), _clean_answer(a)) for q, a in pairs]


def cloze_pairs(text: str, rng: random.Random) -> list[tuple[str, str]]:
    """Fill-in-the-blank questions on ``text``'s sentences, best targets first: numbers, then
    names, then long words; ties in the order ``rng`` gives them."""
    candidates: list[tuple[int, float, str, str]] = []
    for sentence in _SENTENCE_BREAK.split(text):
        sentence = sentence.strip()
        if not 5 <= len(_WORD.findall(sentence)) <= 60:
            continue
        spans: dict[str, tuple[int, int, int]] = {}
        for rank, pattern in ((2, _NUMBER), (1, _NAME), (0, _LONG_WORD)):
            for match in pattern.finditer(sentence):
                if match.start() > 0 or pattern is _NUMBER:
                    spans.setdefault(match.group(), (rank, match.start(), match.end()))
        for answer, (rank, start, end) in spans.items():
            masked = sentence[:start] + BLANK + sentence[end:]
            question = f'What fills the blank in "{masked}"?'
            candidates.append((-rank, rng.random(), question, answer))
    return [(question, answer) for _, _, question, answer in sorted(candidates)]


def _check_options(
    max_chunks: int, questions_per_chunk: int, distractors: int, abstain_fraction: float
) -> None:
    if max_chunks < 1 or questions_per_chunk < 1 or distractors < 0:
        raise ConfigError(
            "max_chunks and questions_per_chunk must be at least 1 and distractors at least 0 "
            f"(got {max_chunks}, {questions_per_chunk}, {distractors})"
        )
    if not 0.0 <= abstain_fraction <= 1.0:
        raise ConfigError(f"abstain_fraction must be between 0 and 1 (got {abstain_fraction})")
    if abstain_fraction > 0 and distractors == 0:
        raise ConfigError(
            "abstain_fraction > 0 needs distractors >= 1: an abstain example's sources are its "
            "distractors alone"
        )


def _pairs_for(
    chunk: Chunk,
    writer: Generator,
    count: int,
    seed: int,
    seen: set[str],
    dropped: Counter[str],
) -> list[QAPair]:
    """Up to ``count`` new pairs on ``chunk``: the writer's that hold, then cloze questions."""
    asked = f"{count} question" if count == 1 else f"{count} questions"
    messages = [
        {"role": "system", "content": WRITER_SYSTEM},
        {
            "role": "user",
            "content": WRITER_USER.format(passage=EXAMPLE_PASSAGE, count="2 questions"),
        },
        {"role": "assistant", "content": EXAMPLE_PAIRS},
        {"role": "user", "content": WRITER_USER.format(passage=chunk.text, count=asked)},
    ]
    reply = "".join(writer.stream(messages, max_new_tokens=PAIR_TOKENS * count))
    kept: list[QAPair] = []
    for question, answer in parse_pairs(reply):
        problem = _problem(question, answer, chunk.text)
        if problem is None and _key(question) in seen:
            problem = "duplicate"
        if problem is not None:
            dropped[problem] += 1
            continue
        seen.add(_key(question))
        kept.append(QAPair(question, answer, "model", chunk))
        if len(kept) == count:
            return kept
    for question, answer in cloze_pairs(chunk.text, random.Random(f"{seed}/{chunk.id}")):
        if len(kept) == count:
            break
        if _problem(question, answer, chunk.text) is None and _key(question) not in seen:
            seen.add(_key(question))
            kept.append(QAPair(question, answer, "extractive", chunk))
    return kept


def _problem(question: str, answer: str, passage: str) -> str | None:
    """Why a pair is not kept (``None``: it is)."""
    answer_words = _words(answer)
    if len(_words(question)) < 3 or not answer_words or len(answer_words) > MAX_ANSWER_WORDS:
        return "malformed"
    if not set(answer_words) <= set(_words(passage)):
        return "unsupported"
    if set(answer_words) <= set(_words(question)):
        return "trivial"
    return None


def _held_out_chunks(selected: list[Chunk], fraction: float, seed: int) -> set[str]:
    """The ids of a seeded ``fraction`` of ``selected`` (at least one when it is above 0 and
    two or more were selected; never all of them)."""
    if fraction <= 0 or len(selected) < 2:
        return set()
    count = min(max(round(len(selected) * fraction), 1), len(selected) - 1)
    return {chunk.id for chunk in random.Random(f"{seed}/held-out").sample(selected, count)}


def _distractors(
    runtime: Runtime,
    collection: str,
    pair: QAPair,
    count: int,
    pool: int,
    excluded: Collection[str] = (),
) -> list[Chunk]:
    """The retriever's best chunks for the question that are neither the oracle, nor hold the
    answer (those would teach the model that the answer is missing when it is there), nor
    ``excluded`` (held out for evaluation)."""
    found: list[Chunk] = []
    for hit in runtime.engine.retrieve(pair.question, collection, top_k=pool):
        chunk = hit.chunk
        if chunk.id == pair.chunk.id or chunk.text == pair.chunk.text or chunk.id in excluded:
            continue
        if _contains(chunk.text, pair.answer):
            continue
        found.append(chunk)
        if len(found) == count:
            break
    return found


def _example(pair: QAPair, distractors: list[Chunk], *, abstain: bool, seed: int) -> RaftRecord:
    """One JSONL record: the sources in shuffled positions, the answer citing the oracle."""
    chunks = list(distractors) if abstain else [pair.chunk, *distractors]
    random.Random(f"{seed}/{pair.chunk.id}/{pair.question}").shuffle(chunks)
    if abstain:
        answer, oracle = DEFAULT_TEMPLATE.abstain_answer, None
    else:
        n = chunks.index(pair.chunk) + 1
        answer, oracle = f"{pair.answer} [{n}]", pair.chunk.id
    return {
        "question": pair.question,
        "sources": [
            DEFAULT_TEMPLATE.format_source(n, Hit(chunk=chunk, score=0.0, similarity=0.0))
            for n, chunk in enumerate(chunks, start=1)
        ],
        "answer": answer,
        "chunk_ids": [chunk.id for chunk in chunks],
        "oracle_chunk_id": oracle,
        "doc_ids": [chunk.doc_id for chunk in chunks],
        "origin": pair.origin,
    }


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _key(question: str) -> str:
    """What makes two questions the same: their words."""
    return " ".join(_words(question))


def _contains(text: str, answer: str) -> bool:
    """Whether ``answer``'s words occur in ``text`` in a row."""
    return f" {' '.join(_words(answer))} " in f" {' '.join(_words(text))} "


def _clean_question(question: str) -> str:
    question = question.strip().strip("\"'` ")
    return question if question.endswith("?") else f"{question}?"


def _clean_answer(answer: str) -> str:
    return _CITATION.sub("", answer).strip().strip("\"'` ").rstrip(".").strip()
