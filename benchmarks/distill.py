"""On-policy distillation beside its off-policy baseline, on quoref-dev held-out questions.

Four rows, each answering the same held-out quoref-dev questions through the whole engine
(hybrid retrieval from the same collection, ``top_k`` sources, greedy):

- base: the student, Qwen2.5-Coder-0.5B-Instruct (the default generator), no adapter;
- SFT on teacher outputs (off-policy, sequence-level KD): the teacher answers each RAFT prompt
  greedily, and ``finetune.trainer`` trains a LoRA on those answers;
- OPD: ``lorag distill`` (``assistant.distillation``): the student samples its own answers to
  the same RAFT prompts, the teacher scores them token by token (GKD, JSD(beta=0.5), lmbda=1);
- teacher: Qwen2.5-Coder-1.5B-Instruct (same tokenizer) answering directly.

The RAFT prompts are made from the collection's chunks by ``finetune.synth`` with the cloze
questions only (the question writer is skipped: on 2 shared cores a 0.5B writer costs ~15 s a
chunk); the held-out quoref questions are never trained on. Both adapters get the same recipe
(``lora-cpu`` with the step count and batch given here) and the same seeded split. Scores are
``lorag eval``'s (:mod:`assistant.batch.evaluation`): F1, source cited, abstain rate; training
tokens/s is real tokens per second of optimiser steps (for OPD, sampling and the teacher's
passes included; for SFT, the teacher's answer writing is reported apart). Prints the table and
writes benchmarks/results/distill.json.
Run: ``python benchmarks/distill.py [--questions 40 --chunks 20 --steps 10]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.batch.evaluation import Configuration, evaluate
from assistant.batch.formats import read_questions
from assistant.core.settings import GenerationSettings, RetrievalSettings, Settings
from assistant.distillation import DistillPlan, distill_adapter
from assistant.runtime import Runtime
from assistant.training import FinetunePlan, train_adapter
from benchmarks.harness import machine, sample, stage
from finetune.distill import teacher_settings
from finetune.synth import build_raft_dataset

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "distill.json"
TEACHER = "Qwen/Qwen2.5-Coder-1.5B-Instruct"
COLLECTION = "quoref-opd"
SCORES = ("f1", "exact_match", "source_cited", "citation_precision", "abstain_rate")


class ClozeOnly:
    """A question writer that writes nothing, so ``build_raft_dataset`` keeps only its cloze
    questions (grounded by construction) and the benchmark does not wait on a writer."""

    model_id = "cloze-only"

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int) -> Iterator[str]:
        return iter(())


def teacher_answers(settings: Settings, raft: Path, out: Path, max_new_tokens: int) -> float:
    """``raft`` with each answer replaced by the teacher's greedy one; the seconds it took."""
    from assistant.core.models import load_generator
    from finetune.data import parse_record

    generator = load_generator(teacher_settings(settings, TEACHER))
    rows = [json.loads(line) for line in raft.read_text(encoding="utf-8").splitlines()]
    began = time.perf_counter()
    for row in rows:
        messages = parse_record(row).messages
        row["answer"] = generator.generate(messages, max_new_tokens).strip() or "?"
    seconds = time.perf_counter() - began
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    del generator
    gc.collect()
    return seconds


def scores(runtime: Runtime, questions: Path, adapters: list[str], limit: int) -> list[Any]:
    configurations = [Configuration(adapter) for adapter in [None, *adapters]]
    report = evaluate(runtime, read_questions(questions), configurations, COLLECTION, limit=limit)
    return report.results


def row(name: str, metrics: dict[str, Any], training: dict[str, Any] | None) -> dict[str, Any]:
    return {"row": name, **{k: metrics.get(k) for k in SCORES}, "training": training}


