"""Batch throughput: ``run_batch`` beside a plain loop of ``engine.ask`` on the same questions.

Real default models (SmolLM2-135M-Instruct, all-MiniLM-L6-v2) over a temporary data dir: a
seeded sample of ``--questions`` quoref-dev questions, their gold documents plus ``--others``
other documents ingested into one collection (all 600 would take ~3 min on 2 cores).

- loop: ``engine.ask`` on one question after another (what a script calling lorag would do);
- batch: ``run_batch`` from a JSONL questions file to a JSONL answers file, ``--batch-size``
  questions per pass (reading, writing and the fsync per row included).

Both start warm (models loaded, one question asked first) and use the same settings; they run
in alternating groups of ``2 * batch_size`` questions (the batch side resuming its answers file),
so that both see the same load on a shared machine. Prints
questions/min of each and the ratio, and how many answers are the same text (greedy decoding
both ways; bf16 rounding on padded batches can change a near tie). Writes
benchmarks/results/batch.json. Run: ``python benchmarks/batch.py [--questions 48]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from harness import machine, sample, stage

from assistant.batch.output import read_answers
from assistant.batch.runner import run_batch
from assistant.core.types import Answer
from assistant.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "batch.json"
COLLECTION = "quoref"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=48)
    parser.add_argument("--others", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    picked, docs = sample(args.questions, args.others, args.seed)
    with tempfile.TemporaryDirectory(prefix="lorag-bench-") as work:
        settings, folder = stage(Path(work), docs)
        rt = Runtime(settings)
        try:
            started = time.perf_counter()
            assert rt.ingestor(COLLECTION).ingest([folder]).ok
            ingest_s = time.perf_counter() - started

            questions = [str(row["question"]) for row in picked]
            rt.engine.ask(questions[0], COLLECTION)  # warm up: models loaded, kernels ready
            rt.engine.ask_batch(questions[:2], COLLECTION)

            # Interleaved by groups (order alternating), so both sides see the same machine
            # load: this host is shared, and its load changes by the minute.
            source = Path(work) / "questions.jsonl"
            output = Path(work) / "answers.jsonl"
            single: list[Answer] = []
            loop_s = batch_s = 0.0
            group = 2 * args.batch_size
            for start in range(0, len(picked), group):
                rows = picked[start : start + group]

                def loop(rows: list[dict[str, object]] = rows) -> float:
                    began = time.perf_counter()
                    single.extend(rt.engine.ask(str(r["question"]), COLLECTION) for r in rows)
                    return time.perf_counter() - began

                def batch(end: int = start + len(rows)) -> float:
                    source.write_text("".join(json.dumps(r) + "\n" for r in picked[:end]))
                    summary = run_batch(
                        rt, source, output, COLLECTION, resume=True, batch_size=args.batch_size
                    )
                    assert summary.failed == 0
                    return summary.elapsed_s

                if start // group % 2:
                    batch_s += batch()
                    loop_s += loop()
                else:
                    loop_s += loop()
                    batch_s += batch()
            batched = read_answers(output)
        finally:
            rt.close()

    loop_qpm = 60 * len(questions) / loop_s
    batch_qpm = 60 * len(questions) / batch_s
    same = sum(a.text == r["answer"] for a, r in zip(single, batched, strict=True))
    report = {
        "machine": machine(),
        "questions": len(questions),
        "documents": len(docs),
        "batch_size": args.batch_size,
        "max_new_tokens": settings.generation.max_new_tokens,
        "top_k": settings.retrieval.top_k,
        "ingest_s": ingest_s,
        "loop": {
            "seconds": loop_s,
            "questions_per_min": loop_qpm,
            "abstained": sum(a.abstained for a in single),
        },
        "batch": {
            "seconds": batch_s,
            "questions_per_min": batch_qpm,
            "abstained": sum(bool(r["abstained"]) for r in batched),
        },
        "speedup": batch_qpm / loop_qpm,
        "same_answer_text": same,
    }
    print(f"{len(questions)} questions over {len(docs)} documents (ingested in {ingest_s:.0f} s)")
    print(f"  loop of engine.ask   {loop_s:7.1f} s  {loop_qpm:6.1f} questions/min")
    print(
        f"  run_batch (batch {args.batch_size})  {batch_s:7.1f} s  "
        f"{batch_qpm:6.1f} questions/min   {batch_qpm / loop_qpm:.2f}x"
    )
    print(f"  same answer text: {same}/{len(questions)}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
