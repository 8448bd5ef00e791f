"""Per-key request budgets (``requests_per_minute`` on a key in ``api.keys``).

Each limited key has a token bucket holding up to its per-minute budget, refilled continuously;
a request takes one token. A request that finds none is answered 429 with ``Retry-After`` (the
seconds until a token is back) before it reaches the generation queue, so one busy key cannot
fill the queue that every key shares. A key without a budget is not limited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping


class RateLimits:
    """Token buckets by key id; ``clock`` (seconds, monotonic) is the time source."""

    def __init__(
        self, per_minute: Mapping[str, int], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = dict(per_minute)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, key_id: str) -> float:
        """Take a token for ``key_id``: 0.0 when it had one, else the seconds until it will."""
        budget = self.per_minute.get(key_id)
        if budget is None:
            return 0.0
        rate = budget / 60.0
        now = self.clock()
        with self._lock:
            tokens, when = self._buckets.get(key_id, (float(budget), now))
            tokens = min(float(budget), tokens + (now - when) * rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / rate
