"""The pieces the pages share, on their own: a citation's label and expandable passage (opened
through the real API: highlighted in its text, with its original file), an answer's
abstention, and the adapter picker's choices."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.ui.conftest import ADMIN_KEY, LiveApi
from ui.components.adapter_choice import adapter_choices, choice_label
from ui.components.citations import citation_label, file_name
from ui.schemas import Adapter, Citation, Taint

CITATION: Citation = {
    "n": 2,
    "source": "/srv/lorag/uploads/kb/handbook.pdf",
    "title": "Staff handbook",
    "page": 12,
    "heading": "Travel > Hotels",
    "snippet": "The hotel limit is 120 euros per night.\nReceipts are required.",
    "score": 0.5,
    "similarity": 0.81,
    "doc_id": "d",
    "chunk_id": "c",
}


def _adapter(name: str, version: int, status: str, tainted: bool = False) -> Adapter:
    taints: list[Taint] = [
        {
            "doc_id": "d",
            "collection": "kb",
            "erased_at": "2026-01-02T00:00:00+00:00",
            "erasure_id": "e",
            "trained_hash": None,
        }
    ]
    return {
        "name": name,
        "version": version,
        "ref": f"{name}@{version}",
        "status": status,
        "method": "lora",
        "base_model": "m",
        "created_at": "2026-01-01T00:00:00",
        "metrics": {},
        "source_doc_ids": ["d"],
        "tainted": tainted,
        "tainted_by": taints if tainted else [],
        "gate": None,
    }


def test_a_citation_names_its_file_page_and_heading() -> None:
    assert citation_label(CITATION) == "[2] handbook.pdf — page 12 · Travel > Hotels"
    assert citation_label({**CITATION, "page": None, "heading": None}) == "[2] handbook.pdf"
    assert file_name("C:\\docs\\policy.docx") == "policy.docx"


def _answer_with_a_citation(url: str, key: str, citation: dict[str, object]) -> None:
    from ui.client import LoragClient
    from ui.components.answer import show_answer

    show_answer(
        LoragClient(url, key),
        {
            "answer_id": "a1",
            "answer": "120 euros per night [2].",
            "abstained": False,
            "abstain_reason": None,
            "citations": [citation],
            "sources": [citation],
            "collection": "kb",
            "adapter": "legal",
            "adapter_version": 3,
            "timings": {
                "queue_ms": 0,
                "retrieve_ms": 5,
                "first_token_ms": 9,
                "generate_ms": 400,
                "total_ms": 1500,
            },
        },
    )


def _cited(api: LiveApi) -> Citation:
    """A real source of the kb collection, as an answer names it."""
    from ui.client import LoragClient, StreamDone

    client = LoragClient(api.url, ADMIN_KEY)
    events = list(client.ask_stream("What is the hotel limit per night?", "kb", None, []))
    done = next(e for e in events if isinstance(e, StreamDone))
    return next(c for c in done.answer["sources"] if c["source"].endswith("travel.md"))


def test_a_source_opens_highlighted_in_its_text_with_its_original_file(api: LiveApi) -> None:
    cited = _cited(api)
    kwargs = {"url": api.url, "key": ADMIN_KEY, "citation": {**cited, "n": 2}}
    app = AppTest.from_function(_answer_with_a_citation, kwargs=kwargs).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.markdown[0].value == "120 euros per night [2]."
    [source] = app.expander
    assert source.label.startswith("[2] travel.md")
    [shown] = source.get("html")
    assert "<mark>" in shown.proto.body and "120 euros per night in Amsterdam" in shown.proto.body
    details = source.caption[0].value
    assert f"`{cited['source']}`" in details and "*Travel policy*" in details
    [button] = source.get("download_button")
    assert button.proto.label == "Open travel.md"
    assert "Answered by adapter legal@3 from *kb* in 1.5 s" in [c.value for c in app.caption]


def test_a_source_that_is_gone_still_shows_its_snippet(api: LiveApi) -> None:
    kwargs = {"url": api.url, "key": ADMIN_KEY, "citation": CITATION}
    app = AppTest.from_function(_answer_with_a_citation, kwargs=kwargs).run()
    [source] = app.expander
    assert source.label == "[2] handbook.pdf — page 12 · Travel > Hotels"
    assert source.markdown[0].value == (
        "> The hotel limit is 120 euros per night.\n> Receipts are required."
    )
    assert "Not found (404)" in source.caption[0].value


def _abstention_with_a_close_passage(url: str, key: str, passage: dict[str, object]) -> None:
    from ui.client import LoragClient
    from ui.components.answer import show_answer

    show_answer(
        LoragClient(url, key),
        {
            "answer_id": "a1",
            "answer": "I don't know: the documents do not contain the answer to this question.",
            "abstained": True,
            "abstain_reason": "unsupported",
            "citations": [],
            "sources": [passage],
            "collection": "kb",
            "adapter": None,
            "adapter_version": None,
            "timings": {
                "queue_ms": 0,
                "retrieve_ms": 5,
                "first_token_ms": 9,
                "generate_ms": 400,
                "total_ms": 1500,
            },
        },
    )


def test_an_abstention_still_shows_the_closest_passages(api: LiveApi) -> None:
    kwargs = {"url": api.url, "key": ADMIN_KEY, "passage": _cited(api)}
    app = AppTest.from_function(_abstention_with_a_close_passage, kwargs=kwargs).run()
    assert "No answer from the documents" in app.warning[0].value
    captions = [caption.value for caption in app.caption]
    assert "Nearest to the question: 1 passage; open one to read it" in captions
    [passage] = app.expander
    assert passage.label.startswith("[1] travel.md")
    assert "The hotel limit is 120 euros" in passage.get("html")[0].proto.body


def test_the_adapter_picker_offers_default_base_names_and_versions() -> None:
    adapters = [
        _adapter("ops", 2, "candidate"),
        _adapter("ops", 1, "promoted"),
        _adapter("hr", 1, "candidate"),
    ]
    assert adapter_choices(adapters) == ["@default", "base", "hr", "hr@1", "ops", "ops@1", "ops@2"]
    labels = [choice_label(c, adapters, "ops") for c in adapter_choices(adapters)]
    assert labels == [
        "Collection default (ops)",
        "Base model (no adapter)",
        "hr",
        "hr@1 · candidate",
        "ops (promoted: v1)",
        "ops@1 · promoted",
        "ops@2 · candidate",
    ]
    assert choice_label(None, adapters, None) == "Collection default (base model)"
    erased = [_adapter("ops", 1, "promoted", tainted=True)]
    assert choice_label("ops", erased, None) == "ops (promoted: v1, tainted: not served)"
    assert choice_label("ops@1", erased, None) == "ops@1 · promoted, tainted: not served"
