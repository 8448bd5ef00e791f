"""Follow-up questions: the earlier turns of a conversation, and the standalone question.

A follow-up ("which port does it listen on?") cannot be retrieved for alone. When a question
does not stand alone (:func:`stands_alone`: a pronoun that points back, a leading "and", a
fragment), the generator rewrites it with a short condensing prompt (:func:`condense_messages`)
into a question retrieval can use; a rewrite that still leans on the conversation is searched
for with the previous question in front of it (:func:`search_text`). The answer's prompt then
carries a bounded window of the earlier turns (:func:`history_messages`) before the sources and
the rewritten question.

Measured on the guide's scripted conversations (benchmarks/conversations.py): see the README.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.core.protocols import Generator

CONDENSE_SYSTEM = (
    "Rewrite the user's last question so that it can be understood without the conversation: "
    "replace words such as it, they, this, there and one by what they refer to. Reply with the "
    "rewritten question only."
)
CONDENSE_TOKENS = 48
_REFERRING = re.compile(
    r"\b(?:it|its|it's|itself|they|them|their|theirs|themselves|this|these|those|he|him|his|she"
    r"|her|hers|such|same|former|latter|ones)\b"
    r"|(?<!is )(?<!are )(?<!was )(?<!were )\bthere\b"  # "is there a way" stands alone
    # "that" after a verb or a preposition points back ("what does that do", "changes that
    # overlap"); after a noun it starts a clause ("the setting that sets the port")
    r"|(?:^|\b(?:is|was|are|were|does|do|did|about|of|in|on|at|for|with|from|to|by|changes?"
    r"|uses?|means?|sets?|shows?|what|how|why|where|when)\s+)that\b"
    r"|\b(?:each|which|default|smaller|larger|bigger|faster|slower|other|another|first|second"
    r"|last|new|old|the)\s+one\b"  # "the smaller one", "for each one"
)
_STOPWORD_TEXT = (
    "the and for are was were does did how what which who whom whose why where when can could "
    "should would will shall may might must has have had its it's this that these those there "
    "they them their with from into about default"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_CONTINUING = re.compile(r"^(?:and|also|but|so|then|what about|how about|and what about)\b")
_WORD = re.compile(r"[a-z']+")
_LABEL = re.compile(r"^(?:rewritten question|question)\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Turn:
    """An earlier exchange: what the user asked and what the assistant answered."""

    question: str
    answer: str


@dataclass(frozen=True)
class Conversation:
    """What came before the question: earlier turns, oldest first, and the user's own
    instructions (a chat's system message). Instructions shape the answer's wording; they never
    switch off retrieval, the support check or citations, which the engine applies itself."""

    turns: tuple[Turn, ...] = ()
    instructions: str = ""


def stands_alone(question: str) -> bool:
    """Whether ``question`` can be retrieved for without the conversation before it."""
    text = question.strip().lower()
    words = _WORD.findall(text)
    if len(words) < 3 or _CONTINUING.match(text):
        return False
    return not _REFERRING.search(text)


def condense_messages(turns: Sequence[Turn], question: str) -> list[dict[str, str]]:
    """The prompt that asks the generator for ``question`` rewritten to stand alone."""
    lines = "\n".join(f"User: {turn.question}\nAssistant: {turn.answer}" for turn in turns)
    user = f"Conversation:\n{lines}\n\nLast question: {question}\nRewritten question:"
    return [{"role": "system", "content": CONDENSE_SYSTEM}, {"role": "user", "content": user}]


def standalone_question(
    generator: Generator,
    turns: Sequence[Turn],
    question: str,
    window: int = 2,
    always: bool = False,
) -> str:
    """``question`` as it reads without the conversation: itself when there are no earlier
    turns or it stands alone (unless ``always``), else the base model's greedy rewrite from the
    last ``window`` turns. A rewrite that is empty, runs on, or drops the question's own words
    (a small model sometimes answers, or rewrites the previous question) is not used: the
    question stays as asked."""
    if not turns or (stands_alone(question) and not always):
        return question
    recent = list(turns)[-max(window, 1) :]
    draft = "".join(
        generator.stream(condense_messages(recent, question), max_new_tokens=CONDENSE_TOKENS)
    ).strip()
    rewrite = _LABEL.sub("", draft.splitlines()[0] if draft else "").strip(" \"'")
    if len(rewrite) > 3 * (len(question) + len(recent[-1].question)):
        return question
    return rewrite if keeps_words(question, rewrite) else question


def keeps_words(question: str, rewrite: str, share: float = 0.5) -> bool:
    """Whether ``rewrite`` keeps at least ``share`` of ``question``'s content words (compared
    by their first five letters, so "changes" matches "change")."""
    wanted = {word[:5] for word in _content_words(question)}
    kept = {word[:5] for word in _content_words(rewrite)}
    return bool(kept) and len(wanted & kept) >= share * len(wanted)


def search_text(turns: Sequence[Turn], question: str, window: int = 2) -> str:
    """What to retrieve for ``question`` (a rewrite, or the question as asked): itself, or,
    when it still points back, the last ``window`` questions before it and it, so retrieval
    sees what the follow-up is about."""
    if not turns or stands_alone(question):
        return question
    earlier = [turn.question for turn in list(turns)[-max(window, 1) :]]
    return " ".join([*earlier, question])


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOPWORDS]


def history_messages(
    turns: Sequence[Turn], count_tokens: Callable[[str], int], budget_tokens: int, most: int
) -> list[dict[str, str]]:
    """The last ``most`` turns as chat messages, oldest first, as many of them as fit in
    ``budget_tokens`` (newest kept first; a turn is kept whole or not at all)."""
    kept: list[dict[str, str]] = []
    used = 0
    for turn in reversed(list(turns)[-most:] if most > 0 else []):
        cost = count_tokens(turn.question) + count_tokens(turn.answer) + 8
        if used + cost > budget_tokens:
            break
        kept[:0] = [
            {"role": "user", "content": turn.question},
            {"role": "assistant", "content": turn.answer},
        ]
        used += cost
    return kept


def with_conversation(
    messages: list[dict[str, str]], history: list[dict[str, str]], instructions: str
) -> list[dict[str, str]]:
    """A prompt's ``[system, user]`` messages with the user's instructions added to the system
    message and the earlier turns put between the two."""
    system, *rest = messages
    if instructions.strip():
        content = f"{system['content']}\n\nThe user's instructions: {instructions.strip()}"
        system = {"role": "system", "content": content}
    return [system, *history, *rest]
