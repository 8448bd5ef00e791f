"""Training data: JSONL examples in four formats, tokenised with answer-only labels, and packed.

Each line of a dataset is one JSON object; its format is detected from its keys:

- ``rag`` (lorag's own): ``question``, ``sources`` (the numbered source strings as the engine
  puts them in the prompt, e.g. ``"Source [1]: ..."``), ``answer``, optional ``chunk_ids``.
  Rendered with ``DEFAULT_TEMPLATE.messages(question, sources)``, exactly as a question is at
  query time.
- ``chat``: ``messages`` (OpenAI style, ``role``/``content``) or ``conversations`` (ShareGPT,
  ``from``/``value`` with ``human``/``gpt``). The last turn must be the assistant's: it is the
  answer; earlier turns (assistant ones included) are the prompt.
- ``alpaca``: ``instruction``, optional ``input``, ``output``: one user turn.
- ``prompt_completion``: ``prompt``, ``completion``: one user turn.

A prompt is rendered with the tokenizer's chat template as ``HFGenerator.render`` does at query
time; the answer follows it, then EOS. Only the answer tokens (and EOS) carry labels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from assistant.core.errors import LoragError
from assistant.core.prompt import DEFAULT_TEMPLATE, PromptTemplate

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
Format = Literal["rag", "chat", "alpaca", "prompt_completion"]
Message = dict[str, str]

SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}
ROLES = frozenset({"system", "user", "assistant"})


class DatasetError(LoragError):
    """A dataset file cannot be used: names the file, the line (when one is at fault) and why."""

    def __init__(self, source: str, problem: str, line: int | None = None) -> None:
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


class _BadRecord(ValueError):
    """A problem with one record; :func:`load_examples` adds the file and line."""


@dataclass(frozen=True)
class Example:
    """One training example: the prompt as chat messages, and the answer the model should give."""

    messages: list[Message]
    answer: str
    format: Format
    chunk_ids: tuple[str, ...] = ()
    line: int | None = field(default=None, compare=False)
    question: str | None = field(default=None, compare=False)
    """The bare question of a ``rag`` example (its messages hold it among the sources)."""

    def normalised(self) -> str:
        """The example as canonical JSON: what it trains on (not where it came from)."""
        return json.dumps(
            {"messages": self.messages, "answer": self.answer},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )

    def digest(self) -> str:
        """sha256 of :meth:`normalised`."""
        return hashlib.sha256(self.normalised().encode()).hexdigest()


# --------------------------------------------------------------------------- formats


def _text(record: dict[str, Any], key: str, *, required: bool = True) -> str:
    if key not in record:
        if required:
            raise _BadRecord(f"missing field {key!r}")
        return ""
    value = record[key]
    if not isinstance(value, str):
        raise _BadRecord(f"field {key!r} must be a string, not {type(value).__name__}")
    return value


def _answer(record: dict[str, Any], key: str) -> str:
    answer = _text(record, key)
    if not answer.strip():
        raise _BadRecord(f"empty answer (field {key!r})")
    return answer.strip()


def _parse_rag(record: dict[str, Any], template: PromptTemplate) -> Example:
    question = _text(record, "question")
    if not question.strip():
        raise _BadRecord("empty question (field 'question')")
    sources = record.get("sources")
    if sources is None:
        raise _BadRecord("missing field 'sources'")
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise _BadRecord("field 'sources' must be a list of strings")
    chunk_ids = record.get("chunk_ids", [])
    if not isinstance(chunk_ids, list) or not all(isinstance(c, str) for c in chunk_ids):
        raise _BadRecord("field 'chunk_ids' must be a list of strings")
    return Example(
        messages=template.messages(question, sources),
        answer=_answer(record, "answer"),
        format="rag",
        chunk_ids=tuple(chunk_ids),
        question=question.strip(),
    )


def _parse_chat(record: dict[str, Any], template: PromptTemplate) -> Example:
    sharegpt = "messages" not in record
    key, role_key, content_key = (
        ("conversations", "from", "value") if sharegpt else ("messages", "role", "content")
    )
    turns = record[key]
    if not isinstance(turns, list) or not turns:
        raise _BadRecord(f"field {key!r} must be a non-empty list of turns")
    messages: list[Message] = []
    for n, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict) or role_key not in turn or content_key not in turn:
            raise _BadRecord(f"{key}[{n}] must be an object with {role_key!r} and {content_key!r}")
        role, content = turn[role_key], turn[content_key]
        role = SHAREGPT_ROLES.get(role, role) if sharegpt else role
        if role not in ROLES:
            raise _BadRecord(f"{key}[{n}] has unknown role {turn[role_key]!r}")
        if not isinstance(content, str):
            raise _BadRecord(f"{key}[{n}].{content_key} must be a string")
        messages.append({"role": role, "content": content})
    last = messages.pop()
    if last["role"] != "assistant":
        raise _BadRecord(f"the last turn of {key!r} must be the assistant's answer")
    if not any(m["role"] == "user" for m in messages):
        raise _BadRecord(f"{key!r} has no user turn before the answer")
    if not last["content"].strip():
        raise _BadRecord(f"empty answer (the last turn of {key!r})")
    return Example(messages=messages, answer=last["content"].strip(), format="chat")


def _parse_alpaca(record: dict[str, Any], template: PromptTemplate) -> Example:
    instruction = _text(record, "instruction")
    extra = _text(record, "input", required=False)
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    messages = [{"role": "user", "content": user}]
    return Example(messages=messages, answer=_answer(record, "output"), format="alpaca")


def _parse_prompt_completion(record: dict[str, Any], template: PromptTemplate) -> Example:
    messages = [{"role": "user", "content": _text(record, "prompt")}]
    return Example(
        messages=messages, answer=_answer(record, "completion"), format="prompt_completion"
    )


Parser = Callable[[dict[str, Any], PromptTemplate], Example]
# The key that identifies each format, in the order they are tried.
FORMATS: tuple[tuple[str, Parser], ...] = (
    ("messages", _parse_chat),
    ("conversations", _parse_chat),
    ("question", _parse_rag),
    ("instruction", _parse_alpaca),
    ("prompt", _parse_prompt_completion),
)


def parse_record(record: object, template: PromptTemplate = DEFAULT_TEMPLATE) -> Example:
    """The :class:`Example` in one decoded JSON record; ``ValueError`` says what is wrong."""
    if not isinstance(record, dict):
        raise _BadRecord(f"expected a JSON object, got {type(record).__name__}")
    for key, parser in FORMATS:
        if key in record:
            return parser(record, template)
    keys = ", ".join(sorted(record)) or "none"
    raise _BadRecord(
        f"unknown format (keys: {keys}); expected one of: question/sources/answer (rag), "
        "messages or conversations (chat), instruction/output (alpaca), prompt/completion"
    )


def load_examples(path: Path, template: PromptTemplate = DEFAULT_TEMPLATE) -> list[Example]:
    """Every example in the JSONL file ``path`` (blank lines skipped).

    Raises :class:`DatasetError` naming the file and line for invalid JSON, an unknown format, a
    missing field or an empty answer, and for a file with no examples at all.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DatasetError(source, "no such file") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(source, f"not UTF-8 text ({exc.reason})") from exc
    examples: list[Example] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(source, f"invalid JSON: {exc.msg}", number) from exc
        try:
            example = parse_record(record, template)
        except _BadRecord as exc:
            raise DatasetError(source, str(exc), number) from exc
        examples.append(replace(example, line=number))
    if not examples:
        raise DatasetError(source, "no examples: the dataset is empty")
    return examples


