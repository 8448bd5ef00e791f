"""Citations: [n] markers, attribution by word overlap, snippets."""

from __future__ import annotations

from assistant.citations import attribute, cite, cited_numbers, snippet
from assistant.core.types import Chunk, Hit


def hit(text: str, n: int) -> Hit:
    chunk = Chunk(
        id=f"id-{n}",
        doc_id=f"doc-{n}",
        source=f"/docs/{n}.txt",
        title=f"Doc {n}",
        text=text,
        start=0,
        end=len(text),
        chunk_index=0,
        chunk_count=1,
        file_hash="h",
    )
    return Hit(chunk=chunk, score=1.0 / n, similarity=0.5)


HITS = [
    hit("The Eagle landed gently on the Moon in July 1969.", 1),
    hit("DJ AM won DJ of the Year in 2009 and launched a fund.", 2),
    hit("Lara launched the DJ AM Memorial Fund after his death.", 3),
]


def test_markers_are_parsed_deduplicated_and_bounded() -> None:
    assert cited_numbers("It was Lara [3], see [2, 3] and [9] [0].", 3) == [3, 2]


def test_markers_win_over_overlap() -> None:
    citations = cite("The fund was launched by Lara [3].", HITS)
    assert [c.n for c in citations] == [3]
    assert citations[0].source == "/docs/3.txt"
    assert citations[0].chunk_id == "id-3"


def test_answer_without_marker_is_attributed_to_the_source_holding_its_words() -> None:
    assert attribute("The Eagle", HITS) == [1]
    assert [c.n for c in cite("DJ AM", HITS)] == [2, 3]


def test_unsupported_answer_gets_no_citation() -> None:
    assert cite("Paris is the capital of France.", HITS) == []


def test_snippet_centres_on_the_answer() -> None:
    text = "x " * 400 + "the Memorial Fund was launched by Lara " + "y " * 400
    piece = snippet(text, "Lara launched it", width=120)
    assert "Lara" in piece
    assert piece.startswith("…") and piece.endswith("…")
