"""The answer's text as shown: repeats dropped, Markdown (line breaks, code blocks) kept whole."""

from __future__ import annotations

from assistant.answer_text import drop_repeated_sentences, tidy, whole_fences


def test_a_looping_sentence_is_kept_once() -> None:
    looped = "The limit is 200 tokens. The limit is 200 tokens. The limit is 200 tokens."
    assert drop_repeated_sentences(looped) == "The limit is 200 tokens."


def test_paragraphs_and_lists_keep_their_line_breaks() -> None:
    text = "Two ways:\n\n- the browser chat\n- the command line\n\nBoth cite their sources."
    assert drop_repeated_sentences(text) == text


def test_a_repeat_goes_with_its_gap_and_the_rest_keeps_its_own() -> None:
    text = "First step.\n\nFirst step.\n\nSecond step."
    assert drop_repeated_sentences(text) == "First step.\n\nSecond step."


def test_short_lines_such_as_fences_are_never_dropped_as_repeats() -> None:
    text = "Ingest:\n\n```\nlorag ingest docs\n```\n\nThen ask:\n\n```\nlorag ask x\n```"
    assert drop_repeated_sentences(text) == text


def test_a_fence_opened_mid_sentence_moves_to_its_own_line() -> None:
    drafted = 'For example: ```bash\nlorag ask "Why?" --collection team\n``` It prints the answer.'
    assert whole_fences(drafted) == (
        'For example:\n```bash\nlorag ask "Why?" --collection team\n```\nIt prints the answer.'
    )


def test_an_unclosed_code_block_is_closed() -> None:
    unclosed = "Run:\n```bash\nlorag ingest docs"
    assert whole_fences(unclosed) == unclosed + "\n```"


def test_a_closing_fence_at_the_end_of_a_code_line_gets_its_own_line() -> None:
    assert whole_fences("```\nlorag serve```") == "```\nlorag serve\n```"


def test_well_formed_markdown_is_left_as_it_is() -> None:
    text = "Use `lorag ask`:\n\n```bash\nlorag ask x\n```\n\nIt cites [1]."
    assert whole_fences(text) == text
    assert tidy(text) == text


def test_text_without_fences_is_unchanged() -> None:
    assert whole_fences("The hotel limit is 120 euros [1].") == "The hotel limit is 120 euros [1]."
