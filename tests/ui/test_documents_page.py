"""The documents page against the real API: a first collection, uploads followed to the end,
the documents with their chunk counts, a file that could not be ingested named with its reason,
refused uploads as readable messages, and deleting a document."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.api.conftest import KEYS
from tests.ui.conftest import LiveApi, open_page, texts

NOTES = b"# Release notes\n\nVersion 2 adds a dark theme and faster search.\n"


def upload(app: AppTest, *files: tuple[str, bytes]) -> AppTest:
    """Put ``files`` in the upload form, submit it, and run until the ingest job has ended."""
    uploader = next(u for u in app.file_uploader if u.label == "Files")
    uploader.set_value([(name, content, "application/octet-stream") for name, content in files])
    submit = next(b for b in app.button if b.label == "Upload and ingest")
    submit.click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


@pytest.fixture
def newcomer(api: LiveApi, monkeypatch: pytest.MonkeyPatch) -> LiveApi:
    """The UI with the key of someone who may create only the collection ``other``."""
    monkeypatch.setenv("LORAG_UI__API_KEY", KEYS["outsider"][0])
    return api


def test_a_first_collection_then_an_upload_followed_to_its_documents(newcomer: LiveApi) -> None:
    app = open_page("documents")
    assert "No collection yet" in app.info[0].value
    name = next(t for t in app.text_input if t.label == "Collection name")
    assert name.value == "documents"  # a first collection is one click away
    name.set_value("other")
    next(b for b in app.button if b.label == "Create collection").click().run()
    assert app.sidebar.selectbox[0].value == "other"
    assert app.subheader[0].value == "Add documents to other"

    upload(app, ("notes.md", NOTES))
    [success] = app.success
    assert "Ingested 1 file into **other**" in success.value
    table = app.dataframe[0].value
    assert list(table["File"]) == ["notes.md"] and list(table["Title"]) == ["Release notes"]
    assert table["Chunks"][0] >= 1
    assert "1 document in other" in [s.value for s in app.subheader]
    assert app.sidebar.caption[0].value.startswith("1 document · ")

    upload(app, ("broken.pdf", b"this is not a PDF"), ("more.txt", b"Deploys happen on Fridays."))
    assert "Ingested 1 file into **other**" in app.success[0].value
    problems = [e.value for e in app.error]
    assert any(p.startswith("**broken.pdf**: ") for p in problems), problems
    history = next(e for e in app.expander if e.label.startswith("Upload history"))
    assert "2 uploads, 1 file failed" in history.label
    assert "`broken.pdf`" in texts(history, "markdown")

    delete = next(s for s in app.selectbox if s.label == "Delete a document")
    delete.select(next(d for d in delete.options if d.startswith("notes.md"))).run()
    next(b for b in app.button if b.label == "Delete").click().run()
    assert list(app.dataframe[0].value["File"]) == ["more.txt"]
    assert "Deleted notes.md" in [t.value for t in app.toast]


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (("huge.txt", b"x" * (1024 * 1024 + 10)), "Too large (413)"),
        (("empty.txt", b""), "Invalid request (422): 'empty.txt' is empty"),
    ],
)
def test_a_refused_upload_is_a_readable_message(
    api: LiveApi, file: tuple[str, bytes], message: str
) -> None:
    app = upload(open_page("documents"), file)
    assert message in app.error[0].value
    assert not app.success


def test_an_upload_needs_files(api: LiveApi) -> None:
    app = open_page("documents")
    next(b for b in app.button if b.label == "Upload and ingest").click().run()
    assert "Choose one or more files first." in app.warning[0].value


def test_a_collection_that_exists_already_is_a_conflict(api: LiveApi) -> None:
    app = open_page("documents")
    next(t for t in app.text_input if t.label == "Collection name").set_value("kb")
    next(b for b in app.button if b.label == "Create collection").click().run()
    assert "Conflict (409): collection 'kb' already exists" in app.error[0].value
