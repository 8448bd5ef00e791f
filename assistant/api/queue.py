"""The bounded generation queue: answers run one at a time on one worker thread.

The generator answers one request at a time (it holds a lock while generating), so answers are
queued for a single worker thread instead of piling up as blocked threads. At most
``api.queue_size`` answers are admitted at once (the one running and those waiting); one more is
refused with :class:`QueueFull`, which the routes answer with 503 and a ``Retry-After`` estimated
from the mean time of recent answers. A waiting answer whose request was dropped (timeout,
client gone) is cancelled before it runs.
"""

from __future__ import annotations

import contextvars
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from assistant.api.metrics import Metrics

T = TypeVar("T")
MAX_RETRY_AFTER_S = 60


class QueueFull(Exception):
    """No room in the queue; ``retry_after`` is a fair guess of when there will be, in seconds."""

    def __init__(self, retry_after: int, size: int) -> None:
        super().__init__(
            f"the server is busy: {size} answers are running or waiting (api.queue_size); "
            f"retry in {retry_after} s"
        )
        self.retry_after = retry_after


class GenerationQueue:
    """Admits at most ``size`` answers at once and runs them in order on one worker thread."""

    def __init__(self, size: int, metrics: Metrics) -> None:
        self.size = size
        self._metrics = metrics
        self._admitted = 0
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lorag-answer")
        self._mean_s = 1.0

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """Run ``work`` on the worker when its turn comes, in the caller's context (so the
        request's trace span is its answer's parent); :class:`QueueFull` when full."""
        with self._lock:
            if self._admitted >= self.size:
                self._metrics.rejected.labels("full").inc()
                raise QueueFull(self._retry_after(), self.size)
            self._admitted += 1
            self._metrics.queue_depth.set(self._admitted)

        context = contextvars.copy_context()

        def timed() -> T:
            started = time.perf_counter()
            try:
                return context.run(work)
            finally:
                self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - started)

        try:
            future = self._worker.submit(timed)
        except RuntimeError:  # shut down
            self._release()
            raise QueueFull(self.retry_after(), self.size) from None
        future.add_done_callback(lambda _: self._release())
        return future

    def retry_after(self) -> int:
        """Seconds until the queue has likely worked through what it holds now."""
        with self._lock:
            return self._retry_after()

    def shutdown(self) -> None:
        """Drop the waiting answers and wait for the running one."""
        self._worker.shutdown(wait=True, cancel_futures=True)

    def _retry_after(self) -> int:
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil(self._mean_s * max(self._admitted, 1))))

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1
            self._metrics.queue_depth.set(self._admitted)
