"""Citations: [n] markers, attribution by word overlap, snippets."""

from __future__ import annotations

from assistant.citations import attribute, cite, cited_numbers, grounding, snippet
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
    citations = cite("The fund was launched by Lara [3].", "Who launched the fund?", HITS)
    assert [c.n for c in citations] == [3]
    assert citations[0].source == "/docs/3.txt"
    assert citations[0].chunk_id == "id-3"


def test_answer_without_marker_is_attributed_to_the_source_holding_its_new_words() -> None:
    assert attribute("The Eagle", "What landed on the Moon?", HITS) == [1]
    assert [c.n for c in cite("DJ AM", "Who won DJ of the Year?", HITS)] == [2, 3]
    # "launched" and "fund" repeat the question; "Lara" is the new word and decides.
    assert attribute("Lara launched the fund", "Who launched the fund?", HITS) == [3]


def test_unsupported_answer_gets_no_citation_and_no_grounding() -> None:
    question = "Who launched the fund?"
    assert cite("Paris is the capital of France.", question, HITS) == []
    assert grounding("King Arthur launched the fund.", question, HITS) == 0.0
    assert grounding("Lara launched the fund.", question, HITS) == 1.0
    # Restating the question answers nothing.
    assert grounding("The fund was launched.", question, HITS) == 0.0


def test_snippet_centres_on_the_answer() -> None:
    text = "x " * 400 + "the Memorial Fund was launched by Lara " + "y " * 400
    piece = snippet(text, "Lara launched it", width=120)
    assert "Lara" in piece
    assert piece.startswith("…") and piece.endswith("…")
