"""The batch page against the real API: a questions file answered in the background, the counts,
the rows that failed, the answers file to download in the same format, and refused files."""

from __future__ import annotations

import csv
import io

from streamlit.testing.v1 import AppTest

from tests.ui.conftest import LiveApi, open_page

QUESTIONS = b"id,question\nq1,What is the hotel limit?\nq2,How many days of leave?\nq3,\n"


def submit(app: AppTest, name: str, content: bytes) -> AppTest:
    app.file_uploader[0].set_value((name, content, "text/csv"))
    next(b for b in app.button if b.label == "Answer them").click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_a_questions_file_is_answered_and_its_answers_downloaded(api: LiveApi) -> None:
    app = submit(open_page("batch"), "questions.csv", QUESTIONS)
    assert "Answered the questions of **kb** by the base model." in app.success[0].value
    counts = {metric.label: metric.value for metric in app.metric}
    assert counts["Rows"] == "3" and counts["Failed"] == "1"  # the row without a question
    assert int(counts["Answered"]) + int(counts["Abstained"]) == 2
    assert app.error[0].value.startswith("**row 4**: ")
    [download] = app.get("download_button")
    assert download.proto.label.startswith("Download answers-") and ".csv" in download.proto.label
    kept = app.session_state["batch_download"][1]
    assert kept.media_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(kept.content.decode())))
    assert [row["id"] for row in rows] == ["q1", "q2"] and all(row["answer"] for row in rows)
    assert [row["adapter"] for row in rows] == ["base", "base"]  # kb is not bound


def test_on_a_bound_collection_the_default_is_its_adapter_and_base_is_the_base_model(
    api: LiveApi,
) -> None:
    api.runtime.registry.bind("kb", "ops@2")
    try:
        app = open_page("batch")
        picker = next(box for box in app.selectbox if box.label == "Answer with")
        assert picker.value == "@default"
        assert picker.options == [
            "Collection default (ops@2)",
            "Base model (no adapter)",
            "ops (promoted: v1)",
            "ops@1 · promoted",
            "ops@2 · candidate",
        ]
        answered: dict[str, tuple[str, set[str]]] = {}
        for choice in ("base", "@default", "ops@1"):
            picker = next(box for box in app.selectbox if box.label == "Answer with")
            picker.set_value(choice).run()
            submit(app, "questions.csv", QUESTIONS)
            rows = list(
                csv.DictReader(io.StringIO(app.session_state["batch_download"][1].content.decode()))
            )
            answered[choice] = (app.success[0].value, {row["adapter"] for row in rows})
    finally:
        api.runtime.registry.bind("kb", None)
    assert answered == {
        "base": ("Answered the questions of **kb** by the base model.", {"base"}),
        "@default": ("Answered the questions of **kb** by adapter ops@2.", {"ops@2"}),
        "ops@1": ("Answered the questions of **kb** by adapter ops@1.", {"ops@1"}),
    }


def test_a_file_without_questions_is_refused_readably(api: LiveApi) -> None:
    app = submit(open_page("batch"), "nothing.csv", b"id,text\n1,hello\n")
    assert "Invalid request (422)" in app.error[0].value
    assert "has no question column (columns found: id, text)" in app.error[0].value
    assert not app.get("download_button")


def test_a_batch_needs_a_file(api: LiveApi) -> None:
    app = open_page("batch")
    next(b for b in app.button if b.label == "Answer them").click().run()
    assert "Choose a questions file first." in app.warning[0].value
