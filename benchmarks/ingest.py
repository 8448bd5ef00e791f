"""Ingestion throughput: lorag's pipeline beside the raw encoder and beside LangChain.

All three index the same chunks of the same files (quoref-dev passages by default):

- lorag: ``Ingestor.ingest`` end to end — load, chunk, dense + BM25 vectors, upsert into the
  embedded Qdrant engine — in a fresh data dir;
- baseline "encode": ``SentenceTransformer.encode`` on the chunk texts as loaded by default
  (fp32, batch 32), storing nothing: the cost of the embeddings alone;
- baseline "langchain": ``QdrantVectorStore.from_documents`` over ``HuggingFaceEmbeddings``
  (qdrant-client local mode, dense only), the usual LangChain recipe.

Prints chunks/s for each with the ratio lorag / baseline; writes benchmarks/results/ingest.json.
Run: ``python benchmarks/ingest.py [--docs DIR] [--files N]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from assistant.core.settings import load_settings
from assistant.runtime import Runtime
from ingestion.chunking import chunk_document
from ingestion.loaders import load_document

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOCS = REPO.parent / "shared" / "data" / "quoref-dev" / "docs"
RESULTS = REPO / "benchmarks" / "results" / "ingestion.json"


def lorag_ingest(files: list[Path], data_dir: Path) -> tuple[float, list[str]]:
    """Seconds for lorag to ingest ``files``, and the texts of the chunks it wrote."""
    runtime = Runtime(load_settings(data_dir=data_dir))
    runtime.embedder.embed_documents(["warm up"])
    started = time.perf_counter()
    report = runtime.ingestor("bench").ingest(files)
    seconds = time.perf_counter() - started
    chunking = runtime.settings.chunking
    texts = [
        chunk.text
        for path in files
        for chunk in chunk_document(
            load_document(path),
            count_tokens=runtime.embedder.count_tokens,
            chunk_tokens=chunking.chunk_tokens,
            overlap_tokens=chunking.overlap_tokens,
            ingested_at=0.0,
        )
    ]
    runtime.close()
    assert report.ok and len(texts) == report.chunks_written
    return seconds, texts


def raw_encode(texts: list[str], model_dir: str) -> float:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    model.encode(["warm up"])
    started = time.perf_counter()
    model.encode(texts, batch_size=32)
    return time.perf_counter() - started


def langchain_from_documents(texts: list[str], model_dir: str, path: Path) -> float:
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_qdrant import QdrantVectorStore

    embeddings = HuggingFaceEmbeddings(model_name=model_dir, model_kwargs={"device": "cpu"})
    embeddings.embed_query("warm up")
    docs = [Document(page_content=text) for text in texts]
    started = time.perf_counter()
    QdrantVectorStore.from_documents(docs, embeddings, path=str(path), collection_name="bench")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--files", type=int, default=200, help="how many files to ingest")
    args = parser.parse_args()
    files = sorted(args.docs.glob("*.txt"))[: args.files]

    work = Path(tempfile.mkdtemp(prefix="lorag-bench-"))
    try:
        ours_s, texts = lorag_ingest(files, work / "lorag")
        from assistant.core.models import resolve_embedder_path

        model_dir = str(resolve_embedder_path(load_settings(data_dir=work / "lorag")))
        encode_s = raw_encode(texts, model_dir)
        langchain_s = langchain_from_documents(texts, model_dir, work / "langchain")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = len(texts)
    rates = {"lorag": n / ours_s, "encode": n / encode_s, "langchain": n / langchain_s}
    print(f"{len(files)} files, {n} chunks")
    print(f"lorag ingest      {rates['lorag']:8.1f} chunks/s")
    for baseline in ("encode", "langchain"):
        ratio = rates["lorag"] / rates[baseline]
        print(f"{baseline:<17} {rates[baseline]:8.1f} chunks/s   lorag/{baseline} = {ratio:.2f}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "files": len(files),
                "chunks": n,
                "chunks_per_s": rates,
                "ratio_vs_encode": rates["lorag"] / rates["encode"],
                "ratio_vs_langchain": rates["lorag"] / rates["langchain"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
