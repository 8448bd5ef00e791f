"""``lorag ask`` and ``lorag chat``: answers streamed to the terminal, then their sources.

In ``lorag chat``, ``/up`` or ``/down`` (optionally followed by the answer that should have been
given) rates the last answer; the rating goes to the feedback log (:mod:`assistant.feedback`),
which ``lorag finetune --from-feedback`` trains on.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from assistant.cli.common import (
    AdapterOption,
    CollectionOption,
    RerankerOption,
    collection_name,
    err,
    out,
    runtime,
)
from assistant.core.errors import CollectionNotFoundError
from assistant.core.types import Answer, Citation
from assistant.runtime import CLI_USER, Runtime

if TYPE_CHECKING:
    from assistant.feedback import Rating

WITHDRAWN = {
    "model_declined": "the model found no answer in the sources",
    "unsupported": "the draft above is not supported by the sources",
}
REDRAFTED = "the draft above was not in the sources; the second draft"
RATINGS: dict[str, Rating] = {"/up": "up", "/down": "down"}
RATE_HINT = "rate it with /up or /down (after /down, the right answer if you know it)"


def print_answer(answer: Answer) -> None:
    """After a streamed answer: a withdrawn draft's reason, or the answer that replaced it (the
    engine's second draft, timed as ``redraft_s``), and the citations; after an abstention, the
    closest passages found, so the reader can look for themselves. A follow-up's rewrite is
    shown first."""
    if answer.query:
        out.print(f"asked as: {answer.query}", style="dim", highlight=False, markup=False)
    if answer.abstain_reason in WITHDRAWN:
        out.print(f"[yellow]{WITHDRAWN[answer.abstain_reason]}:[/yellow] {answer.text}")
    elif not answer.abstained and "redraft_s" in answer.timings:
        out.print(f"[yellow]{REDRAFTED}:[/yellow] {answer.text}", highlight=False)
    if answer.abstained and answer.sources:
        out.print("[dim]The closest passages found:[/dim]")
    for citation in answer.sources if answer.abstained else answer.citations:
        out.print(f"  [{citation.n}] {place_of(citation)} — {citation.source}", highlight=False)
        if answer.abstained:
            out.print(f"      {citation.snippet}", highlight=False, markup=False)


def place_of(citation: Citation) -> str:
    """The title, page and heading of a citation; a heading path that starts with the title
    ("Guide > Deleting") stands for both."""
    heading = citation.heading or ""
    parts = [] if heading.startswith(citation.title) else [citation.title]
    parts += [f"page {citation.page}"] if citation.page is not None else []
    parts += [heading] if heading else []
    return ", ".join(parts)


def check_question_first(question: str) -> None:
    """An empty or over-long question fails here, before any model loads."""
    from assistant.engine import check_question

    check_question(question)


def checked_target(
    rt: Runtime, question: str | None, collection: str | None, adapter: str | None
) -> str:
    """The collection to answer from, once the question, the collection, the adapter and the
    reranker are known to be right: each wrong one fails here, before any model loads."""
    if question is not None:
        check_question_first(question)
    name = collection_name(rt, collection)
    if not rt.store.has_collection(name):
        raise CollectionNotFoundError(name, rt.store.list_collections())
    rt.adapter_for(adapter, name)
    rt.check_reranker()
    return name


def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    collection: CollectionOption = None,
    adapter: AdapterOption = None,
    top_k: Annotated[int | None, typer.Option(min=1, help="Sources given to the model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    no_retrieval: Annotated[
        bool,
        typer.Option(
            "--no-retrieval",
            help="Ask the model (or the adapter) alone, without documents: what it learnt.",
        ),
    ] = False,
    reranker: RerankerOption = None,
) -> None:
    """Answer one question from a collection, with citations."""
    from assistant.engine import Done, Token

    with runtime(reranker) as rt:
        if no_retrieval:  # the collection only picks its bound adapter; it need not exist
            name = collection_name(rt, collection)
            check_question_first(question)
            rt.adapter_for(adapter, name)
        else:
            name = checked_target(rt, question, collection, adapter)
        adapter_key = rt.use_adapter(adapter, name)
        events = (
            rt.engine.stream_closed_book(question, adapter_key)
            if no_retrieval
            else rt.engine.stream(question, name, adapter_key, top_k)
        )
        for event in events:
            if isinstance(event, Token) and not as_json:
                out.print(event.text, end="", highlight=False, markup=False)
            elif isinstance(event, Done):
                answer = event.answer
    if as_json:
        print(json.dumps(asdict(answer), indent=2, ensure_ascii=False))
    else:
        out.print()
        print_answer(answer)


def chat(collection: CollectionOption = None, adapter: AdapterOption = None) -> None:
    """Ask questions one after another, follow-ups included (empty line or Ctrl-D to leave)."""
    from assistant.conversation import Conversation, Turn
    from assistant.engine import Done, Token

    with runtime() as rt:
        name = checked_target(rt, None, collection, adapter)
        choice = rt.adapter_for(adapter, name)
        adapter_key = rt.use_adapter(adapter, name)
        by = f"adapter {choice.ref}" if choice else "the base model"
        out.print(
            f"Ask about the documents in '{name}', answered by {by}. Empty line or Ctrl-D to "
            "leave.",
            highlight=False,
            markup=False,
        )
        turns: list[Turn] = []
        last: tuple[str, Answer] | None = None
        while True:
            try:
                question = input("\n> ").strip()
            except EOFError:
                break
            if not question:
                break
            if question.startswith("/"):
                _rate(rt, last, question, name, choice.ref if choice else None)
                continue
            conversation = Conversation(turns=tuple(turns))
            for event in rt.engine.stream(question, name, adapter_key, None, conversation):
                if isinstance(event, Token):
                    out.print(event.text, end="", highlight=False, markup=False)
                elif isinstance(event, Done):
                    out.print()
                    print_answer(event.answer)
                    answer = event.answer
            turns.append(Turn(question, "" if answer.abstained else answer.text))
            last = (f"cli-{uuid.uuid4().hex[:16]}", answer)
            out.print(f"[dim]{RATE_HINT}[/dim]")


def _rate(
    rt: Runtime, last: tuple[str, Answer] | None, command: str, collection: str, adapter: str | None
) -> None:
    """Keep the rating ``command`` (``/up`` or ``/down``, then an optional correction) gives
    the last answer; a wrong command or nothing to rate is said, and the chat goes on."""
    from assistant.feedback import Feedback

    word, _, correction = command.partition(" ")
    rating = RATINGS.get(word)
    if rating is None:
        err.print(f"unknown command {word!r}: {RATE_HINT}", highlight=False, markup=False)
        return
    if last is None:
        err.print("nothing to rate yet: ask a question first", highlight=False)
        return
    answer_id, answer = last
    rt.feedback.append(
        Feedback.of_answer(
            answer,
            answer_id=answer_id,
            key_id=CLI_USER,
            rating=rating,
            correction=correction,
            collection=collection,
            adapter=adapter,
        )
    )
    corrected = " with your correction" if correction.strip() else ""
    out.print(
        f"[dim]rated {rating}{corrected}: `lorag finetune --from-feedback {collection}` "
        "trains on the feedback[/dim]",
        highlight=False,
    )
