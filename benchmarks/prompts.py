"""Prompt variants through the whole engine: the same retrieved sources, several prompt templates.

Small models answer in a short span with ``[n]`` markers only if the prompt makes them; this
measures how much. For the first ``--limit`` questions of a question file (quoref-dev's by
default, or ``examples/guide-questions.jsonl``) it answers every question with each template
through ``lorag eval``'s path (hybrid retrieval, the batch path, greedy) and scores token F1,
exact match, whether the answer holds the expected answer, the share of answers that cite the
gold document, and the abstention rate. The baseline is the engine's default template, from the
same run. Results go to ``--out`` (``benchmarks/results/prompts.json``).

    python benchmarks/prompts.py --collection quoref --limit 60 [--model ID] [--backend llamacpp]
    python benchmarks/prompts.py --questions examples/guide-questions.jsonl --collection guide

The collection must hold the file's documents (``lorag ingest ../shared/data/quoref-dev/docs
-c quoref``, ``lorag ingest examples/docs -c guide``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from assistant.batch.evaluation import Configuration, evaluate
from assistant.batch.formats import read_questions
from assistant.core.prompt import ABSTAIN_ANSWER, DEFAULT_TEMPLATE, PromptTemplate
from assistant.core.settings import load_settings
from assistant.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]
QUOREF = REPO.parent / "shared" / "data" / "quoref-dev"
RESULTS = REPO / "benchmarks" / "results" / "prompts.json"
SHOWN = ("f1", "exact_match", "contains", "source_cited", "abstain_rate")

V1 = replace(
    DEFAULT_TEMPLATE,
    name="lorag-rag-v1",
    system=(
        "You are a helpful assistant. Use the sources to answer the question in a few words, "
        "and cite the source you used by its number, like [1]. "
        f'If the sources do not contain the answer, reply exactly: "{ABSTAIN_ANSWER}"'
    ),
    source="Source [{n}]: {text}",
    user="{sources}\n\nQuestion: {question}\nShort answer:",
)
VARIANTS: dict[str, PromptTemplate] = {
    "default": DEFAULT_TEMPLATE,
    # the template before v2: a few words with [n] markers, the abstain phrase spelled out
    "v1-markers": V1,
    # v1 with two worked examples of "answer [n]"
    "v1-examples": replace(
        V1,
        name="v1-examples",
        system=(
            "You answer questions from numbered sources. Write the answer itself (the name, "
            "number, command or setting, copied exactly from the source) and then the number of "
            "the source in brackets. Examples:\n"
            "Question: Who wrote the audit report? Answer: Maria Lopez [2]\n"
            "Question: How do I restart the server? Answer: Run `server restart --now` [1]\n"
            f'If none of the sources is about the question, reply exactly: "{ABSTAIN_ANSWER}"'
        ),
        user="{sources}\n\nQuestion: {question}\nAnswer:",
    ),
    # v2 without the section names
    "v2-no-sections": replace(
        DEFAULT_TEMPLATE, name="v2-no-sections", source="Source {n}:\n{text}"
    ),
    # v2 with v1's abstain phrase spelled out
    "v2-abstain-phrase": replace(
        DEFAULT_TEMPLATE,
        name="v2-abstain-phrase",
        system=DEFAULT_TEMPLATE.system
        + f' If the sources do not contain the answer, reply exactly: "{ABSTAIN_ANSWER}"',
    ),
    # v2 before "whole command": the model wrote "documents list" for "lorag documents list"
    "v2-command": replace(
        DEFAULT_TEMPLATE,
        name="v2-command",
        system=DEFAULT_TEMPLATE.system.replace("whole command", "command"),
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=QUOREF / "questions.jsonl")
    parser.add_argument("--collection", default="quoref")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--model", default=None, help="generator.model (default: the setting)")
    parser.add_argument("--backend", default=None, help="generator.backend (default: the setting)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    settings = load_settings()
    overrides = {"model": args.model, "backend": args.backend}
    settings = settings.model_copy(
        update={
            "generator": settings.generator.model_copy(
                update={k: v for k, v in overrides.items() if v is not None}
            )
        }
    )
    questions = read_questions(args.questions)
    runtime = Runtime(settings)
    results: dict[str, dict[str, float | None]] = {}
    try:
        for name in args.variants:
            runtime.engine.template = VARIANTS[name]
            report = evaluate(
                runtime, questions, [Configuration()], args.collection, limit=args.limit
            )
            result = report.results[0]
            results[name] = {m: _round(result.metrics[m]) for m in SHOWN}
            results[name]["questions_per_min"] = round(result.questions_per_min, 1)
            print(name, results[name], flush=True)
            for row in result.rows:
                print(f"  {row.id}: {row.answer[:100]!r}", flush=True)
    finally:
        runtime.close()

    baseline = results.get("default", {}).get("f1") or None
    report_json = {
        "model": settings.generator.model,
        "backend": settings.generator.backend,
        "questions": f"{args.questions.name} (first {args.limit})",
        "variants": results,
        "f1_ratio_to_default": {
            name: round(r["f1"] / baseline, 2) if baseline and r["f1"] is not None else None
            for name, r in results.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report_json, indent=2) + "\n")
    print(json.dumps(report_json["f1_ratio_to_default"]))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


if __name__ == "__main__":
    main()
