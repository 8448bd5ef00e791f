"""One big text file (50 MB by default, under the 50 MiB file limit): when its first chunks are
stored, what a kill -9 keeps, and what the run after it redoes.

An ingest process (``lorag``'s ``Ingestor`` on the default embedder, a fresh data dir) reports
each batch of chunks written; it is killed with SIGKILL after ``--batches`` batches. Then the
same file is ingested again in a new process, killed after its first batch: its first report
says how many chunks the store held of the file by then (the killed run's and one new batch:
nothing embedded twice). Running it to the end takes about an hour for 50 MB on 2 cores; that
the completed file equals a clean ingest is tested on a small one
(``tests/ingestion/test_pipeline.py``). Baseline: the pipeline before batches inside a file
embedded all of a file's chunks before writing any, so its first write came after chunking plus
every embedding (that time is estimated from this run's measured chunking time and embedding
rate, not measured again) and a kill before the end kept nothing of the file.

Prints the figures with the ratio; writes benchmarks/results/big_file.json.
Run: ``python benchmarks/big_file.py [--mb 50] [--batches 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "big_file.json"
GUIDE = REPO / "examples" / "docs"

INGEST = """
import sys, time
from pathlib import Path
from assistant.core.settings import load_settings
from assistant.runtime import Runtime

runtime = Runtime(load_settings(data_dir=Path(sys.argv[1])))
runtime.embedder.embed_documents(["warm up"])
started = time.perf_counter()
print(f"start {started}", flush=True)

def written(source, stored, total):
    print(f"batch {time.perf_counter() - started:.3f} {stored} {total}", flush=True)

report = runtime.ingestor("big").ingest([Path(sys.argv[2])], on_chunks=written)
seconds = time.perf_counter() - started
print(f"done {seconds:.3f} {report.chunks_written} {int(report.ok)}", flush=True)
runtime.close()
"""


def write_text(path: Path, megabytes: float, seed: int) -> None:
    """Paragraphs of 80 words drawn from the bundled guide, to ``megabytes`` MB."""
    rng = random.Random(seed)
    words = " ".join(p.read_text(encoding="utf-8") for p in sorted(GUIDE.rglob("*.md"))).split()
    size = 0
    with path.open("w", encoding="utf-8") as out:
        while size < megabytes * 1_000_000:
            paragraph = " ".join(rng.choice(words) for _ in range(80)) + ".\n\n"
            out.write(paragraph)
            size += len(paragraph.encode())


def ingest(data_dir: Path, text: Path, kill_after: int | None) -> list[list[str]]:
    """The lines an ingest process printed (split), killed after ``kill_after`` batches."""
    process = subprocess.Popen(
        [sys.executable, "-c", INGEST, str(data_dir), str(text)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    lines: list[list[str]] = []
    for line in process.stdout:
        lines.append(line.split())
        batches = sum(1 for fields in lines if fields[0] == "batch")
        if kill_after is not None and batches >= kill_after:
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=50.0, help="Size of the text file in MB.")
    parser.add_argument("--batches", type=int, default=3, help="Batches written before the kill.")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lorag-big-") as work:
        text = Path(work) / "big.txt"
        write_text(text, options.mb, options.seed)
        data_dir = Path(work) / "data"
        killed = ingest(data_dir, text, options.batches)
        batches = [fields for fields in killed if fields[0] == "batch"]
        first_s, kept, total = float(batches[0][1]), int(batches[-1][2]), int(batches[0][3])
        seconds = [float(fields[1]) for fields in batches]
        per_batch = (seconds[-1] - seconds[0]) / max(len(seconds) - 1, 1)
        embed_rate = (int(batches[-1][2]) - int(batches[0][2])) / max(
            seconds[-1] - seconds[0], 1e-9
        )
        rerun = ingest(data_dir, text, kill_after=1)
    rerun_first = next(fields for fields in rerun if fields[0] == "batch")
    chunking_s = first_s - per_batch  # the first report came after chunking and one batch
    baseline_first_s = chunking_s + total / embed_rate
    figures = {
        "megabytes": options.mb,
        "chunks": total,
        "first_chunks_stored_s": round(first_s, 1),
        "baseline_first_chunks_stored_s_estimated": round(baseline_first_s, 1),
        "ratio_first_write": round(baseline_first_s / first_s, 1),
        "seconds_between_progress_reports": round(per_batch, 1),
        "chunks_per_s": round(embed_rate, 1),
        "kept_after_kill": kept,
        "baseline_kept_after_kill": 0,
        "rerun_first_report_s": float(rerun_first[1]),
        "rerun_first_report_stored": int(rerun_first[2]),
        "hours_to_finish_estimated": round(total / embed_rate / 3600, 2),
    }
    print(json.dumps(figures, indent=2))
    print(
        f"first chunks stored after {first_s:.1f} s vs {baseline_first_s:.0f} s before "
        f"(estimated): {baseline_first_s / first_s:.1f}x sooner; a kill kept {kept} of {total} "
        f"chunks (0 before); the rerun's first batch brought it to {rerun_first[2]} "
        f"(= {kept} + one batch)"
    )
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
