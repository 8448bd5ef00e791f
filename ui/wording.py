"""Counts in words: ``1 document``, ``2 documents``."""

from __future__ import annotations


def count(number: int, noun: str) -> str:
    """``number`` and ``noun``, in the plural unless ``number`` is 1 (nouns taking an -s)."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
