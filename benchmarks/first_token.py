"""Time to first token and answer time of the whole engine, per number of sources in the prompt.

For the first ``--limit`` questions of quoref-dev and of the guide (``examples/guide-questions.
jsonl``) it streams each answer through ``QueryEngine.stream`` — what ``POST /v1/ask`` with
``stream`` and the chat UI call — with the default settings at ``top_k`` 3 (the default), 4 and
2, and records per question the prompt's token count, the time to the first answer piece
(retrieval included) and the whole answer's time; medians are reported. The baseline, from the
same run, is the same questions at top 4 on the ``transformers`` back end (the engine before the
llama.cpp back end and top 3). Each runtime first answers one guide question, so model loading
and the first decode are not timed (measured: a second pass over the same ten quoref questions
gives the same median, 2.55 s against 2.54 s, so nothing else warms up). The report names the
CPU and the load: figures move with them. Questions the engine abstains on before generating
(off-topic retrieval) are left out of the timing.

    python benchmarks/first_token.py [--limit 10] [--top-k 3 4 2]

Needs the collections ``quoref`` (``lorag ingest ../shared/data/quoref-dev/docs -c quoref``) and
``guide`` (``lorag ingest examples/docs -c guide``). Writes benchmarks/results/first_token.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from assistant.core.settings import load_settings
from assistant.engine import Done, Token
from assistant.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = {
    "quoref": REPO.parent / "shared" / "data" / "quoref-dev" / "questions.jsonl",
    "guide": REPO / "examples" / "guide-questions.jsonl",
}
RESULTS = REPO / "benchmarks" / "results" / "first_token.json"
WARM_UP = "Which port does the HTTP API listen on by default?"  # not a timed question


def questions(path: Path, limit: int) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line)["question"] for line in lines][:limit]


def timed(runtime: Runtime, collection: str, asked: list[str], top_k: int) -> dict[str, float]:
    """Median prompt tokens, time to first piece and answer time over ``asked``."""
    engine = runtime.engine
    prompts, firsts, totals = [], [], []
    for question in asked:
        for event in engine.stream(question, collection, top_k=top_k):
            if isinstance(event, Done) and "first_token_s" in event.answer.timings:
                prompts.append(event.answer.timings["prompt_tokens"])
                firsts.append(event.answer.timings["first_token_s"])
                totals.append(event.answer.timings["total_s"])
            elif not isinstance(event, Token | Done):
                raise TypeError(f"unexpected event {event!r}")
    return {
        "answered": len(firsts),
        "prompt_tokens": round(statistics.median(prompts)),
        "first_token_s": round(statistics.median(firsts), 2),
        "first_token_max_s": round(max(firsts), 2),
        "answer_s": round(statistics.median(totals), 2),
    }


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--top-k", type=int, nargs="*", default=[3, 4, 2])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    settings = load_settings()
    results: dict[str, dict[str, dict[str, float]]] = {}
    runtime = Runtime(settings)
    try:
        runtime.engine.ask(WARM_UP, "guide")
        for collection, path in QUESTIONS.items():
            asked = questions(path, args.limit)
            for top_k in args.top_k:
                figures = timed(runtime, collection, asked, top_k)
                results.setdefault(collection, {})[f"{settings.generator.backend}/top{top_k}"] = (
                    figures
                )
                print(collection, top_k, figures, flush=True)
    finally:
        runtime.close()
    baseline_settings = settings.model_copy(
        update={"generator": settings.generator.model_copy(update={"backend": "transformers"})}
    )
    runtime = Runtime(baseline_settings)
    try:
        runtime.engine.ask(WARM_UP, "guide")
        for collection, path in QUESTIONS.items():
            figures = timed(runtime, collection, questions(path, args.limit), 4)
            results[collection]["transformers/top4"] = figures
            print(collection, "transformers", figures, flush=True)
    finally:
        runtime.close()

    default = f"{settings.generator.backend}/top{settings.retrieval.top_k}"
    ratios = {
        collection: {
            name: round(r["first_token_s"] / rows["transformers/top4"]["first_token_s"], 2)
            for name, r in rows.items()
        }
        for collection, rows in results.items()
    }
    report = {
        "model": settings.generator.model,
        "default": default,
        "cores": len(os.sched_getaffinity(0)),
        "cpu": cpu_model(),
        "load_average_1m": os.getloadavg()[0],
        "results": results,
        "first_token_ratio_to_transformers_top4": ratios,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
