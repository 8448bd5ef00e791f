"""Follow-up questions: retrieval and answers with the conversation, against without it.

Each scripted conversation of ``examples/guide-conversations.jsonl`` (3 turns over the bundled
guide; the later turns lean on the earlier ones) is asked turn by turn through
``QueryEngine.stream``, the conversation made of lorag's own earlier answers, in four ways:

- ``alone``: each question by itself (lorag before conversations: the baseline);
- ``auto``: the default: a follow-up that does not stand alone is rewritten first;
- ``always``: every follow-up is rewritten, even one that stands alone;
- ``auto-no-history``: as ``auto``, but the prompt shows no earlier turns (``history_turns`` 0).

Per way, over the follow-ups (turns 2 and 3): the share whose citations name an expected file,
the share whose answer holds the expected answer (case and spaces ignored), the share abstained
on, and median times (rewrite, first token). Writes benchmarks/results/conversations.json.

    python benchmarks/conversations.py

Needs the collection ``guide`` (``lorag ingest examples/docs -c guide``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
from pathlib import Path
from typing import Any

import assistant.engine
from assistant.conversation import Conversation, Turn, standalone_question, stands_alone
from assistant.core.settings import load_settings
from assistant.core.types import Answer
from assistant.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]
CONVERSATIONS = REPO / "examples" / "guide-conversations.jsonl"
RESULTS = REPO / "benchmarks" / "results" / "conversations.json"
WAYS = ("alone", "auto", "always", "auto-no-history")


def normalised(text: str) -> str:
    return " ".join(text.lower().split())


def asked(runtime: Runtime, way: str, conversation: list[dict[str, Any]]) -> list[Answer]:
    """The answers to one conversation's turns, asked ``way``."""
    engine = runtime.engine
    turns: list[Turn] = []
    answers = []
    for turn in conversation:
        context = None if way == "alone" else Conversation(turns=tuple(turns))
        answer = engine.ask(turn["question"], "guide", conversation=context)
        answers.append(answer)
        turns.append(Turn(turn["question"], answer.text))
    return answers


def scored(runtime: Runtime, way: str, conversations: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one way over every conversation's follow-ups."""
    rows = []
    for conversation in conversations:
        answers = asked(runtime, way, conversation["turns"])
        for turn, answer in zip(conversation["turns"][1:], answers[1:], strict=True):
            cited = {Path(c.source).name for c in answer.citations}
            rows.append(
                {
                    "question": turn["question"],
                    "query": answer.query,
                    "answer": answer.text,
                    "cites_expected": bool(cited & set(turn["source"])),
                    "holds_answer": normalised(turn["answer"]) in normalised(answer.text),
                    "abstained": answer.abstained,
                    "condense_s": answer.timings.get("condense_s"),
                    "first_token_s": answer.timings.get("first_token_s"),
                }
            )

    def share(key: str) -> float:
        return round(sum(bool(row[key]) for row in rows) / len(rows), 3)

    def median(key: str) -> float | None:
        values = [row[key] for row in rows if row[key] is not None]
        return round(statistics.median(values), 2) if values else None

    return {
        "follow_ups": len(rows),
        "cites_expected": share("cites_expected"),
        "holds_answer": share("holds_answer"),
        "abstained": share("abstained"),
        "rewritten": sum(row["query"] is not None for row in rows),
        "condense_s": median("condense_s"),
        "first_token_s": median("first_token_s"),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with CONVERSATIONS.open(encoding="utf-8") as lines:
        conversations = [json.loads(line) for line in lines if line.strip()]

    settings = load_settings()
    runtime = Runtime(settings)
    results: dict[str, Any] = {}
    history_turns = settings.generation.history_turns
    try:
        runtime.engine.ask(conversations[0]["turns"][0]["question"], "guide")  # load and warm
        for way in WAYS:
            generation = settings.generation.model_copy(
                update={"history_turns": 0 if way == "auto-no-history" else history_turns}
            )
            runtime.engine.generation = generation
            always = way == "always"
            assistant.engine.standalone_question = functools.partial(  # type: ignore[assignment]
                standalone_question, always=always
            )
            assistant.engine.stands_alone = (  # type: ignore[assignment]
                (lambda _question: False) if always else stands_alone
            )
            results[way] = scored(runtime, way, conversations)
            summary = {k: v for k, v in results[way].items() if k != "rows"}
            print(way, summary, flush=True)
    finally:
        runtime.close()
    baseline = results["alone"]
    ratios = {
        way: {
            "cites_expected": round(r["cites_expected"] / max(baseline["cites_expected"], 1e-9), 2),
            "holds_answer": round(r["holds_answer"] / max(baseline["holds_answer"], 1e-9), 2),
        }
        for way, r in results.items()
    }
    report = {
        "model": settings.generator.model,
        "history_turns": history_turns,
        "cores": len(os.sched_getaffinity(0)),
        "load_average_1m": os.getloadavg()[0],
        "results": results,
        "ratio_to_alone": ratios,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