def fingerprint(examples: Sequence[Example]) -> str:
    """sha256 of the normalised examples, independent of their order (the run shuffles anyway).

    Two datasets with the same examples (duplicates counted) have the same fingerprint, so the
    train and eval splits together fingerprint the whole file.
    """
    digests = sorted(example.digest() for example in examples)
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def split_examples(
    examples: Sequence[Example], fraction: float, seed: int, minimum: int = 2
) -> tuple[list[Example], list[Example]]:
    """``(train, held_out)``: a seeded random ``fraction`` held out (at least one, if any).

    Nothing is held out when ``fraction`` is 0 or there are fewer than ``minimum`` examples
    (``TrainConfig.eval_min_examples``: a handful of facts is there to be learnt, every one).
    """
    count = 0
    if fraction > 0 and len(examples) >= max(minimum, 2):
        count = min(max(round(len(examples) * fraction), 1), len(examples) - 1)
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held = set(order[:count])
    train = [e for i, e in enumerate(examples) if i not in held]
    return train, [e for i, e in enumerate(examples) if i in held]


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class TokenizedExample:
    """Token ids and labels (``-100`` on every prompt token) of one example."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    @property
    def answer_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def render_prompt(tokenizer: PreTrainedTokenizerBase, messages: list[Message]) -> str:
    """The prompt for ``messages``, exactly as ``HFGenerator.render`` makes it at query time."""
    from assistant.core.models import plain_prompt

    if not tokenizer.chat_template:
        return plain_prompt(messages)
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def tokenize_example(
    example: Example, tokenizer: PreTrainedTokenizerBase, max_len: int
) -> TokenizedExample:
    """The rendered prompt's tokens (label ``-100``), then the answer's and EOS (labelled).

    Prompt and answer are tokenised separately, as they are at query time (the prompt is encoded
    without special tokens; the model then generates the answer). An example longer than
    ``max_len`` keeps its answer (cut to ``max_len - 1`` tokens if it alone is longer) and the end
    of its prompt (where the question is).
    """
    prompt = render_prompt(tokenizer, example.messages)
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    answer_ids = list(tokenizer(example.answer, add_special_tokens=False)["input_ids"])
    answer_ids.append(int(tokenizer.eos_token_id))
    truncated = len(prompt_ids) + len(answer_ids) > max_len
    if truncated:
        answer_ids = answer_ids[: max_len - 1]
        prompt_ids = prompt_ids[-(max_len - len(answer_ids)) :]
    return TokenizedExample(
        input_ids=prompt_ids + answer_ids,
        labels=[IGNORE_INDEX] * len(prompt_ids) + answer_ids,
        truncated=truncated,
    )


@dataclass(frozen=True)
class PackedRow:
    """Several examples back to back; ``position_ids`` restart at 0 where each one begins.

    transformers' causal mask (SDPA, eager, flex) turns restarting positions into a
    block-diagonal mask when no ``attention_mask`` is given, so no token attends to another
    example; each example's first label is ``-100``, so no loss crosses a boundary either.
    """

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    lengths: list[int]


def pack(examples: Sequence[TokenizedExample], max_len: int) -> list[PackedRow]:
    """Rows of at most ``max_len`` tokens, first-fit by decreasing length (deterministic).

    Every example must already fit in ``max_len`` (:func:`tokenize_example` ensures it).
    """
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i].input_ids), i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        size = len(examples[i].input_ids)
        if size > max_len:
            raise ValueError(f"example of {size} tokens does not fit in rows of {max_len}")
        slot = next((b for b, free in enumerate(room) if free >= size), None)
        if slot is None:
            bins.append([i])
            room.append(max_len - size)
        else:
            bins[slot].append(i)
            room[slot] -= size
    rows = []
    for members in bins:
        parts = [examples[i] for i in members]
        rows.append(
            PackedRow(
                input_ids=[t for p in parts for t in p.input_ids],
                labels=[t for p in parts for t in p.labels],
                position_ids=[n for p in parts for n in range(len(p.input_ids))],
                lengths=[len(p.input_ids) for p in parts],
            )
        )
    return rows
