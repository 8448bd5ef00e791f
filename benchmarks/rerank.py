"""Reranking: quoref-dev retrieval with a cross-encoder (``retrieval.reranker``) beside without.

No PyPI package was found to ship a cross-encoder's weights (looked for again on 2026-12-04:
the reranker packages looked at download their weights at run time, or hold other kinds of
model), so the model is the first argument: a local folder holding a sentence-transformers
``CrossEncoder`` (its config naming a ``...ForSequenceClassification`` architecture with one
label, safetensors weights, the tokenizer) or a Hugging Face id already in the local cache, e.g.
``cross-encoder/ms-marco-MiniLM-L6-v2`` (Apache-2.0, 23 M parameters), fetched once on a machine
with internet access. ``benchmarks/train_reranker.py`` makes one offline, trained on questions
of documents other than the gold documents of the default sample.

The quoref-dev passages (the gold ones of the questions plus ``--others`` more: all 600 by
default) are ingested with the default embedder and chunking into a temporary data dir
(:func:`harness.stage`). ``--questions`` distinct questions drawn with ``--seed``
(:func:`harness.sample`) are retrieved as the engine does (``QueryEngine._search``, hybrid; no
generator is loaded): the fused top 10 (dense + BM25, RRF: the baseline), and the top 10 of the
``--candidates`` fused hits reordered by the cross-encoder (:func:`assistant.reranking.rerank`).
Scores as ``lorag eval`` computes them (:mod:`assistant.batch.metrics`): recall@1,
recall@top_k, MRR and nDCG@10, each printed beside the baseline's with the ratio reranked /
fused, and the median search and rerank times per question; all of it goes to
``benchmarks/results/rerank.json``.

    python benchmarks/rerank.py MODEL_OR_FOLDER [--questions 200] [--candidates 20] [--threads 1]

On 2 cores most of the time is the ingestion (~1-2 min for the 600 passages) and the
cross-encoder (for MiniLM-L6, about 20 pairs of ~250 tokens per question).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import machine, sample, stage

from assistant.batch.evaluation import RANKED
from assistant.batch.metrics import mrr, ndcg_at_10, recall_at_k
from assistant.core.models import load_reranker
from assistant.core.types import Hit
from assistant.reranking import rerank
from assistant.runtime import Runtime

RESULTS = Path(__file__).resolve().parent / "results" / "rerank.json"
COLLECTION = "quoref"
FIGURES = ("recall_at_1", "recall_at_k", "mrr", "ndcg_at_10")
QUESTIONS, OTHERS, SEED = 200, 600, 0
"""The default sample (:func:`harness.sample`): ``benchmarks/train_reranker.py`` keeps its
questions' gold documents out of its training data."""


def scores(ranked: list[list[Hit]], gold: list[str], top_k: int) -> dict[str, float]:
    """Mean retrieval scores of ``ranked`` (one hit list per question) against ``gold``."""
    rows = [
        ([hit.chunk.source for hit in hits], (source,))
        for hits, source in zip(ranked, gold, strict=True)
    ]
    return {
        "recall_at_1": float(np.mean([recall_at_k(r, g, 1) for r, g in rows])),
        "recall_at_k": float(np.mean([recall_at_k(r, g, top_k) for r, g in rows])),
        "mrr": float(np.mean([mrr(r, g) for r, g in rows])),
        "ndcg_at_10": float(np.mean([ndcg_at_10(r, g) for r, g in rows])),
    }


def search(
    runtime: Runtime, collection: str, question: str, vector: np.ndarray, pool: int
) -> list[Hit]:
    """The ``pool`` best fused hits for ``question`` in ``collection`` (dense + BM25, RRF), as
    the engine searches."""
    return runtime.store.hybrid_search(
        collection,
        dense=vector,
        sparse=runtime.sparse.encode_query(question),
        limit=pool,
        candidates=max(runtime.settings.retrieval.candidates, pool),
    )


def measure(
    runtime: Runtime, questions: list[str], candidates: int
) -> tuple[list[list[Hit]], list[list[Hit]], dict[str, float]]:
    """The fused and the reranked top 10s of ``questions``, and the median search and rerank
    times per question (ms)."""
    reranker = load_reranker(runtime.settings, runtime.reranker_path)
    pool = max(candidates, RANKED)
    fused: list[list[Hit]] = []
    reranked: list[list[Hit]] = []
    search_s: list[float] = []
    rerank_s: list[float] = []
    vectors = runtime.embedder.embed_documents(questions)
    for question, vector in zip(questions, vectors, strict=True):
        started = time.perf_counter()
        hits = search(runtime, COLLECTION, question, vector, pool)
        searched = time.perf_counter()
        reranked.append(rerank(reranker, question, hits, RANKED))
        rerank_s.append(time.perf_counter() - searched)
        search_s.append(searched - started)
        fused.append(hits[:RANKED])
    times = {"search_ms": 1000 * np.median(search_s), "rerank_ms": 1000 * np.median(rerank_s)}
    return fused, reranked, {name: float(ms) for name, ms in times.items()}


def report(fused: dict[str, float], reranked: dict[str, float], top_k: int) -> None:
    print(f"{'':<16}{'fused':>10}{'reranked':>10}{'ratio':>8}")
    for figure in FIGURES:
        label = f"recall@{top_k}" if figure == "recall_at_k" else figure
        a, b = fused[figure], reranked[figure]
        ratio = f"{b / a:.3f}" if a else "-"
        print(f"{label:<16}{a:>10.3f}{b:>10.3f}{ratio:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the cross-encoder: a local folder or a cached Hub id")
    parser.add_argument("--questions", type=int, default=QUESTIONS)
    parser.add_argument("--others", type=int, default=OTHERS, help="passages beside the gold ones")
    parser.add_argument("--candidates", type=int, default=20, help="fused hits rescored")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a shared machine)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    rows, docs = sample(args.questions, args.others, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-rerank-") as work:
        staged, folder = stage(Path(work), docs)
        retrieval = staged.retrieval.model_copy(
            update={"reranker": args.model, "rerank_candidates": args.candidates}
        )
        settings = staged.model_copy(update={"threads": args.threads, "retrieval": retrieval})
        runtime = Runtime(settings)
        try:
            runtime.check_reranker()  # a wrong model fails before the ingestion
            started = time.perf_counter()
            ingested = runtime.ingestor(COLLECTION).ingest([folder])
            ingest_s = time.perf_counter() - started
            chunks = ingested.chunks_written
            print(f"ingested {len(docs)} passages ({chunks} chunks) in {ingest_s:.0f} s")
            questions = [str(row["question"]) for row in rows]
            fused, reranked, times = measure(runtime, questions, args.candidates)
        finally:
            runtime.close()

    gold = [str(row["source"]) for row in rows]
    top_k = settings.retrieval.top_k
    without, with_reranker = scores(fused, gold, top_k), scores(reranked, gold, top_k)
    print(f"\n{len(rows)} questions, {len(docs)} passages, reranker {args.model}")
    report(without, with_reranker, top_k)
    print(f"per question: search {times['search_ms']:.1f} ms, rerank {times['rerank_ms']:.1f} ms")
    result = {
        "machine": machine(),
        "reranker": args.model,
        "questions": len(rows),
        "passages": len(docs),
        "chunks": chunks,
        "top_k": top_k,
        "rerank_candidates": args.candidates,
        "fused": without,
        "reranked": with_reranker,
        "ratio": {f: with_reranker[f] / without[f] if without[f] else None for f in FIGURES},
        "median_ms_per_question": times,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
