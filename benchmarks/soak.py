"""Soak: ``--clients`` clients for ``--minutes`` of mixed traffic on ``lorag serve``.

``lorag serve`` runs in a process of its own (default models, a fresh data dir, one admin key,
the default API limits) on a free loopback port. The bundled guide (``examples/docs``) is
uploaded into collection ``guide`` through the API, and a collection ``notes`` is created for
the uploads of the run. Then each client, a thread with its own seeded random choices, does one
action after another with a pause of ``--think-s`` on average in between:

- ``ask`` (35 %): ``POST /v1/ask`` with one of the guide's questions;
- ``chat`` (30 %): a streaming ``POST /v1/chat/completions`` (model ``guide``), read to ``[DONE]``;
- ``list`` (25 %): ``GET /v1/collections/guide/documents``;
- ``upload`` (5 %): one small markdown note (one of four names, so it replaces the last one of
  that name) into ``notes``, its ingest job polled to its end;
- ``batch`` (5 %): a two-question JSONL batch on ``guide``, polled to its end, then downloaded.

A 429 or 503 with ``Retry-After`` is waited out (that many seconds) and the request retried,
as a polite client does; each such reply is counted. The run starts with a warm-up of the same
traffic (``--warmup-s``, not counted), after which the server's resident memory (RSS, its
process and children) is taken as the start; it is sampled every 5 s, and taken again once the
clients have finished. Afterwards one normal ``/v1/ask`` must answer and cite the right guide
page (asked once before the run too).

Prints each goal beside what was measured (no 5xx other than 503 with ``Retry-After``, no
failed transfer or stream, RSS growth under 10 %, the right answer afterwards), then the status
counts and latency p50/p95/p99 per route; writes benchmarks/results/soak.json; exits 1 when a
goal is missed. Run: ``python benchmarks/soak.py [--clients 32 --minutes 10]``.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from harness import machine, percentile, stage, start_server

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "soak.json"
GUIDE = REPO / "examples" / "docs"
QUESTIONS = REPO / "examples" / "guide-questions.jsonl"
KEY = "soak-benchmark-key-0123456789"
WEIGHTS = {"ask": 35, "chat": 30, "list": 25, "upload": 5, "batch": 5}
NOTES = 4
"""How many note names the uploads cycle through (each upload replaces one)."""
POLL_S = 1.0
RSS_EVERY_S = 5.0
RSS_GOAL = 0.10
FINAL_QUESTION = 0
"""The guide question (its index in guide-questions.jsonl) asked before and after the run."""


@dataclass(frozen=True)
class Reply:
    """One HTTP exchange as a client saw it: the status (or why there was none) and its time."""

    route: str
    status: int | str
    latency_s: float
    retry_after: bool = False


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    counting: bool = False
    replies: list[Reply] = field(default_factory=list)
    jobs: Counter[str] = field(default_factory=Counter)
    job_seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    crashed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, reply: Reply) -> None:
        if self.counting:
            with self.lock:
                self.replies.append(reply)

    def job(self, kind: str, status: str, seconds: float) -> None:
        if self.counting:
            with self.lock:
                self.jobs[f"{kind} {status}"] += 1
                self.job_seconds[kind].append(seconds)


class Client:
    """One client: an httpx client with the key, its random choices, and the shared tally."""

    def __init__(self, url: str, tally: Tally, rng: random.Random, questions: list[str]) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=600
        )
        self.tally = tally
        self.rng = rng
        self.questions = questions
        self.stop = float("inf")

    def send(self, request: Callable[[], Reply]) -> Reply:
        """``request`` until it is not refused with ``Retry-After`` (each refusal waited out),
        or the run is over."""
        while True:
            reply = request()
            self.tally.add(reply)
            if not reply.retry_after or time.monotonic() >= self.stop:
                return reply

    def call(self, route: str, method: str, path: str, **kwargs: Any) -> tuple[Reply, Any]:
        """One plain request: its reply, and its JSON body when it has one."""
        holder: list[Any] = [None]

        def request() -> Reply:
            began = time.perf_counter()
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.HTTPError as error:
                return Reply(route, type(error).__name__, time.perf_counter() - began)
            holder[0] = response
            return self._reply(route, response, began)

        reply = self.send(request)
        response = holder[0]
        answered = reply.status in (200, 201, 202) and response is not None
        is_json = answered and response.headers.get("content-type", "") == "application/json"
        return reply, response.json() if is_json else None

    def _reply(self, route: str, response: httpx.Response, began: float) -> Reply:
        """The reply; a refusal with ``Retry-After`` is waited out (until the run is over)."""
        latency = time.perf_counter() - began
        refused = response.status_code in (429, 503) and "retry-after" in response.headers
        if refused:
            wait = float(response.headers["retry-after"])
            time.sleep(max(0.0, min(wait, self.stop - time.monotonic())))
        return Reply(route, response.status_code, latency, refused)

    # ------------------------------------------------------------------------------ actions

    def ask(self) -> None:
        question = self.rng.choice(self.questions)
        body = {"question": question, "collection": "guide"}
        self.call("POST /v1/ask", "POST", "/v1/ask", json=body)

    def chat(self) -> None:
        body = {
            "model": "guide",
            "stream": True,
            "messages": [{"role": "user", "content": self.rng.choice(self.questions)}],
        }

        def request() -> Reply:
            route = "POST /v1/chat/completions (stream)"
            began = time.perf_counter()
            try:
                with self.http.stream("POST", "/v1/chat/completions", json=body) as response:
                    if response.status_code != 200:
                        response.read()
                        return self._reply(route, response, began)
                    lines = [line for line in response.iter_lines() if line.startswith("data: ")]
            except httpx.HTTPError as error:
                return Reply(route, type(error).__name__, time.perf_counter() - began)
            failed = not lines or lines[-1] != "data: [DONE]" or any('"error"' in x for x in lines)
            return Reply(route, "stream-error" if failed else 200, time.perf_counter() - began)

        self.send(request)

    def list_documents(self) -> None:
        route = "GET /v1/collections/{name}/documents"
        self.call(route, "GET", "/v1/collections/guide/documents")

    def upload(self) -> None:
        name = f"soak-note-{self.rng.randrange(NOTES)}.md"
        text = f"# Soak note\n\nRevision {self.rng.randrange(10**9)} of {name}.\n"
        files = {"files": (name, text.encode(), "text/markdown")}
        route = "POST /v1/collections/{name}/documents"
        reply, body = self.call(route, "POST", "/v1/collections/notes/documents", files=files)
        if reply.status == 202:
            self.follow("ingest", body["job_id"])

    def batch(self) -> None:
        rows = self.rng.sample(self.questions, 2)
        data = "".join(json.dumps({"question": q}) + "\n" for q in rows).encode()
        files = {"file": ("questions.jsonl", data, "application/x-ndjson")}
        form = {"collection": "guide"}
        reply, body = self.call("POST /v1/batch", "POST", "/v1/batch", files=files, data=form)
        if reply.status == 202 and self.follow("batch", body["job_id"]) == "succeeded":
            route = "GET /v1/batch/{job_id}/download"
            self.call(route, "GET", f"/v1/batch/{body['job_id']}/download")

    def follow(self, kind: str, job_id: str) -> str:
        """Poll the job until it has ended (however long the run has left); its status."""
        began = time.perf_counter()
        while True:
            reply, job = self.call("GET /v1/jobs/{job_id}", "GET", f"/v1/jobs/{job_id}")
            if job is not None and job["status"] in ("succeeded", "failed", "cancelled"):
                self.tally.job(kind, job["status"], time.perf_counter() - began)
                return str(job["status"])
            if job is None and reply.status != 200 and not reply.retry_after:
                self.tally.job(kind, f"unfollowed ({reply.status})", time.perf_counter() - began)
                return "unknown"
            time.sleep(POLL_S)

    def run(self, stop: float, think_s: float, actions_left: int | None = None) -> None:
        """Actions chosen by :data:`WEIGHTS` until ``stop`` (the last one is finished), or
        ``actions_left`` of them."""
        self.stop = stop
        actions = {
            "ask": self.ask,
            "chat": self.chat,
            "list": self.list_documents,
            "upload": self.upload,
            "batch": self.batch,
        }
        names, weights = list(WEIGHTS), list(WEIGHTS.values())
        try:
            while time.monotonic() < stop and actions_left != 0:
                actions[self.rng.choices(names, weights)[0]]()
                time.sleep(self.rng.uniform(0, 2 * think_s))
                actions_left = None if actions_left is None else actions_left - 1
        except Exception as error:  # a bug of this client: the run's figures would be wrong
            self.tally.crashed.append(repr(error))
            raise
        finally:
            self.http.close()


@dataclass(frozen=True)
class Traffic:
    """How many clients, for how long (or how many actions each), their pauses and seed."""

    clients: int
    seconds: float
    think_s: float
    seed: int
    actions: int | None = None


def traffic(url: str, tally: Tally, questions: list[str], plan: Traffic) -> None:
    """``plan.clients`` threads of :class:`Client`; returns when all have finished."""
    stop = time.monotonic() + plan.seconds
    threads = []
    for index in range(plan.clients):
        client = Client(url, tally, random.Random(f"{plan.seed}-{index}"), questions)
        run = (stop, plan.think_s, plan.actions)
        threads.append(threading.Thread(target=client.run, args=run))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if tally.crashed:
        raise SystemExit(f"{len(tally.crashed)} clients failed: {tally.crashed[0]}")


class Memory:
    """The server's RSS (its process and children), sampled every :data:`RSS_EVERY_S`."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.samples: list[tuple[float, int]] = []
        self._done = threading.Event()
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def rss(self) -> int:
        processes = [self.process, *self.process.children(recursive=True)]
        return sum(p.memory_info().rss for p in processes)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(RSS_EVERY_S):
            self.samples.append((round(time.monotonic() - self._began, 1), self.rss()))


