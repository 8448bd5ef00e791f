"""Load on ``lorag serve``: N concurrent streaming clients for T seconds, beside a plain loop.

Real default models (SmolLM2-135M-Instruct, all-MiniLM-L6-v2) over a temporary data dir: a seeded
sample of ``--questions`` quoref-dev questions, their gold documents plus ``--others`` more,
ingested into one collection; then ``lorag serve`` is started on a free loopback port with one
admin key and the default API limits (``api.queue_size`` 8: more answers at once are refused
with 503 + Retry-After).

- server: ``--clients`` threads each ask ``POST /v1/ask`` with ``stream: true``, one question
  after another, for ``--seconds``; a refused client waits ``Retry-After`` (at most 2 s), as a
  polite client does. Measured per request: status, latency (request to the end of the stream),
  time to first token (to the first ``token`` event), and the server's own queue wait and
  answer time (from the ``done`` event). After the load stops, one more question must get a
  normal 200 answer.
- loop: the server stopped, the same answered questions, in the same order, through
  ``engine.stream`` in-process, one after another (at most ``--seconds``).

Prints both and the ratios (answers/min, answer time, time to first token); writes
benchmarks/results/load.json. Run: ``python benchmarks/load.py [--clients 16 --seconds 60]``.
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness import machine, percentile, sample, stage, start_server

from assistant.core.settings import Settings
from assistant.engine import Done
from assistant.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "load.json"
COLLECTION = "quoref"
KEY = "load-benchmark-key-0123456789"
MAX_BACKOFF_S = 2.0


@dataclass(frozen=True)
class Request:
    """One request as a client saw it."""

    question: str
    status: int | str
    latency_s: float
    first_token_s: float | None = None
    queue_s: float | None = None
    answer_s: float | None = None


def ask(client: httpx.Client, url: str, question: str) -> Request:
    """One streamed question, timed; the status or ``"stream-error"`` / the exception name."""
    body = {"question": question, "collection": COLLECTION, "stream": True}
    began = time.perf_counter()
    first: float | None = None
    try:
        with client.stream("POST", f"{url}/v1/ask", json=body) as response:
            if response.status_code != 200:
                response.read()
                return Request(question, response.status_code, time.perf_counter() - began)
            event, done = "", None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                    if event == "token" and first is None:
                        first = time.perf_counter() - began
                elif line.startswith("data: ") and event in ("done", "error"):
                    done = (event, json.loads(line[len("data: ") :]))
    except httpx.HTTPError as error:
        return Request(question, type(error).__name__, time.perf_counter() - began)
    latency = time.perf_counter() - began
    if done is None or done[0] != "done":
        return Request(question, "stream-error", latency, first)
    timings = done[1]["timings"]
    return Request(
        question,
        200,
        latency,
        first,
        queue_s=timings["queue_ms"] / 1000,
        answer_s=timings["total_ms"] / 1000,
    )


def load(url: str, questions: list[str], clients: int, seconds: float) -> list[Request]:
    """``clients`` threads asking questions in turn until ``seconds`` have passed."""
    done: list[Request] = []
    lock = threading.Lock()
    counter = iter(range(10**9))
    stop = time.monotonic() + seconds

    def client_loop() -> None:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(headers=headers, timeout=300) as client:
            while time.monotonic() < stop:
                with lock:
                    question = questions[next(counter) % len(questions)]
                result = ask(client, url, question)
                with lock:
                    done.append(result)
                if result.status in (429, 503):
                    time.sleep(min(MAX_BACKOFF_S, max(0.0, stop - time.monotonic())))

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done


def plain_loop(settings: Settings, questions: list[str], seconds: float) -> list[Request]:
    """The same questions through ``engine.stream`` in-process, one after another."""
    runtime = Runtime(settings)
    done: list[Request] = []
    try:
        runtime.engine.ask(questions[0], COLLECTION)  # warm up, as the server was
        stop = time.monotonic() + seconds
        for question in questions:
            if time.monotonic() >= stop:
                break
            began = time.perf_counter()
            first: float | None = None
            for event in runtime.engine.stream(question, COLLECTION):
                if first is None:
                    first = time.perf_counter() - began
                if isinstance(event, Done):
                    latency = time.perf_counter() - began
                    done.append(Request(question, 200, latency, first, 0.0, latency))
    finally:
        runtime.close()
    return done


def summary(requests: list[Request], seconds: float) -> dict[str, Any]:
    answered = [r for r in requests if r.status == 200]
    latencies = [r.latency_s for r in answered]
    firsts = [r.first_token_s for r in answered if r.first_token_s is not None]
    answers = [r.answer_s for r in answered if r.answer_s is not None]
    queues = [r.queue_s for r in answered if r.queue_s is not None]
    return {
        "requests": len(requests),
        "by_status": dict(sorted(Counter(str(r.status) for r in requests).items())),
        "answers_per_min": 60 * len(answered) / seconds if seconds else 0.0,
        "latency_p50_s": percentile(latencies, 0.5),
        "latency_p95_s": percentile(latencies, 0.95),
        "first_token_p50_s": percentile(firsts, 0.5),
        "first_token_p95_s": percentile(firsts, 0.95),
        "answer_p50_s": percentile(answers, 0.5),
        "queue_p50_s": percentile(queues, 0.5),
        "seconds": seconds,
    }


def show(name: str, stats: dict[str, Any]) -> None:
    def s(value: float | None) -> str:
        return f"{value:6.2f}" if value is not None else "     -"

    print(
        f"  {name:<7} {stats['answers_per_min']:6.1f} answers/min   latency p50 "
        f"{s(stats['latency_p50_s'])} s p95 {s(stats['latency_p95_s'])} s   first token p50 "
        f"{s(stats['first_token_p50_s'])} s p95 {s(stats['first_token_p95_s'])} s   "
        f"answer p50 {s(stats['answer_p50_s'])} s"
    )


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, choices=range(1, 65), metavar="1..64")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--others", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 5 <= args.seconds <= 300:
        parser.error("--seconds must be between 5 and 300")

    rows, docs = sample(args.questions, args.others, args.seed)
    questions = [str(row["question"]) for row in rows]
    with tempfile.TemporaryDirectory(prefix="lorag-load-") as work:
        settings, folder = stage(Path(work), docs)
        runtime = Runtime(settings)
        try:
            assert runtime.ingestor(COLLECTION).ingest([folder]).ok
        finally:
            runtime.close()

        server, url = start_server(settings.data_dir, Path(work) / "server.log", KEY)
        try:
            headers = {"Authorization": f"Bearer {KEY}"}
            with httpx.Client(headers=headers, timeout=300) as client:
                ask(client, url, questions[0])  # warm up
            began = time.perf_counter()
            served = load(url, questions, args.clients, args.seconds)
            load_s = time.perf_counter() - began
            with httpx.Client(headers=headers, timeout=300) as client:
                after = ask(client, url, questions[-1])
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)

        answered = [r.question for r in served if r.status == 200]
        began = time.perf_counter()
        looped = plain_loop(settings, answered or questions, args.seconds)
        loop_s = time.perf_counter() - began

    server_stats, loop_stats = summary(served, load_s), summary(looped, loop_s)
    server_errors = sum(
        1 for r in served if isinstance(r.status, int) and r.status >= 500 and r.status != 503
    )
    report = {
        "machine": machine(),
        "clients": args.clients,
        "seconds": args.seconds,
        "questions": len(questions),
        "documents": len(docs),
        "max_new_tokens": settings.generation.max_new_tokens,
        "queue_size": settings.api.queue_size,
        "server": server_stats,
        "loop": loop_stats,
        "server_vs_loop": {
            "answers_per_min": ratio(
                server_stats["answers_per_min"], loop_stats["answers_per_min"]
            ),
            "answer_p50": ratio(server_stats["answer_p50_s"], loop_stats["answer_p50_s"]),
            "first_token_p50": ratio(
                server_stats["first_token_p50_s"], loop_stats["first_token_p50_s"]
            ),
        },
        "server_errors_5xx_other_than_503": server_errors,
        "answered_after_load": after.status == 200,
    }
    print(
        f"{args.clients} clients x {args.seconds:.0f} s on {len(docs)} documents; "
        f"requests by status: {server_stats['by_status']}"
    )
    show("server", server_stats)
    show("loop", loop_stats)
    labels = {"answers_per_min": "answers/min", "answer_p50": "answer time p50"}
    labels["first_token_p50"] = "first token p50"
    ratios = report["server_vs_loop"]
    shown = [f"{labels[k]} {v:.2f}x" for k, v in ratios.items() if v is not None]
    print("  server/loop: " + ", ".join(shown))
    print(
        f"  5xx other than 503: {server_errors}; answered normally after the load: "
        f"{report['answered_after_load']}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
