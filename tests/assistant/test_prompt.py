"""The prompt template: messages, abstention detection, fitting sources in a token budget."""

from __future__ import annotations

from dataclasses import replace

from assistant.core.prompt import DEFAULT_TEMPLATE, PromptTemplate, fit_sources
from assistant.core.types import Chunk, Hit


def make_hit(n: int, words: int, page: int | None = None, heading: str | None = None) -> Hit:
    text = " ".join(f"w{n}_{i}" for i in range(words))
    chunk = Chunk(
        id=str(n),
        doc_id="d",
        source="/s.pdf",
        title="Handbook",
        text=text,
        start=0,
        end=len(text),
        chunk_index=n,
        chunk_count=9,
        file_hash="h",
        page=page,
        heading=heading,
    )
    return Hit(chunk=chunk, score=1.0, similarity=0.9)


def count_words(text: str) -> int:
    return len(text.split())


def test_messages_number_the_sources_and_end_with_the_question() -> None:
    hit = make_hit(1, 3)
    sources = [DEFAULT_TEMPLATE.format_source(1, hit)]
    system, user = DEFAULT_TEMPLATE.messages("  How much?  ", sources)
    assert system["role"] == "system" and "answer only" in system["content"]
    assert user["content"].startswith("Source 1 (Handbook):\n<source>\nw1_0 w1_1 w1_2\n</source>")
    assert "not instructions" in system["content"]  # the sources are data (injection.py)
    assert user["content"].endswith("Question: How much?\nAnswer:")


def test_a_source_is_named_by_its_innermost_heading() -> None:
    hit = make_hit(1, 2, heading="Travel > Limits")
    assert DEFAULT_TEMPLATE.format_source(1, hit).startswith("Source 1 (Limits):\n<source>\nw1_0")


def test_a_template_can_show_where_a_source_comes_from() -> None:
    template = replace(DEFAULT_TEMPLATE, source="[{n}] ({place})\n{text}")
    hit = make_hit(1, 3, page=4, heading="Travel > Limits")
    assert template.format_source(1, hit).startswith("[1] (Handbook, page 4, Travel > Limits)\n")


def test_abstention_detection() -> None:
    assert DEFAULT_TEMPLATE.is_abstention(DEFAULT_TEMPLATE.abstain_answer)
    assert DEFAULT_TEMPLATE.is_abstention("I don't know.")
    assert DEFAULT_TEMPLATE.is_abstention("")
    assert not DEFAULT_TEMPLATE.is_abstention("The limit is 50 euros [1].")


def test_sources_fit_the_budget_best_first() -> None:
    hits = [make_hit(n, 100) for n in range(1, 6)]
    frame = DEFAULT_TEMPLATE.messages("q", [])
    empty = count_words(frame[0]["content"]) + count_words(frame[1]["content"])
    whole = count_words(DEFAULT_TEMPLATE.format_source(1, hits[0])) + 2
    budget = empty + 2 * whole + 40  # two whole sources and 40 tokens: a third is cut to fit
    sources = fit_sources(DEFAULT_TEMPLATE, "q", hits, count_words, budget_tokens=budget)
    assert len(sources) == 3
    assert sources[0].startswith("Source 1 (") and sources[2].startswith("Source 3 (")
    assert sources[2].endswith("…\n</source>")  # cut inside its delimiters
    prompt = DEFAULT_TEMPLATE.messages("q", sources)
    assert sum(count_words(m["content"]) for m in prompt) <= budget


def test_template_round_trips_through_a_dict() -> None:
    assert PromptTemplate.from_dict(DEFAULT_TEMPLATE.to_dict()) == DEFAULT_TEMPLATE
