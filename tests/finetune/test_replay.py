"""Replay rows on a real (tiny) generator: a seeded choice of the shipped prompts, answered by
the base, with the answers the token cap cut off dropped, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.core.models import load_generator
from assistant.core.settings import Settings
from finetune.replay import MAX_NEW_TOKENS, PROMPTS, write_replay_rows


def test_replay_rows_are_the_bases_complete_answers_to_a_seeded_choice_of_prompts(
    tiny_settings: Settings, tmp_path: Path
) -> None:
    generator = load_generator(tiny_settings)
    path = tmp_path / "run" / "replay.jsonl"
    written = write_replay_rows(generator, path, 6, seed=3)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == written <= 6
    assert not list(path.parent.glob("*.partial"))
    for row in rows:
        assert row["instruction"] in PROMPTS
        chat = [{"role": "user", "content": row["instruction"]}]
        answer = generator.generate(chat, MAX_NEW_TOKENS)
        assert row["output"] == answer.strip() and row["output"]
        assert generator.count_tokens(answer) < MAX_NEW_TOKENS
    again = tmp_path / "again.jsonl"
    assert write_replay_rows(generator, again, 6, seed=3) == written
    assert again.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")
    assert write_replay_rows(generator, tmp_path / "none.jsonl", 0, seed=3) == 0
