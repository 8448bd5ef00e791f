"""The ``lorag`` command line, in-process, with tiny real models: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.core.registry import AdapterRegistry
from assistant.core.settings import Settings
from assistant.feedback import FeedbackLog


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha\n\nThe alpha server runs backups nightly.\n")
    (folder / "b.txt").write_text("Bravo team owns the billing service.\n")
    return folder


def test_ingest_ask_list_delete(cli: CliRunner, docs: Path) -> None:
    result = cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "2 added" in result.output

    again = cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"])
    assert "2 unchanged" in again.output and again.exit_code == 0

    asked = cli.invoke(app, ["ask", "Who owns billing?", "-c", "kb", "--json"])
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout)
    assert answer["question"] == "Who owns billing?"
    assert answer["sources"] and isinstance(answer["abstained"], bool)

    listed = cli.invoke(app, ["documents", "list", "-c", "kb"])
    assert "a.md" in listed.output and "b.txt" in listed.output

    collections = cli.invoke(app, ["collections"])
    assert "kb" in collections.output

    deleted = cli.invoke(app, ["documents", "delete", str(docs / "a.md"), "-c", "kb"])
    assert deleted.exit_code == 0 and "deleted" in deleted.output
    listed = cli.invoke(app, ["documents", "list", "-c", "kb"])
    assert "a.md" not in listed.output


def test_ask_with_a_reranker_gives_each_source_its_score(
    cli: CliRunner, docs: Path, tiny_cross_encoder_dir: Path
) -> None:
    assert cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"]).exit_code == 0
    args = ["ask", "Who owns billing?", "-c", "kb", "--json"]
    asked = cli.invoke(app, [*args, "--reranker", str(tiny_cross_encoder_dir)])
    assert asked.exit_code == 0, asked.output
    scores = [source["rerank_score"] for source in json.loads(asked.stdout)["sources"]]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)
    plain = json.loads(cli.invoke(app, args).stdout)
    assert [source["rerank_score"] for source in plain["sources"]] == [None, None]


def test_ingest_with_a_bad_file_reports_it_and_exits_non_zero(cli: CliRunner, docs: Path) -> None:
    (docs / "empty.txt").write_bytes(b"")
    result = cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"])
    assert result.exit_code == 1
    assert "2 added" in result.output and "1 failed" in result.output
    assert "empty.txt" in result.output and "empty" in result.output


def test_missing_path(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["ingest", str(tmp_path / "missing"), "-c", "kb", "--no-progress"])
    assert result.exit_code == 1
    assert "missing" in result.output and "not found" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "anything", "-c", "nope"], "unknown collection 'nope'"),
        (["ask", "  ", "-c", "kb"], "question is empty"),
        (["documents", "list", "-c", "nope"], "unknown collection 'nope'"),
        (["ask", "hi", "-c", "kb", "--adapter", "/no/such/adapter"], "adapter"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(
    cli: CliRunner, docs: Path, args: list[str], message: str
) -> None:
    cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"])
    result = cli.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_deleting_an_unknown_document_fails(cli: CliRunner, docs: Path) -> None:
    cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"])
    result = cli.invoke(app, ["documents", "delete", "nothing.pdf", "-c", "kb"])
    assert result.exit_code == 1 and "nothing.pdf" in result.output


def test_an_abstention_in_the_terminal_still_lists_the_closest_passages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from assistant.cli.answering import print_answer
    from assistant.core.types import Answer, Citation

    passage = Citation(
        n=1,
        source="/docs/travel.md",
        title="travel",
        page=None,
        heading="Hotels",
        snippet="The hotel limit is 120 euros per night.",
        score=0.5,
        similarity=0.6,
        chunk_id="c1",
    )
    print_answer(
        Answer(
            question="What is the limit?",
            text="I don't know.",
            citations=[],
            abstained=True,
            abstain_reason="unsupported",
            sources=[passage],
        )
    )
    printed = capsys.readouterr().out
    assert "closest passages" in printed
    assert "[1] travel, Hotels — /docs/travel.md" in printed
    assert "The hotel limit is 120 euros per night." in printed


def test_a_citation_names_its_title_once() -> None:
    from assistant.cli.answering import place_of
    from assistant.core.types import Citation

    def cited(title: str, heading: str | None, page: int | None = None) -> Citation:
        return Citation(
            n=1, source="/d/x.md", title=title, page=page, heading=heading, snippet="",
            score=1.0, similarity=0.5, chunk_id="c",
        )  # fmt: skip

    assert place_of(cited("Guide", "Guide > Deleting")) == "Guide > Deleting"
    assert place_of(cited("Guide", "Deleting")) == "Guide, Deleting"
    assert place_of(cited("Report", None, page=3)) == "Report, page 3"
    assert place_of(cited("Report", "Report > Costs", page=3)) == "page 3, Report > Costs"


def test_ask_without_retrieval_shows_what_the_model_knows_alone(cli: CliRunner, docs: Path) -> None:
    assert cli.invoke(app, ["ingest", str(docs), "-c", "kb", "--no-progress"]).exit_code == 0
    closed = cli.invoke(app, ["ask", "Who owns billing?", "-c", "kb", "--no-retrieval", "--json"])
    assert closed.exit_code == 0, closed.output
    answer = json.loads(closed.stdout)
    assert answer["sources"] == [] and answer["citations"] == []
    assert "retrieve_s" not in answer["timings"]
    nowhere = cli.invoke(app, ["ask", "Who owns billing?", "-c", "none", "--no-retrieval"])
    assert nowhere.exit_code == 0, nowhere.output  # no documents are read: no collection needed


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("LORAG_RETRIEVAL__TOP_K", "0", "retrieval.top_k (LORAG_RETRIEVAL__TOP_K)"),
        (
            "LORAG_API__KEYS",
            '[{"id": "ops", "key": "tiny-secret", "permissions": {"*": "admin"}}]',
            "api.keys.0.key (LORAG_API__KEYS)",
        ),
    ],
)
@pytest.mark.parametrize("command", [["collections"], ["ui", "--headless"]])
def test_an_invalid_setting_is_one_line_that_never_shows_its_value(
    cli: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    named: str,
    command: list[str],
) -> None:
    monkeypatch.setenv(variable, value)
    result = cli.invoke(app, command)
    assert result.exit_code == 1
    assert result.output.startswith(f"error: invalid setting {named}: "), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "tiny-secret" not in result.output and "Traceback" not in result.output


def test_base_means_the_base_model_on_a_bound_collection_in_ask_and_chat(
    cli: CliRunner, ops_kb: AdapterRegistry, tiny_settings: Settings
) -> None:
    question = "When does the Lisbon office open?"

    def ask(*options: str) -> dict[str, Any]:
        asked = cli.invoke(app, ["ask", question, "-c", "kb", "--json", *options])
        assert asked.exit_code == 0, asked.output
        answer: dict[str, Any] = json.loads(asked.stdout)
        return answer

    unbound = ask()
    bound = cli.invoke(app, ["adapters", "bind", "kb", "ops@1"])
    assert bound.exit_code == 0 and "kb: bound to ops@1" in bound.output
    by_binding, by_base = ask(), ask("--adapter", "base")
    assert (unbound["adapter"], by_binding["adapter"], by_base["adapter"]) == (None, "ops@1", None)
    assert by_binding["text"] != unbound["text"]  # the adapter changes the answer...
    assert by_base["text"] == unbound["text"]  # ...and base is the base model's answer

    feedback = FeedbackLog.for_settings(tiny_settings)
    for options, banner, answered, rated in (
        ([], "by adapter ops@1", by_binding["text"], "ops@1"),
        (["--adapter", "base"], "by the base model", unbound["text"], None),
    ):
        chat = cli.invoke(app, ["chat", "-c", "kb", *options], input=f"{question}\n/up\n\n")
        assert chat.exit_code == 0, chat.output
        assert banner in chat.output.splitlines()[0], chat.output
        last = feedback.read()[-1]
        assert (last.answer, last.adapter) == (answered, rated)
