"""Atomic writes: a file is replaced whole, and a failed write leaves the old one and no litter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.core.files import write_json, write_jsonl, write_text_atomic


def test_json_and_jsonl_round_trip_into_new_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "data.json"
    write_json(target, {"name": "Zoë", "n": [1, 2]})
    assert json.loads(target.read_text(encoding="utf-8")) == {"name": "Zoë", "n": [1, 2]}
    assert "Zoë" in target.read_text(encoding="utf-8")  # non-ASCII kept as is

    lines = tmp_path / "rows.jsonl"
    write_jsonl(lines, [{"q": 1}, {"q": 2}])
    assert [json.loads(line) for line in lines.read_text().splitlines()] == [{"q": 1}, {"q": 2}]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_json(target, {"version": 1})
    with pytest.raises(TypeError):
        write_json(target, {"version": object()})  # not JSON
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "half written \ud800")  # fails inside the temporary file
    assert json.loads(target.read_text()) == {"version": 1}
    write_text_atomic(target, "replaced\n")
    assert target.read_text() == "replaced\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
