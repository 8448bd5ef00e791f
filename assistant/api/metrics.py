"""Prometheus metrics of one app: requests, latencies, tokens generated, the generation queue.

Each app has its own registry (several apps can live in one process, as in the tests); ``GET
/metrics`` renders it in the Prometheus text format. Routes are labelled by their template
(``/v1/jobs/{job_id}``), never by the raw path, so the label set stays small.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """The instruments the middleware, the generation queue and the job runner update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lorag_http_requests",
            "HTTP requests by route and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lorag_http_request_duration_seconds",
            "Time from request to the end of the response, by route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "lorag_generated_tokens",
            "Tokens generated in answers.",
            registry=self.registry,
        )
        self.first_token = Histogram(
            "lorag_time_to_first_token_seconds",
            "Time from the start of an answer to its first generated token.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "lorag_generation_queue_depth",
            "Answers admitted and not finished (the one running and those waiting).",
            registry=self.registry,
        )
        self.rejected = Counter(
            "lorag_generation_rejected",
            "Answers refused with 503: the queue was full, or the answer ran past the timeout.",
            ["reason"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "lorag_rate_limited",
            "Requests refused with 429: the key was over its requests per minute.",
            ["key_id"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "lorag_jobs_finished",
            "Background jobs that ended, by kind and status.",
            ["kind", "status"],
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
