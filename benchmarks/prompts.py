"""Prompt variants through the whole engine: the same retrieved sources, several prompt templates.

Small models answer in a short span with ``[n]`` markers only if the prompt makes them; this
measures how much. For the first ``--limit`` quoref-dev questions it retrieves once (hybrid, the
engine's own settings), then answers every question with each template through
``QueryEngine.answer_batch`` (the batch path, greedy) and scores token F1, exact match, the share
of answers that cite the gold document, and the abstention rate. The baseline is the engine's
default template, from the same run. Results go to ``benchmarks/results/prompts.json``.

    python benchmarks/prompts.py --collection quoref --limit 60 [--model HF_ID_OR_FOLDER]

The collection must hold quoref-dev's documents (``lorag ingest ../shared/data/quoref-dev/docs
-c quoref``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from assistant.batch.metrics import exact_match, source_matches, token_f1
from assistant.core.prompt import ABSTAIN_ANSWER, DEFAULT_TEMPLATE, PromptTemplate
from assistant.core.settings import load_settings
from assistant.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]
QUOREF = REPO.parent / "shared" / "data" / "quoref-dev"
RESULTS = REPO / "benchmarks" / "results" / "prompts.json"

VARIANTS: dict[str, PromptTemplate] = {
    "default": DEFAULT_TEMPLATE,
    "span-first": replace(
        DEFAULT_TEMPLATE,
        name="span-first",
        system=(
            "Answer the question with the shortest exact phrase copied from the sources (a "
            "name, a number, a few words), then the number of the source it comes from, like "
            "[2]. Do not write a sentence. "
            f'If no source holds the answer, reply exactly: "{ABSTAIN_ANSWER}"'
        ),
        user="{sources}\n\nQuestion: {question}\nAnswer (a short phrase from the sources, then "
        "[n]):",
    ),
    "question-last": replace(
        DEFAULT_TEMPLATE,
        name="question-last",
        system=(
            "You answer questions from numbered sources. Reply with a few words taken from the "
            "sources and cite the source number in brackets, like: Marie Curie [1]. "
            f'If the sources do not contain the answer, reply exactly: "{ABSTAIN_ANSWER}"'
        ),
        user="Sources:\n{sources}\n\nQuestion: {question}",
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="quoref")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--model", default=None, help="generator.model (default: the setting)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()

    settings = load_settings()
    if args.model:
        settings = settings.model_copy(
            update={"generator": settings.generator.model_copy(update={"model": args.model})}
        )
    with (QUOREF / "questions.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for _, line in zip(range(args.limit), lines, strict=False)]
    questions = [row["question"] for row in rows]

    runtime = Runtime(settings)
    try:
        engine = runtime.engine
        hits = engine.retrieve_batch(questions, args.collection)
        results: dict[str, dict[str, float]] = {}
        for name in args.variants:
            engine.template = VARIANTS[name]
            started = time.perf_counter()
            answers = engine.answer_batch(questions, hits)
            seconds = time.perf_counter() - started
            scored = [
                (
                    token_f1(answer.text, row["answers"]) if not answer.abstained else 0.0,
                    exact_match(answer.text, row["answers"]) if not answer.abstained else 0.0,
                    any(source_matches(c.source, row["source"]) for c in answer.citations),
                    answer.abstained,
                )
                for answer, row in zip(answers, rows, strict=True)
            ]
            n = len(scored)
            results[name] = {
                "f1": round(sum(s[0] for s in scored) / n, 3),
                "em": round(sum(s[1] for s in scored) / n, 3),
                "gold_cited": round(sum(s[2] for s in scored) / n, 3),
                "abstained": round(sum(s[3] for s in scored) / n, 3),
                "questions_per_min": round(60 * n / seconds, 1),
            }
            print(name, results[name], flush=True)
    finally:
        runtime.close()

    baseline = results.get("default", {}).get("f1") or None
    report = {
        "model": settings.generator.model,
        "questions": len(questions),
        "variants": results,
        "f1_ratio_to_default": {
            name: round(r["f1"] / baseline, 2) if baseline else None for name, r in results.items()
        },
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["f1_ratio_to_default"]))


if __name__ == "__main__":
    main()