def load_questions() -> list[dict[str, Any]]:
    """The guide's questions, each with its gold pages (``source``)."""
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def prepare(url: str) -> None:
    """The guide uploaded into ``guide`` (its ingest job waited for) and ``notes`` created."""
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as http:
        for name in ("guide", "notes"):
            http.post("/v1/collections", json={"name": name}).raise_for_status()
        files = [("files", (p.name, p.read_bytes(), "text/markdown")) for p in GUIDE.glob("*.md")]
        job = http.post("/v1/collections/guide/documents", files=files).json()["job_id"]
        while (state := http.get(f"/v1/jobs/{job}").json())["status"] in ("queued", "running"):
            time.sleep(POLL_S)
        if state["status"] != "succeeded":
            raise SystemExit(f"the guide was not ingested: {state}")


def right_answer(url: str, row: dict[str, Any]) -> dict[str, Any]:
    """One normal ``/v1/ask``: its status, answer and cited pages, and whether it cites one of
    the question's gold pages."""
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {"question": row["question"], "collection": "guide"}
    response = httpx.post(f"{url}/v1/ask", json=body, headers=headers, timeout=600)
    answer = response.json() if response.status_code == 200 else {}
    cited = sorted({Path(c["source"]).name for c in answer.get("citations", [])})
    return {
        "status": response.status_code,
        "answer": answer.get("answer"),
        "cited": cited,
        "right": response.status_code == 200 and bool(set(cited) & set(row["source"])),
    }


