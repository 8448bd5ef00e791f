"""The generated answer's text made fit to show: a small model's repeated sentences dropped, its
Markdown kept (line breaks, lists, code blocks) and its code fences made whole.

Every front end renders the answer as Markdown (the browser chat, ``lorag ask``, the API's
clients), so the text keeps the model's line breaks: a list or a command in a code block is the
commonest answer to a how-to question about the documents.
"""

from __future__ import annotations

import re

FENCE = "```"
# A sentence ends at . ! ? or a line break; what follows up to the next sentence is its gap.
_SENTENCE_GAP = re.compile(r"((?<=[.!?\n])\s+)")
_WORD = re.compile(r"\w+")
# A sentence of fewer words is never dropped as a repeat: a code fence, a bullet, "Yes."
_MIN_REPEAT_WORDS = 2


def drop_repeated_sentences(text: str) -> str:
    """``text`` without sentences that repeat an earlier one (a small model's loops), each kept
    sentence followed by the whitespace, line breaks included, that followed it."""
    parts = _SENTENCE_GAP.split(text.strip())
    seen: set[str] = set()
    kept: list[str] = []
    for sentence, gap in zip(parts[::2], [*parts[1::2], ""], strict=True):
        key = sentence.strip().lower()
        if len(_WORD.findall(key)) >= _MIN_REPEAT_WORDS:
            if key in seen:
                continue
            seen.add(key)
        kept.append(sentence + gap)
    return "".join(kept).strip()


def whole_fences(text: str) -> str:
    """``text`` with each code fence on a line of its own, and an unclosed block closed.

    Small models open a block mid-sentence ("For example: ```bash") and go on after the closing
    fence on its line; Markdown then shows neither a code block nor the rest as text.
    """
    pieces = text.split(FENCE)
    if len(pieces) == 1:
        return text
    if len(pieces) % 2 == 0:
        pieces.append("\n")
    shown = pieces[0].rstrip(" \t")
    for number, piece in enumerate(pieces[1:], start=1):
        if shown and not shown.endswith("\n"):
            shown += "\n"
        if number % 2 == 0:  # a closing fence: what follows it starts a line of its own
            piece = piece.lstrip(" \t")
            if piece and not piece.startswith("\n"):
                piece = "\n" + piece
        shown += FENCE + piece.rstrip(" \t")
    return shown.rstrip()


def tidy(text: str) -> str:
    """The generated ``text`` as the answer shows it: repeats dropped, fences whole."""
    return whole_fences(drop_repeated_sentences(text))
