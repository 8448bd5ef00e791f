"""The pieces the pages share, on their own: a citation's label and expandable passage, an
answer's abstention, and the adapter picker's choices."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from ui.components.adapter_choice import adapter_choices, choice_label
from ui.components.citations import citation_label, file_name
from ui.schemas import Adapter, Citation

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


def _adapter(name: str, version: int, status: str) -> Adapter:
    return {
        "name": name,
        "version": version,
        "ref": f"{name}@{version}",
        "status": status,
        "method": "lora",
        "base_model": "m",
        "created_at": "2026-01-01T00:00:00",
        "metrics": {},
    }


def test_a_citation_names_its_file_page_and_heading() -> None:
    assert citation_label(CITATION) == "[2] handbook.pdf — page 12 · Travel > Hotels"
    assert citation_label({**CITATION, "page": None, "heading": None}) == "[2] handbook.pdf"
    assert file_name("C:\\docs\\policy.docx") == "policy.docx"


def _answer_with_a_citation(citation: dict[str, object]) -> None:
    from ui.components.answer import show_answer

    show_answer(
        {
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
        }
    )


def test_an_answer_shows_its_sources_as_expandable_passages() -> None:
    app = AppTest.from_function(_answer_with_a_citation, kwargs={"citation": CITATION}).run()
    assert app.markdown[0].value == "120 euros per night [2]."
    [source] = app.expander
    assert source.label == "[2] handbook.pdf — page 12 · Travel > Hotels"
    assert source.markdown[0].value == (
        "> The hotel limit is 120 euros per night.\n> Receipts are required."
    )
    details = source.caption[0].value
    assert "`/srv/lorag/uploads/kb/handbook.pdf`" in details and "*Staff handbook*" in details
    assert "Answered by adapter legal@3 from *kb* in 1.5 s" in [c.value for c in app.caption]


def _abstention_with_a_close_passage(passage: dict[str, object]) -> None:
    from ui.components.answer import show_answer

    show_answer(
        {
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
        }
    )


def test_an_abstention_still_shows_the_closest_passages() -> None:
    app = AppTest.from_function(_abstention_with_a_close_passage, kwargs={"passage": CITATION})
    app.run()
    assert "No answer from the documents" in app.warning[0].value
    captions = [caption.value for caption in app.caption]
    assert "Nearest to the question: 1 passage; open one to read it" in captions
    [passage] = app.expander
    assert passage.label == "[2] handbook.pdf — page 12 · Travel > Hotels"
    assert "The hotel limit is 120 euros per night." in passage.markdown[0].value


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
