"""The split abstention check: does the engine abstain exactly when the documents lack the answer?

Half of quoref-dev's passages (every other file, by name) go into one collection. A question
whose gold passage is in that half is answerable; one whose gold passage is in the other half is
not (no ingested document holds its answer, though some may be about the same kind of thing).
One run measures:

1. retrieval alone, on the questions after the first ``--limit`` of each kind (the tuning set):
   the best chunk's cosine similarity and the question-term coverage
   (:mod:`assistant.relevance`), and for each threshold of a sweep the share of unanswerable and
   of answerable questions it would abstain on, so the thresholds are chosen on data;
2. the whole engine (``lorag eval``'s path, default settings unless ``--min-similarity`` /
   ``--min-coverage`` / ``--min-support`` say otherwise) on the first ``--limit`` questions of
   each kind, held out from the tuning: ``unanswerable_abstained`` (target >= 0.70) and
   ``false_abstention`` (target <= 0.15), beside the baseline of the same run: the engine
   without the coverage check (what it was before it).

    python benchmarks/abstention.py [--limit 60] [--min-coverage X] [--min-support Y]

It writes the split's question file next to the results, ingests the half into ``--collection``
(once: files already stored are skipped), and writes ``benchmarks/results/abstention.json``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from assistant.batch.evaluation import Configuration, evaluate
from assistant.batch.formats import QuestionFile, read_questions
from assistant.core.settings import Settings, load_settings
from assistant.relevance import is_off_topic
from assistant.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]
QUOREF = REPO.parent / "shared" / "data" / "quoref-dev"
RESULTS = REPO / "benchmarks" / "results" / "abstention.json"
SIMILARITY_SWEEP = [round(x, 2) for x in np.arange(0.30, 0.56, 0.05)]
COVERAGE_SWEEP = [round(x, 2) for x in np.arange(0.30, 0.71, 0.05)]
RATES = ("unanswerable_abstained", "false_abstention", "f1", "source_cited")


def split_questions(quoref: Path, limit: int) -> tuple[list[Path], list[dict[str, object]]]:
    """The ingested half (every other passage, by file name) and the first ``limit`` answerable
    and ``limit`` unanswerable questions, interleaved, each marked ``unanswerable``."""
    docs = sorted((quoref / "docs").glob("*.txt"))
    ingested = docs[::2]
    inside = {path.name for path in ingested}
    answerable: list[dict[str, object]] = []
    unanswerable: list[dict[str, object]] = []
    for line in (quoref / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        kind = answerable if row["source"] in inside else unanswerable
        if len(kind) < limit:
            kind.append({**row, "unanswerable": kind is unanswerable})
    rows = [row for pair in zip(answerable, unanswerable, strict=True) for row in pair]
    return ingested, rows


def with_thresholds(settings: Settings, args: argparse.Namespace) -> Settings:
    retrieval = {"min_similarity": args.min_similarity, "min_question_coverage": args.min_coverage}
    generation = {"min_support": args.min_support}
    return settings.model_copy(
        update={
            "retrieval": settings.retrieval.model_copy(
                update={k: v for k, v in retrieval.items() if v is not None}
            ),
            "generation": settings.generation.model_copy(
                update={k: v for k, v in generation.items() if v is not None}
            ),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="quoref-half")
    parser.add_argument("--limit", type=int, default=60, help="held-out questions of each kind")
    parser.add_argument("--tune-limit", type=int, default=240, help="tuning questions, each kind")
    parser.add_argument("--min-similarity", type=float, default=None)
    parser.add_argument("--min-coverage", type=float, default=None)
    parser.add_argument("--min-support", type=float, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    settings = with_thresholds(load_settings(), args)
    ingested, rows = split_questions(QUOREF, args.limit + args.tune_limit)
    questions_path = args.out.with_name("abstention-questions.jsonl")
    questions_path.parent.mkdir(parents=True, exist_ok=True)
    questions_path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

    runtime = Runtime(settings)
    try:
        report = runtime.ingestor(args.collection).ingest(ingested)
        print(f"ingested {len(ingested)} passages ({report.chunks_written} new chunks)")
        tuning = rows[2 * args.limit :]
        sweep = _sweep(runtime, tuning, args.collection)
        for name, rates in sweep.items():
            print(name, rates, flush=True)
        questions = read_questions(questions_path)
        engine_rates = _rates(runtime, questions, args.collection, 2 * args.limit)
        print("engine", engine_rates, flush=True)
        engine = runtime.engine
        retrieval = engine.retrieval
        engine.retrieval = retrieval.model_copy(update={"min_question_coverage": 0.0})
        baseline_rates = _rates(runtime, questions, args.collection, 2 * args.limit)
        engine.retrieval = retrieval
        print("without the coverage check", baseline_rates, flush=True)
    finally:
        runtime.close()

    result = {
        "model": settings.generator.model,
        "backend": settings.generator.backend,
        "split": f"{len(ingested)} of {len(ingested) * 2} quoref-dev passages ingested",
        "held_out": f"the first {args.limit} answerable + {args.limit} unanswerable questions",
        "retrieval": settings.retrieval.model_dump(),
        "min_support": settings.generation.min_support,
        "engine": engine_rates,
        "baseline_without_coverage_check": baseline_rates,
        "tuning": f"the next {len(tuning) // 2} of each kind, retrieval only",
        "sweep": sweep,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"engine": engine_rates, "baseline": baseline_rates}))


def _sweep(
    runtime: Runtime, rows: list[dict[str, object]], collection: str
) -> dict[str, dict[str, float]]:
    """Each threshold's abstention rates on ``rows`` from retrieval alone."""
    engine = runtime.engine
    retrieval = engine.retrieval
    texts = [str(row["question"]) for row in rows]
    hits = engine.retrieve_batch(texts, collection, retrieval.top_k, "hybrid")
    unanswerable = [bool(row["unanswerable"]) for row in rows]
    best = [float(max((hit.similarity for hit in found), default=0.0)) for found in hits]
    sweep = {
        f"similarity < {t}": _shares([b < t for b in best], unanswerable) for t in SIMILARITY_SWEEP
    }
    for t in COVERAGE_SWEEP:
        at = retrieval.model_copy(update={"min_question_coverage": t})
        off = [is_off_topic(q, h, engine.sparse, at) for q, h in zip(texts, hits, strict=True)]
        sweep[f"coverage < {t}"] = _shares(off, unanswerable)
    return sweep


def _shares(abstained: list[bool], unanswerable: list[bool]) -> dict[str, float]:
    def share(kind: bool) -> float:
        picked = [a for a, u in zip(abstained, unanswerable, strict=True) if u == kind]
        return round(float(sum(picked)) / len(picked), 3)

    return {"unanswerable_abstained": share(True), "false_abstention": share(False)}


def _rates(
    runtime: Runtime, questions: QuestionFile, collection: str, limit: int
) -> dict[str, object]:
    result = evaluate(runtime, questions, [Configuration()], collection, limit=limit).results[0]
    rates = {m: None if result.metrics[m] is None else round(result.metrics[m], 3) for m in RATES}
    answerable = [row for row in result.rows if not row.unanswerable]
    reasons = Counter(row.abstain_reason for row in answerable if row.abstained)
    by_reason = {str(k): round(v / len(answerable), 3) for k, v in sorted(reasons.items(), key=str)}
    return {
        **rates,
        "false_abstention_by_reason": by_reason,
        "questions_per_min": round(result.questions_per_min, 1),
    }


if __name__ == "__main__":
    main()
