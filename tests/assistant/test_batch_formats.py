"""Question files in (CSV, JSONL, XLSX) and answer files out, with crash recovery on resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.batch.formats import BatchInputError, Question, read_questions
from assistant.batch.output import (
    FIELDS,
    answer_record,
    journal_path,
    open_answers,
    read_answers,
)
from assistant.core.types import Answer, Citation

HEADER = ["ID", "Question", "Expected Answer", "expected_source", "Unanswerable"]
ROWS = [
    ["q1", "Who owns billing?", "Bravo team|the Bravo team", "b.txt", ""],
    ["q2", "When do backups run?", "nightly", "docs/a.md", "false"],
    ["q3", "What is the capital of Mars?", "", "", "yes"],
]


def write_table(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    """``rows`` under ``header`` as CSV, JSONL (one object per row) or XLSX, by suffix."""
    if path.suffix == ".csv":
        import csv

        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([header, *rows])
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(dict(zip(header, r, strict=True))) + "\n" for r in rows))
    else:
        from openpyxl import Workbook

        workbook = Workbook()
        for row in [header, *rows]:
            workbook.active.append(row)
        workbook.save(path)
    return path


EXPECTED = [
    Question(2, "q1", "Who owns billing?", ("Bravo team", "the Bravo team"), ("b.txt",), False),
    Question(3, "q2", "When do backups run?", ("nightly",), ("docs/a.md",), False),
    Question(4, "q3", "What is the capital of Mars?", (), (), True),
]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_spreadsheets_are_read_with_columns_found_case_insensitively(
    tmp_path: Path, suffix: str
) -> None:
    questions = read_questions(write_table(tmp_path / f"q{suffix}", HEADER, ROWS))
    assert questions.questions == EXPECTED
    assert questions.problems == []
    assert questions.fields == {
        "id",
        "question",
        "expected_answers",
        "expected_sources",
        "unanswerable",
    }


def test_jsonl_takes_lists_and_line_numbers(tmp_path: Path) -> None:
    lines = [
        {"question": "Who owns billing?", "answers": ["Bravo team", "the Bravo team"], "id": 7},
        {"question": "When do backups run?", "source": "docs/a.md", "is_impossible": False},
        {"question": "What is the capital of Mars?", "unanswerable": True},
    ]
    path = tmp_path / "q.jsonl"
    path.write_text(
        "\n".join(json.dumps(line) for line in lines[:2]) + "\n\n" + json.dumps(lines[2])
    )
    questions = read_questions(path).questions
    assert [(q.row, q.id, q.text) for q in questions] == [
        (1, "7", "Who owns billing?"),
        (2, "2", "When do backups run?"),
        (4, "4", "What is the capital of Mars?"),  # the blank line 3 is skipped
    ]
    assert questions[0].expected_answers == ("Bravo team", "the Bravo team")
    assert questions[1].expected_sources == ("docs/a.md",)
    assert [q.unanswerable for q in questions] == [False, False, True]


def test_a_semicolon_csv_with_a_bom_and_numeric_ids(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes("\ufeffid;question\n1;Who owns billing?\n2;When?\n".encode())
    questions = read_questions(path).questions
    assert [(q.id, q.text) for q in questions] == [("1", "Who owns billing?"), ("2", "When?")]


def test_xlsx_numbers_and_booleans_become_text_and_flags(tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "q.xlsx",
        ["id", "question", "expected_answer", "unanswerable"],
        [[1, "How many days of leave?", 25, None], [2.0, "Who?", None, True], [None] * 4],
    )
    questions = read_questions(path)
    assert [(q.id, q.expected_answers, q.unanswerable) for q in questions.questions] == [
        ("1", ("25",), False),
        ("2", (), True),
    ]
    assert questions.rows == 2  # the blank spreadsheet row is not a row


def test_bad_csv_rows_are_reported_by_row_number_and_the_rest_kept(tmp_path: Path) -> None:
    rows = [
        ["q1", "Who owns billing?"],
        ["q2", "   "],
        ["q1", "A repeated id?"],
        ["q4", "why" * 800],
        ["q5", "When do backups run?"],
    ]
    questions = read_questions(write_table(tmp_path / "q.csv", ["id", "question"], rows))
    assert [q.id for q in questions.questions] == ["q1", "q5"]
    assert [(p.row, p.message.split(":")[0]) for p in questions.problems] == [
        (3, "the question is empty"),
        (4, "id 'q1' repeats row 2"),
        (5, "the question is 2400 characters long, over the limit of 2000"),
    ]
    assert questions.rows == 5


def test_bad_jsonl_lines_are_reported_by_line_number(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"question": "Who owns billing?"}\n'
        '{"question": "cut short\n'
        '["a list"]\n'
        '{"id": "x"}\n'
        '{"question": "When?", "unanswerable": "maybe"}\n'
        '{"question": "When do backups run?"}\n'
    )
    questions = read_questions(path)
    assert [q.row for q in questions.questions] == [1, 6]
    assert [str(p).split(" (")[0] for p in questions.problems] == [
        "row 2: not valid JSON",
        "row 3: not a JSON object but list",
        "row 4: the question is empty: ask something about your documents",
        "row 5: unanswerable must be true or false, not 'maybe'",
    ]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx"])
def test_an_empty_file_is_an_error_naming_it(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    if suffix == ".xlsx":
        write_table(path, [], [])
    else:
        path.write_text("")
    with pytest.raises(BatchInputError, match=rf"empty{suffix}' is empty"):
        read_questions(path)


def test_a_header_without_rows_is_an_error_naming_the_columns(tmp_path: Path) -> None:
    with pytest.raises(BatchInputError, match=r"has no rows \(columns: id, question\)"):
        read_questions(write_table(tmp_path / "q.csv", ["id", "question"], []))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx"])
def test_a_missing_question_column_names_the_columns_found(tmp_path: Path, suffix: str) -> None:
    path = write_table(tmp_path / f"q{suffix}", ["id", "prompt_text"], [["1", "Who?"]])
    with pytest.raises(BatchInputError) as raised:
        read_questions(path)
    message = str(raised.value)
    assert f"q{suffix}" in message and "no question column" in message
    assert "columns found: id, prompt_text" in message


def test_unreadable_inputs_are_errors(tmp_path: Path) -> None:
    with pytest.raises(BatchInputError, match="not found"):
        read_questions(tmp_path / "missing.csv")
    with pytest.raises(BatchInputError, match=r"unsupported format '\.txt'.*\.csv, \.jsonl"):
        read_questions(tmp_path / "questions.txt")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(BatchInputError, match="not a readable XLSX"):
        read_questions(tmp_path / "broken.xlsx")
    (tmp_path / "latin1.csv").write_bytes("question\nQu'est-ce qu'un caf\xe9?\n".encode("latin-1"))
    with pytest.raises(BatchInputError, match="not UTF-8"):
        read_questions(tmp_path / "latin1.csv")


# --------------------------------------------------------------------------- answer files


def answer(question: Question, abstained: bool = False) -> Answer:
    citation = Citation(
        n=1,
        source="/docs/travel.md",
        title="Travel",
        page=3,
        heading="Hotels",
        snippet="…",
        score=0.5,
        similarity=0.71234,
        chunk_id="c1",
    )
    return Answer(
        question=question.text,
        text="I don't know." if abstained else 'He said "120 euros",\nper night [1].',
        citations=[] if abstained else [citation],
        abstained=abstained,
        abstain_reason="weak_retrieval" if abstained else None,
        sources=[citation],
        timings={"total_s": 0.25},
    )


def records(count: int, start: int = 0) -> list[dict[str, Any]]:
    questions = [Question(n + 2, f"q{n}", f"Question {n}?") for n in range(start, start + count)]
    return [answer_record(q, answer(q, abstained=q.row % 2 == 1), "base") for q in questions]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx"])
def test_answers_are_written_and_read_back(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"answers{suffix}"
    with open_answers(path, resume=False) as sink:
        assert sink.done == set()
        sink.write(records(3))
    back = read_answers(path)
    assert [r["id"] for r in back] == ["q0", "q1", "q2"]
    first = back[0]
    assert first["answer"] == 'He said "120 euros",\nper night [1].'
    if suffix == ".csv":
        assert first["citations"] == "[1] /docs/travel.md, page 3, Hotels"
        assert (first["abstained"], back[1]["abstained"]) == ("false", "true")
        assert first["retrieval_score"] == "0.7123"
    else:
        assert first["citations"] == [
            {"n": 1, "source": "/docs/travel.md", "page": 3, "heading": "Hotels"}
        ]
        assert (first["abstained"], back[1]["abstained"]) == (False, True)
        assert back[1]["abstain_reason"] == "weak_retrieval"
        assert first["retrieval_score"] == 0.7123 and first["latency_s"] == 0.25
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(path).active
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0] == FIELDS
        assert rows[1][:6] == (
            "q0",
            2,
            "Question 0?",
            'He said "120 euros",\nper night [1].',
            "base",
            "[1] /docs/travel.md, page 3, Hotels",
        )
        assert rows[1][6:] == (0.7123, False, None, 0.25)
        assert len(rows) == 4


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx"])
def test_an_existing_output_is_kept_unless_resumed(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"answers{suffix}"
    with open_answers(path, resume=False) as sink:
        sink.write(records(2))
    with pytest.raises(BatchInputError, match="already exists: pass --resume"):
        open_answers(path, resume=False).__enter__()
    with open_answers(path, resume=True) as sink:
        assert sink.done == {"q0", "q1"}
        sink.write(records(1, start=2))
    assert [r["id"] for r in read_answers(path)] == ["q0", "q1", "q2"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx"])
def test_a_row_cut_short_by_a_crash_is_dropped_on_resume(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"answers{suffix}"
    with open_answers(path, resume=False) as sink:
        sink.write(records(3))
    written = journal_path(path) if suffix == ".xlsx" else path
    data = written.read_bytes()
    # Cut the last row in the middle of its answer text (inside a quoted CSV field).
    written.write_bytes(data[: data.rindex(b"120 euros")])
    with open_answers(path, resume=True) as sink:
        assert sink.done == {"q0", "q1"}
        sink.write(records(2, start=2))
    assert [r["id"] for r in read_answers(path)] == ["q0", "q1", "q2", "q3"]
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        ids = [row[0] for row in load_workbook(path).active.iter_rows(values_only=True)]
        assert ids == ["id", "q0", "q1", "q2", "q3"]


def test_a_damaged_line_before_the_last_is_not_silently_dropped(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    with open_answers(path, resume=False) as sink:
        sink.write(records(3))
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "garbage\n" + lines[2])
    with pytest.raises(BatchInputError, match="line 2 is not an answer record"):
        open_answers(path, resume=True).__enter__()


def test_resuming_a_csv_with_other_columns_is_refused(tmp_path: Path) -> None:
    path = write_table(tmp_path / "answers.csv", ["id", "question"], [["1", "Who?"]])
    with pytest.raises(BatchInputError, match="columns are not those of an answer file"):
        open_answers(path, resume=True).__enter__()