def route_stats(replies: list[Reply]) -> dict[str, dict[str, Any]]:
    """Per route: the count of each status, how many refusals were waited out, and the
    latency p50/p95/p99 of its 2xx replies (seconds)."""
    stats: dict[str, dict[str, Any]] = {}
    for route in sorted({r.route for r in replies}):
        mine = [r for r in replies if r.route == route]
        ok = [r.latency_s for r in mine if isinstance(r.status, int) and 200 <= r.status < 300]
        stats[route] = {
            "requests": len(mine),
            "by_status": dict(sorted(Counter(str(r.status) for r in mine).items())),
            "retried_after": sum(r.retry_after for r in mine),
            **{f"p{q}_s": percentile(ok, q / 100) for q in (50, 95, 99)},
        }
    return stats


def server_errors(replies: list[Reply]) -> list[Reply]:
    """The 5xx replies other than a 503 with ``Retry-After``."""
    return [
        r
        for r in replies
        if isinstance(r.status, int) and r.status >= 500 and not (r.status == 503 and r.retry_after)
    ]


def failed(replies: list[Reply]) -> list[Reply]:
    """The exchanges with no status: a transfer that broke, a stream that did not end well."""
    return [r for r in replies if isinstance(r.status, str)]


def goals(tally: Tally, rss: tuple[int, int], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal with what was measured and whether it was met."""
    errors, broken = server_errors(tally.replies), failed(tally.replies)
    growth = rss[1] / rss[0] - 1
    cited = ", ".join(after["cited"]) or "nothing"
    return [
        {
            "what": "5xx other than 503 with Retry-After",
            "measured": len(errors),
            "goal": "0",
            "met": not errors,
        },
        {
            "what": "failed transfers or streams",
            "measured": len(broken),
            "goal": "0",
            "met": not broken,
        },
        {
            "what": "server RSS growth, start → end",
            "measured": f"{growth:+.1%} ({rss[0] / 2**20:.0f} → {rss[1] / 2**20:.0f} MiB)",
            "goal": f"< {RSS_GOAL:.0%}",
            "met": growth < RSS_GOAL,
        },
        {
            "what": "a normal /v1/ask afterwards cites the right page",
            "measured": f"{after['status']}, cites {cited}",
            "goal": "yes",
            "met": after["right"],
        },
    ]


def show(report: dict[str, Any]) -> None:
    def s(value: float | None) -> str:
        return f"{value:7.2f}" if value is not None else "      -"

    print(
        f"{report['clients']} clients x {report['minutes']:g} min (after {report['warmup_s']:g} s "
        f"of warm-up); {sum(r['requests'] for r in report['routes'].values())} requests"
    )
    print(f"  {'goal':<52} {'measured':<34} {'goal':<6} met")
    for goal in report["goals"]:
        measured = str(goal["measured"])
        print(f"  {goal['what']:<52} {measured:<34} {goal['goal']:<6} {goal['met']}")
    print(f"  {'route':<40} {'requests':>8} {'waited':>6} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7}")
    for route, stats in report["routes"].items():
        print(
            f"  {route:<40} {stats['requests']:>8} {stats['retried_after']:>6} "
            f"{s(stats['p50_s'])} {s(stats['p95_s'])} {s(stats['p99_s'])}  {stats['by_status']}"
        )
    print(f"  jobs: {report['jobs']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clients",
        type=int,
        default=32,
        choices=range(1, 129),
        metavar="1..128",
        help="client threads (default 32)",
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="the counted run (10)")
    parser.add_argument(
        "--warmup-s", type=float, default=60.0, help="traffic before RSS is first taken (60)"
    )
    parser.add_argument(
        "--think-s", type=float, default=1.0, help="mean pause between a client's actions (1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the clients' random choices (0)")
    args = parser.parse_args()
    if not 0.5 <= args.minutes <= 240:
        parser.error("--minutes must be between 0.5 and 240")
    if not 0 <= args.warmup_s <= 600 or args.think_s < 0:
        parser.error("--warmup-s must be between 0 and 600, --think-s at least 0")

    rows = load_questions()
    questions = [str(row["question"]) for row in rows]
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="lorag-soak-") as work:
        settings, _ = stage(Path(work), [])
        env = {"LORAG_COLLECTION": "guide"}
        server, url = start_server(settings.data_dir, Path(work) / "server.log", KEY, env)
        try:
            prepare(url)
            before = right_answer(url, rows[FINAL_QUESTION])
            warmup = Traffic(args.clients, args.warmup_s, args.think_s, args.seed + 1)
            traffic(url, tally, questions, warmup)
            memory = Memory(server.pid)
            rss_start = memory.rss()
            memory.start()
            tally.counting = True
            began = time.perf_counter()
            plan = Traffic(args.clients, args.minutes * 60, args.think_s, args.seed)
            traffic(url, tally, questions, plan)
            seconds = time.perf_counter() - began
            tally.counting = False
            memory.stop()
            rss_end = memory.rss()
            after = right_answer(url, rows[FINAL_QUESTION])
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)

    report = {
        "machine": machine(),
        "clients": args.clients,
        "minutes": args.minutes,
        "warmup_s": args.warmup_s,
        "think_s": args.think_s,
        "seconds": round(seconds, 1),
        "weights": WEIGHTS,
        "max_new_tokens": settings.generation.max_new_tokens,
        "queue_size": settings.api.queue_size,
        "goals": goals(tally, (rss_start, rss_end), after),
        "routes": route_stats(tally.replies),
        "jobs": dict(sorted(tally.jobs.items())),
        "job_p50_s": {kind: percentile(s, 0.5) for kind, s in sorted(tally.job_seconds.items())},
        "rss_start_bytes": rss_start,
        "rss_end_bytes": rss_end,
        "rss_samples": memory.samples,
        "answer_before": before,
        "answer_after": after,
    }
    show(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    raise SystemExit(0 if all(goal["met"] for goal in report["goals"]) else 1)


if __name__ == "__main__":
    main()
