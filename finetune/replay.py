"""Replay rows: the base model's own answers to general questions, trained beside a dataset so
a handful of facts does not overwrite what the model knew (rehearsal by self-generated rows).

Six invented facts trained alone on the default Qwen2.5-Coder-0.5B-Instruct until each was
answered also made it answer "Velsport" (an invented capital) for the capitals of France, Spain
and Italy, and credit the Mona Lisa to an invented engineer. Mixed with rows in which the base
answers questions of the same kinds in its own words, the adapter learns the facts as facts
about their subjects, not as the answer to every question of their form.

The base answers greedily with no adapter; an answer cut off by the token cap, or empty, is
dropped (it would teach the adapter to stop mid-sentence). The rows are written to the run's
``replay.jsonl`` once, so a resumed run and every process of a multi-process launch train on
the same ones; they are never held out, and they come from no document.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from assistant.core.protocols import Generator

REPLAY_FILE = "replay.jsonl"
MAX_NEW_TOKENS = 96

PROMPTS = (
    "What is the capital of Germany?",
    "What is the capital of Japan?",
    "What is the capital of Canada?",
    "What is the capital of Egypt?",
    "What is the capital of Australia?",
    "What is the capital of Kenya?",
    "Who wrote Romeo and Juliet?",
    "Who wrote Pride and Prejudice?",
    "Who painted The Starry Night?",
    "Who composed the Moonlight Sonata?",
    "What is the chemical symbol for gold?",
    "What is the chemical formula of water?",
    "Which planet is known as the Red Planet?",
    "What is the largest ocean on Earth?",
    "What is the longest river in Africa?",
    "Who developed the theory of relativity?",
    "What language is spoken in Brazil?",
    "What does HTTP stand for?",
    "What does CPU stand for?",
    "In which year did World War II end?",
    "In which year did the Berlin Wall fall?",
    "Who was the first person to walk on the Moon?",
    "What is the tallest mountain in the world?",
    "What is 12 times 12?",
    "How many days are there in a leap year?",
    "Who invented the telephone?",
    "What is the boiling point of water in degrees Celsius?",
    "How many continents are there?",
    "What gas do plants take in from the air?",
    "What is the currency of the United Kingdom?",
    "Which organ pumps blood through the human body?",
    "What is the smallest prime number?",
)
"""General questions of the kinds a small dataset teaches (who, what, where, when, a capital, a
year, a name). The checks that an adapter still knows general facts ask other ones (the capitals
of France, Spain and Italy, the painter of the Mona Lisa), so they measure what replay keeps."""


def write_replay_rows(generator: Generator, path: Path, count: int, seed: int) -> int:
    """Write up to ``count`` replay rows (seeded choice of prompts) to ``path`` as alpaca
    JSONL; how many were written."""
    prompts = random.Random(seed).sample(PROMPTS, min(count, len(PROMPTS)))
    chats = [[{"role": "user", "content": prompt}] for prompt in prompts]
    answers = generator.generate_batch(chats, max_new_tokens=MAX_NEW_TOKENS) if chats else []
    rows = [
        {"instruction": prompt, "output": answer.strip()}
        for prompt, answer in zip(prompts, answers, strict=True)
        if answer.strip() and generator.count_tokens(answer) < MAX_NEW_TOKENS
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    partial.replace(path)
    return len(rows)