def training_figures(result: Any) -> dict[str, Any]:
    return {
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 1),
        "tokens": result.tokens,
        "tokens_per_second": round(result.tokens_per_second, 1),
        "final_loss": result.final_loss,
        "held_out_eval_loss": result.eval_loss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=40, help="held-out quoref questions")
    parser.add_argument("--others", type=int, default=20, help="extra passages ingested")
    parser.add_argument("--chunks", type=int, default=20, help="chunks to make RAFT prompts of")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--answer-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    picked, docs = sample(args.questions, args.others, seed=0)
    work = Path(tempfile.mkdtemp(prefix="lorag-distill-"))
    staged, folder = stage(work, docs)
    settings = staged.model_copy(
        update={
            "threads": args.threads,
            "retrieval": RetrievalSettings(top_k=3),
            "generation": GenerationSettings(max_new_tokens=args.answer_tokens),
        }
    )
    questions = work / "questions.jsonl"
    questions.write_text(
        "".join(
            json.dumps(
                {"question": r["question"], "answers": r["answers"], "sources": [r["source"]]}
            )
            + "\n"
            for r in picked
        ),
        encoding="utf-8",
    )
    overrides = {
        "max_steps": str(args.steps),
        "batch_size": "2",
        "grad_accumulation": "2",
        "save_every": "0",
        "eval_every": "0",
    }
    timings: dict[str, float] = {}
    runtime = Runtime(settings)
    try:
        began = time.perf_counter()
        runtime.ingestor(COLLECTION).ingest([folder])
        timings["ingest_seconds"] = time.perf_counter() - began
        raft = work / "raft.jsonl"
        made = build_raft_dataset(
            runtime, COLLECTION, raft, teacher=ClozeOnly(), max_chunks=args.chunks, distractors=2
        )
        print(f"RAFT prompts: {made.examples} ({made.abstain_examples} abstain)", flush=True)
        sft_data = work / "sft.jsonl"
        timings["teacher_answers_seconds"] = teacher_answers(
            settings, raft, sft_data, args.answer_tokens
        )
        print(f"teacher answers: {timings['teacher_answers_seconds']:.0f} s", flush=True)
        sft = train_adapter(runtime, FinetunePlan(name="sft", data=sft_data, overrides=overrides))
        print("SFT", training_figures(sft.result), flush=True)
        gc.collect()
        opd = distill_adapter(
            runtime,
            DistillPlan(
                name="opd",
                teacher=TEACHER,
                data=raft,
                overrides=overrides,
                max_new_tokens=args.answer_tokens,
            ),
        )
        print("OPD", training_figures(opd.result), opd.result.distillation, flush=True)
        gc.collect()
        began = time.perf_counter()
        base, sft_scores, opd_scores = scores(
            runtime, questions, ["sft@1", "opd@1"], args.questions
        )
        timings["student_eval_seconds"] = time.perf_counter() - began
    finally:
        runtime.close()
    teacher_runtime = Runtime(teacher_settings(settings, TEACHER))
    try:
        began = time.perf_counter()
        (teacher,) = scores(teacher_runtime, questions, [], args.questions)
        timings["teacher_eval_seconds"] = time.perf_counter() - began
    finally:
        teacher_runtime.close()

    table = [
        row("base (0.5B)", base.metrics, None),
        row("SFT on teacher outputs", sft_scores.metrics, training_figures(sft.result)),
        row("OPD (lorag distill)", opd_scores.metrics, training_figures(opd.result)),
        row("teacher (1.5B)", teacher.metrics, None),
    ]
    print(f"\n{'':24} {'F1':>6} {'EM':>6} {'cited':>6} {'abstain':>8} {'train tok/s':>12}")
    for entry in table:
        tok_s = entry["training"]["tokens_per_second"] if entry["training"] else "-"
        print(
            f"{entry['row']:24} {entry['f1'] or 0:6.3f} {entry['exact_match'] or 0:6.3f} "
            f"{entry['source_cited'] or 0:6.3f} {entry['abstain_rate'] or 0:8.3f} {tok_s:>12}"
        )
    result = {
        "student": settings.generator.model,
        "teacher": TEACHER,
        "held_out_questions": args.questions,
        "passages_ingested": len(docs),
        "raft_prompts": made.examples,
        "raft_abstain_prompts": made.abstain_examples,
        "steps": args.steps,
        "examples_per_step": 4,
        "answer_tokens": args.answer_tokens,
        "distillation": opd.result.distillation,
        "table": table,
        "timings_seconds": {k: round(v, 1) for k, v in timings.items()},
        "machine": machine(),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
