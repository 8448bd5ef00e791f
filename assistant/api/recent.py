"""The answers this server gave lately, by answer id (the request id of ``/v1/ask``, which its
audit line carries), so that ``POST /v1/feedback`` can rate one with what it rested on.

Only the last ``api.feedback_answers`` answers are kept, in memory: feedback on an older answer,
or one given before a restart, is refused (404), never attached to the wrong answer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from assistant.core.types import Answer


@dataclass(frozen=True)
class GivenAnswer:
    """An answer as it was given: to which key, from which collection, by which adapter."""

    key_id: str
    collection: str
    adapter: str | None
    """``NAME@VERSION``; ``None``: the base model."""
    answer: Answer


class RecentAnswers:
    """The last ``size`` answers by answer id (thread-safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._answers: OrderedDict[str, GivenAnswer] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, answer_id: str, given: GivenAnswer) -> None:
        """Keep ``given`` under ``answer_id`` (the oldest answer goes when full)."""
        with self._lock:
            self._answers[answer_id] = given
            self._answers.move_to_end(answer_id)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)

    def find(self, answer_id: str) -> GivenAnswer | None:
        """The answer given under ``answer_id``, while it is among the last ones."""
        with self._lock:
            return self._answers.get(answer_id)
