"""A collection's evaluation set: questions with expected answers and sources, held out from
training, on which the promotion gate (:mod:`assistant.gating`) scores adapter versions.

It lives in ``data_dir/evalsets/<collection>.jsonl``, one question per line, in the columns
``lorag eval`` reads (:mod:`assistant.batch.formats`)::

    {"id", "question", "expected_answer", "expected_source", "unanswerable",
     "chunk_id": id | null, "doc_ids": [...]}

It is made in one of two ways:

- by the collection's first RAFT dataset (``lorag finetune --from-collection``): the questions
  on a seeded ``gate.eval_fraction`` of the sampled chunks are written here instead of into the
  dataset (:func:`finetune.synth.build_raft_dataset`), and every later RAFT dataset of the
  collection neither samples those chunks nor shows them as distractors. To them are added, a
  share of ``abstain_fraction`` of them, questions about invented things (:data:`UNANSWERABLE`)
  that no collection answers: the questions to abstain on.
- from a question file a person gives (``--eval-set FILE``: CSV, JSONL or XLSX with expected
  answers, sources or unanswerable flags), which replaces it. Its rows name no chunk.

:func:`leaks` checks the held-out property on a version's training rows: no row may ask an
evaluation question (the same words), nor teach the answer of an evaluation row's chunk (a RAFT
row whose oracle it is). An erasure removes the rows that name an erased document (``doc_ids``).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.batch.formats import BatchInputError, QuestionFile, read_questions
from assistant.core.files import write_jsonl
from assistant.core.settings import Settings
from assistant.core.store.schema import check_name

if TYPE_CHECKING:
    from finetune.synth import QAPair

EVALSETS_DIR = "evalsets"
"""Under ``data_dir``: one evaluation set per collection."""
UNANSWERABLE = (
    "What is the warranty period of the Quillvane 9 hoverboard?",
    "Who founded the Brindlemoor Society of Lantern Makers?",
    "In which year did the Zephyrine Canal open to barges?",
    "How many moons does the planet Taltheris have?",
    "What colour is the flag of the Orvandel Republic?",
    "Which team won the 2031 Velmora Cup final?",
    "What is the boiling point of florexium oxide?",
    "Who wrote the novel The Glass Orchards of Hemmering?",
)
"""Questions about invented things: no collection holds their answers."""

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Leak:
    """How far a version's training rows reach into an evaluation set: the rows asking one of
    its questions, the rows teaching the answer of one of its chunks, and the first such row's
    question."""

    questions: int
    chunks: int
    example: str | None

    @property
    def found(self) -> bool:
        return bool(self.questions or self.chunks)

    def describe(self) -> str:
        """One phrase for reports: what was found."""
        return (
            f"{self.questions} training rows ask an evaluation question and {self.chunks} teach "
            f"the answer of an evaluation chunk (e.g. {self.example!r})"
        )


def eval_set_path(settings: Settings, collection: str) -> Path:
    """Where the evaluation set of ``collection`` is kept (whether or not there is one)."""
    check_name(collection)
    return settings.data_dir / EVALSETS_DIR / f"{collection}.jsonl"


def read_eval_set(path: Path) -> QuestionFile:
    """The questions of the evaluation set (or question file) ``path``, refused unless every
    row is usable and some has something to score against."""
    questions = read_questions(path)
    if questions.problems:
        listed = "; ".join(map(str, questions.problems[:3]))
        raise BatchInputError(
            f"evaluation set {str(path)!r} has {len(questions.problems)} unusable rows ({listed})"
        )
    if not questions.fields & {"expected_answers", "expected_sources", "unanswerable"}:
        raise BatchInputError(
            f"evaluation set {str(path)!r} has nothing to score against: give each question an "
            "expected_answer, an expected_source or an unanswerable flag"
        )
    return questions


def install_eval_set(settings: Settings, collection: str, questions: QuestionFile) -> Path:
    """Make ``questions`` (read with :func:`read_eval_set`) the evaluation set of
    ``collection``, replacing any; its path."""
    rows = [
        {
            "id": question.id,
            "question": question.text,
            "expected_answer": list(question.expected_answers),
            "expected_source": list(question.expected_sources),
            "unanswerable": question.unanswerable,
            "chunk_id": None,
            "doc_ids": [],
        }
        for question in questions.questions
    ]
    path = eval_set_path(settings, collection)
    write_jsonl(path, rows)
    return path


def write_held_out(
    settings: Settings,
    collection: str,
    pairs: Sequence[QAPair],
    abstain_fraction: float,
    seed: int,
) -> Path:
    """Make the RAFT pairs held out of ``collection``'s dataset its evaluation set, with a
    seeded ``abstain_fraction`` of their number (at least one, when above 0) of
    :data:`UNANSWERABLE` questions; its path."""
    rows: list[dict[str, Any]] = [
        {
            "id": f"q{n}",
            "question": pair.question,
            "expected_answer": [pair.answer],
            "expected_source": [pair.chunk.source],
            "unanswerable": False,
            "chunk_id": pair.chunk.id,
            "doc_ids": [pair.chunk.doc_id],
        }
        for n, pair in enumerate(pairs, start=1)
    ]
    wanted = max(round(abstain_fraction * len(pairs)), 1) if abstain_fraction > 0 else 0
    invented = random.Random(f"{seed}/unanswerable").sample(
        UNANSWERABLE, min(wanted, len(UNANSWERABLE))
    )
    rows += [
        {
            "id": f"u{n}",
            "question": question,
            "expected_answer": [],
            "expected_source": [],
            "unanswerable": True,
            "chunk_id": None,
            "doc_ids": [],
        }
        for n, question in enumerate(invented, start=1)
    ]
    path = eval_set_path(settings, collection)
    write_jsonl(path, rows)
    return path


def held_out_chunk_ids(path: Path) -> set[str]:
    """The chunks the evaluation set ``path`` asks about (none for a set a person gave)."""
    return {str(row["chunk_id"]) for row in _rows(path) if row.get("chunk_id")}


def leaks(eval_set: Path, training_rows: Path) -> Leak:
    """How far the JSONL training rows ``training_rows`` reach into ``eval_set``."""
    questions = {_key(str(row.get("question", ""))) for row in _rows(eval_set)}
    chunks = held_out_chunk_ids(eval_set)
    asked = taught = 0
    example = None
    for row in _rows(training_rows):
        hit_question = _key(_asked(row)) in questions
        hit_chunk = row.get("oracle_chunk_id") in chunks
        asked += hit_question
        taught += hit_chunk
        if (hit_question or hit_chunk) and example is None:
            example = _asked(row)
    return Leak(asked, taught, example)


def _asked(row: dict[str, Any]) -> str:
    """The question a training row asks, in any of its formats: ``question`` (rag),
    ``instruction`` (alpaca), ``prompt``, or the last user message (chat)."""
    for field in ("question", "instruction", "prompt"):
        if isinstance(row.get(field), str):
            return str(row[field])
    messages = row.get("messages")
    listed = messages if isinstance(messages, list) else []
    users = [m for m in listed if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1].get("content", "")) if users else ""


def _rows(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of the lines of ``path`` (none when there is no file)."""
    if not path.is_file():
        return []
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return [row for row in rows if isinstance(row, dict)]


def _key(question: str) -> str:
    """What makes two questions the same: their words, lower case."""
    return " ".join(_WORD.findall(question.lower()))
