"""Token buckets per key: a full budget at first, one token back every 60 / budget seconds."""

from __future__ import annotations

import pytest

from assistant.api.rate import RateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_spends_its_budget_then_waits_for_each_token() -> None:
    clock = Clock()
    limits = RateLimits({"ops": 2}, clock=clock)
    assert [limits.take("ops") for _ in range(2)] == [0.0, 0.0]
    assert limits.take("ops") == 30.0  # 2 per minute: one token every 30 s
    clock.now += 20
    assert limits.take("ops") == pytest.approx(10.0)
    clock.now += 10
    assert limits.take("ops") == 0.0
    clock.now += 3600  # a long pause refills the bucket to its budget, no more
    assert [limits.take("ops") for _ in range(3)] == [0.0, 0.0, 30.0]


def test_a_key_without_a_budget_is_not_limited() -> None:
    limits = RateLimits({"ops": 1}, clock=Clock())
    assert all(limits.take("reader") == 0.0 for _ in range(100))
