"""The bundled user guide's own questions, through the command line a new user types, on the
default models: ``lorag ingest examples/docs`` then ``lorag eval`` on
``examples/guide-questions.jsonl``, where each question names the command, setting or figure its
answer must hold and the guide page(s) it must cite. At least 9 of the 10 must be right on both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "examples" / "docs"
QUESTIONS = REPO / "examples" / "guide-questions.jsonl"
LORAG = Path(sys.executable).parent / "lorag"


def _lorag(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}
    env["LORAG_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [str(LORAG), *args], env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    assert done.returncode == 0, f"lorag {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done


def right_guide_answers(report: Path) -> list[str]:
    """The ids of the guide questions an eval report (``lorag eval --output``) got right: the
    answer holds the expected text and cites an expected page. Each answer is printed."""
    rows = json.loads(report.read_text())["configurations"][0]["rows"]
    assert len(rows) == 10
    for row in rows:
        print(f"{row['id']}: {row['answer']!r} (expected {row['expected_answers'][0]!r})")
    return [
        row["id"]
        for row in rows
        if row["scores"]["contains"] == 1.0 and row["scores"]["source_cited"] == 1.0
    ]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding the guide, ingested once for the module."""
    folder = tmp_path_factory.mktemp("guide") / "data"
    _lorag("ingest", str(GUIDE), "--collection", "guide", data_dir=folder)
    return folder


def test_the_guide_questions_are_answered_with_the_right_command_and_page(
    data: Path, tmp_path: Path
) -> None:
    report_path = tmp_path / "guide-eval.json"
    done = _lorag(
        "eval", str(QUESTIONS), "--collection", "guide", "--output", str(report_path),
        "--no-progress", data_dir=data,
    )  # fmt: skip
    print(done.stdout)
    right = right_guide_answers(report_path)
    assert len(right) >= 9, f"right: {right}"


def test_one_guide_question_through_lorag_ask(data: Path) -> None:
    done = _lorag(
        "ask", "How do I delete a document from a collection?", "--collection", "guide",
        "--json", data_dir=data,
    )  # fmt: skip
    answer = json.loads(done.stdout)
    assert not answer["abstained"], answer
    assert "lorag documents delete" in answer["text"]
    assert {Path(c["source"]).name for c in answer["citations"]} == {"managing-collections.md"}


CHUNK_QUESTIONS = [
    ("chunk-length", "How long is each chunk?", "200"),
    ("chunk-tokens", "How many tokens are in a chunk?", "200"),
    ("chunk-size", "What is the chunk size?", "200"),
    ("chunk-overlap", "How much do neighbouring chunks overlap?", "32"),
]


def test_the_chunk_size_is_read_as_the_size_not_the_overlap_or_another_number(
    data: Path, tmp_path: Path
) -> None:
    """Asked three ways, the default model once answered the overlap (32), the answer length
    (128) and a setting's name: the guide now names the chunk size in words and in its table."""
    questions = tmp_path / "chunk-questions.jsonl"
    rows = [
        {"id": id_, "question": question, "answer": answer, "source": ["ingesting-documents.md"]}
        for id_, question, answer in CHUNK_QUESTIONS
    ]
    questions.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    report_path = tmp_path / "chunk-eval.json"
    _lorag(
        "eval", str(questions), "--collection", "guide", "--output", str(report_path),
        "--no-progress", data_dir=data,
    )  # fmt: skip
    found = json.loads(report_path.read_text())["configurations"][0]["rows"]
    answers = {row["id"]: row["answer"] for row in found}
    right = [row["id"] for row in found if row["scores"]["contains"] == 1.0]
    assert right == [id_ for id_, _, _ in CHUNK_QUESTIONS], answers
