"""Evaluation: scores of hand-made rows worked out by hand, and ``lorag eval`` end to end with
tiny real models (table, JSON, PNG) on a case whose every value is known in advance."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from assistant.batch.evaluation import (
    Configuration,
    RowResult,
    configurations,
    evaluate,
    score,
    unmatched_sources,
)
from assistant.batch.formats import BatchInputError, read_questions
from assistant.cli import app
from assistant.cli.batch import evaluate as evaluate_command
from assistant.core.registry import AdapterRegistry
from assistant.core.settings import Settings
from assistant.runtime import Runtime
from tests.core.test_models import make_lora
from tests.fixtures.sphinx_docs import write_sphinx_docs

DOCS = ["/d/b.txt", "/d/a.txt"]  # retrieved: document b first, then a
LOG3 = math.log2(3)


def row(**fields: object) -> RowResult:
    defaults: dict[str, object] = {
        "id": "r",
        "question": "?",
        "answer": "",
        "abstained": False,
        "retrieved": DOCS,
        "cited_texts": [],
        "cited_sources": [],
        "expected_answers": (),
        "expected_sources": (),
        "unanswerable": False,
    }
    return RowResult(**{**defaults, **fields})  # type: ignore[arg-type]


ROWS = [
    # right answer, right source first, cites it
    row(
        answer="The Bravo team [1].",
        cited_texts=["Bravo team owns billing."],
        cited_sources=["/d/b.txt"],
        expected_answers=("Bravo team",),
        expected_sources=("b.txt",),
    ),
    # a longer answer (F1 1/3), the source second, one of two citations holds the answer
    row(
        answer="Backups run nightly at 2am [1, 2]",
        cited_texts=["Bravo team owns billing.", "The alpha server runs backups nightly."],
        cited_sources=["/d/b.txt", "/d/a.txt"],
        expected_answers=("nightly",),
        expected_sources=("a.txt",),
    ),
    # unanswerable, rightly abstained: only abstention is scored
    row(answer="I don't know", abstained=True, unanswerable=True),
    # answerable but abstained, source not retrieved
    row(
        answer="I don't know",
        abstained=True,
        expected_answers=("25 days",),
        expected_sources=("c.txt",),
    ),
]


def test_scores_by_hand() -> None:
    metrics = score(ROWS, k=2, with_retrieval=True)
    assert metrics == pytest.approx(
        {
            "recall_at_k": (1 + 1 + 0) / 3,
            "mrr": (1 + 1 / 2 + 0) / 3,
            "ndcg_at_10": (1 + 1 / LOG3 + 0) / 3,
            "exact_match": (1 + 0 + 0) / 3,
            "f1": (1 + 1 / 3 + 0) / 3,
            "contains": (1 + 1 + 0) / 3,
            "source_cited": (1 + 1 + 0) / 3,
            "citation_precision": (1 + 1 / 2) / 2,  # the abstention cites nothing
            "abstention_accuracy": 3 / 4,
            "unanswerable_abstained": 1.0,
            "false_abstention": 1 / 3,
            "abstain_rate": 2 / 4,
        }
    )
    assert score(ROWS[:1], k=1, with_retrieval=True)["abstention_accuracy"] is None


def test_without_retrieval_there_are_no_retrieval_scores() -> None:
    metrics = score(ROWS, k=2, with_retrieval=False)
    assert metrics["recall_at_k"] is None and metrics["mrr"] is None
    assert metrics["ndcg_at_10"] is None
    assert metrics["f1"] == pytest.approx(4 / 9)


def test_configurations_cross_models_and_retrieval() -> None:
    names = [
        c.name for c in configurations(["legal@2", "/x/lora-1"], dense=True, no_retrieval=True)
    ]
    assert names == [
        f"{model}/{kind}"
        for model in ("base", "legal@2", "lora-1")
        for kind in ("hybrid", "dense", "none")
    ]
    assert [c.name for c in configurations()] == ["base/hybrid"]


def test_unmatched_sources_are_the_expected_ones_no_stored_path_ends_with() -> None:
    stored = ["/docs/faq/programming.rst", "/docs/xfaq/library.rst", "/docs/glossary.rst"]
    expected = ["faq/programming.rst", "faq/library.rst", "glossary.rst", "faq/library.rst"]
    assert unmatched_sources(expected, stored) == ("faq/library.rst",)
    assert unmatched_sources(["/other/glossary.rst", "docs/glossary.rst"], stored) == (
        "/other/glossary.rst",
    )
    assert unmatched_sources(["a.txt"], []) == ("a.txt",)


# --------------------------------------------------------------------------- end to end

QUESTIONS = [
    {
        "id": "r1",
        "question": "What is the hotel limit?",
        "answer": "120 euros",
        "source": ["travel.txt", "leave.txt"],
    },
    {
        "id": "r2",
        "question": "How many days of leave?",
        "answer": "25 days",
        "source": "missing.txt",
    },
    {
        "id": "r3",
        "question": "Who pays for trains?",
        "answer": "the company",
        "source": ["travel.txt", "leave.txt", "missing.txt"],
    },
    {"id": "r4", "question": "What is the capital of Mars?", "unanswerable": True},
]
# Two one-chunk documents, both retrieved for every question (top 2), in either order; every
# model abstains (min_similarity above 1). So, over r1-r3 (r4 is unanswerable):
EXPECTED = {
    "recall_at_k": (1 + 0 + 2 / 3) / 3,
    "mrr": (1 + 0 + 1) / 3,
    "ndcg_at_10": (1 + 0 + (1 + 1 / LOG3) / (1 + 1 / LOG3 + 1 / 2)) / 3,
    "exact_match": 0.0,
    "f1": 0.0,
    "contains": 0.0,
    "source_cited": 0.0,
    "citation_precision": None,
    "abstention_accuracy": 1 / 4,  # only r4 is right to abstain
    "unanswerable_abstained": 1.0,
    "false_abstention": 1.0,
    "abstain_rate": 1.0,
}


@pytest.fixture
def env(tiny_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "travel.txt").write_text("The hotel limit is 120 euros per night in Amsterdam.\n")
    (docs / "leave.txt").write_text("Employees get 25 days of paid leave per year.\n")
    rt = Runtime(tiny_settings)
    assert rt.ingestor("kb").ingest([docs]).ok
    rt.close()
    monkeypatch.setenv("LORAG_DATA_DIR", str(tiny_settings.data_dir))
    monkeypatch.setenv("LORAG_GENERATOR__MODEL", tiny_settings.generator.model)
    monkeypatch.setenv("LORAG_EMBEDDER__MODEL", tiny_settings.embedder.model)
    monkeypatch.setenv("LORAG_GENERATION__MAX_NEW_TOKENS", "8")
    monkeypatch.setenv("LORAG_RETRIEVAL__MIN_SIMILARITY", "1.01")
    return tiny_settings


def questions_file(path: Path) -> Path:
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return path


def test_eval_command_writes_table_json_and_chart(env: Settings, tmp_path: Path) -> None:
    adapter = make_lora(Path(env.generator.model), tmp_path / "lora-1", seed=1)
    app = typer.Typer()
    app.command("eval")(evaluate_command)
    app.command("other")(lambda: None)
    report_path = tmp_path / "out" / "report.json"
    args = [
        "eval",
        str(questions_file(tmp_path / "q.jsonl")),
        "-c",
        "kb",
        "--top-k",
        "2",
        "--adapter",
        str(adapter),
        "--dense",
        "--no-retrieval",
        "-o",
        str(report_path),
        "--no-progress",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "nDCG@10" in result.stdout and "recall@2" in result.stdout

    report = json.loads(report_path.read_text())
    assert (report["collection"], report["top_k"], report["rows"]) == ("kb", 2, 4)
    by_name = {c["name"]: c for c in report["configurations"]}
    assert list(by_name) == [
        f"{model}/{kind}" for model in ("base", "lora-1") for kind in ("hybrid", "dense", "none")
    ]
    for name in ("base/hybrid", "base/dense", "lora-1/hybrid", "lora-1/dense"):
        assert by_name[name]["metrics"] == pytest.approx(EXPECTED), name
    for name in ("base/none", "lora-1/none"):
        metrics = by_name[name]["metrics"]
        assert metrics["recall_at_k"] is None and metrics["ndcg_at_10"] is None
        assert all(row["retrieved"] == [] for row in by_name[name]["rows"])
    first = by_name["base/hybrid"]["rows"][0]
    assert first["id"] == "r1" and first["scores"]["recall_at_k"] == 1.0
    assert report["unmatched_sources"] == ["missing.txt"]
    assert (
        "warning 1 expected source(s) match no document of collection 'kb' (scored as never "
        "retrieved): missing.txt" in " ".join(result.stderr.split())
    )
    assert sorted(Path(s).name for s in first["retrieved"]) == ["leave.txt", "travel.txt"]

    chart = report_path.with_suffix(".png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000


def test_limit_and_nothing_to_evaluate(env: Settings, tmp_path: Path) -> None:
    source = read_questions(questions_file(tmp_path / "q.jsonl"))
    rt = Runtime(Settings(_env_file=None))
    try:
        report = evaluate(rt, source, [Configuration()], collection="kb", top_k=2, limit=2)
        assert [r.id for r in report.results[0].rows] == ["r1", "r2"]
        assert report.results[0].metrics["abstention_accuracy"] is None  # r4 left out

        plain = tmp_path / "plain.csv"
        plain.write_text("question\nWhat is the hotel limit?\n")
        with pytest.raises(BatchInputError, match="nothing to evaluate"):
            evaluate(rt, read_questions(plain), [Configuration()], collection="kb")
    finally:
        rt.close()


def test_eval_matches_relative_sources_of_a_sphinx_tree(env: Settings, tmp_path: Path) -> None:
    root = write_sphinx_docs(tmp_path / "sphinx")
    rt = Runtime(env)
    assert rt.ingestor("sphinx").ingest([root]).ok
    rt.close()
    rows = [
        {"id": "c", "question": "Where is the pelican?", "source": "c-api/list.rst"},
        {"id": "faq", "question": "Where is the zeppelin?", "source": "faq/programming.rst"},
        {
            "id": "typo",
            "question": "What is the marmalade index?",
            "source": ["glossary.rst", "faq/programing.rst"],
        },
    ]
    questions = tmp_path / "sphinx.jsonl"
    questions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    app = typer.Typer()
    app.command("eval")(evaluate_command)
    app.command("other")(lambda: None)
    report_path = tmp_path / "sphinx-report.json"
    args = ["eval", str(questions), "-c", "sphinx", "--top-k", "1", "-o", str(report_path)]
    result = CliRunner().invoke(app, [*args, "--no-progress"])

    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["unmatched_sources"] == ["faq/programing.rst"]
    assert "match no document of collection 'sphinx'" in " ".join(result.stderr.split())
    [hybrid] = report["configurations"]
    assert [row["scores"]["recall_at_k"] for row in hybrid["rows"]] == [1.0, 1.0, 0.5]
    assert hybrid["metrics"]["recall_at_k"] == pytest.approx(2.5 / 3)


def test_eval_with_base_on_a_bound_collection_scores_the_base_once_and_names_each_model(
    cli: CliRunner, ops_kb: AdapterRegistry, tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    asked = {"When does the Lisbon office open?": "nine", "Where are holidays booked?": "portal"}
    questions.write_text(
        "".join(json.dumps({"question": q, "expected_answer": a}) + "\n" for q, a in asked.items())
    )

    def evaluated(*options: str) -> dict[str, dict[str, Any]]:
        """Each configuration of a ``lorag eval`` report, by name, in the report's order."""
        report = tmp_path / "report.json"
        args = ["eval", str(questions), "-c", "kb", "-o", str(report), "--no-progress"]
        result = cli.invoke(app, [*args, *options])
        assert result.exit_code == 0, result.output
        return {c["name"]: c for c in json.loads(report.read_text())["configurations"]}

    unbound = evaluated()["base/hybrid"]
    assert cli.invoke(app, ["adapters", "bind", "kb", "ops@1"]).exit_code == 0
    compared = evaluated("--adapter", "base", "--adapter", "ops", "--adapter", "ops@1")
    assert list(compared) == ["base/hybrid", "ops@1/hybrid"]
    assert [c["adapter"] for c in compared.values()] == [None, "ops@1"]
    answers = {name: [row["answer"] for row in c["rows"]] for name, c in compared.items()}
    assert answers["base/hybrid"] == [row["answer"] for row in unbound["rows"]]
    assert answers["ops@1/hybrid"] != answers["base/hybrid"]
