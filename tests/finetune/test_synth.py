"""RAFT data from a collection: tiny real models, the real embedded store and retriever.

The tiny generator writes no usable question, so most examples are extractive; a scripted teacher
(a deterministic Generator passed through the ``teacher`` argument) checks that model-written
pairs are parsed, checked against their chunk and deduplicated.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.core.errors import CollectionNotFoundError, ConfigError, LoragError
from assistant.core.prompt import DEFAULT_TEMPLATE
from assistant.core.settings import ChunkingSettings, Settings
from assistant.core.types import Chunk, Hit
from assistant.runtime import Runtime
from finetune.data import parse_record
from finetune.synth import POOL_FACTOR, build_raft_dataset, cloze_pairs, parse_pairs

KB = "kb"
DOCS = {
    "thames.md": (
        "# The Thames\n\nThe river Thames flows through London and reaches the North Sea. "
        "It is 346 kilometres long and passes Oxford on the way.\n\n"
        "In 1858 the Great Stink closed Parliament for weeks, until engineers built sewers."
    ),
    "curie.md": (
        "# Marie Curie\n\nThe physicist Marie Curie won two Nobel prizes, in 1903 and 1911. "
        "She was born in Warsaw and worked in Paris for most of her life.\n\n"
        "Her laboratory measured radioactivity with an electrometer built by Pierre Curie."
    ),
    "bread.md": (
        "# Bread\n\nBread is made from flour, water, salt and yeast, then baked at 230 degrees. "
        "A sourdough starter replaces the yeast in traditional country loaves.\n\n"
        "The baker in Lyon sells 400 loaves every morning before eight o'clock."
    ),
    "moon.md": (
        "# The Moon landing\n\nIn 1969 the crew of Apollo 11 walked on the Moon while "
        "600 million people watched on television. Neil Armstrong stepped out first.\n\n"
        "The astronauts brought back 21 kilograms of lunar rock for the laboratories in Houston."
    ),
    "warehouse.md": (
        "# The warehouse\n\nThe warehouse moved to Utrecht in spring and now ships 1200 "
        "parcels a day. Its manager, Anna Visser, hired twelve new drivers.\n\n"
        "Deliveries to Rotterdam leave at six and arrive before the shops open."
    ),
}


@pytest.fixture
def runtime(tiny_settings: Settings, tmp_path: Path) -> Iterator[Runtime]:
    settings = tiny_settings.model_copy(
        update={"chunking": ChunkingSettings(chunk_tokens=32, overlap_tokens=4)}
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text + "\n", encoding="utf-8")
    rt = Runtime(settings)
    assert rt.ingestor(KB).ingest([docs]).ok
    yield rt
    rt.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def eligible_distractors(rt: Runtime, question: str, oracle: Chunk, answer: str, k: int) -> list:
    """The chunk ids the retriever ranks first for ``question``, minus the oracle and chunks
    holding the answer: what the distractors must be."""

    def words(text: str) -> str:
        return " " + " ".join(re.findall(r"\w+", text.lower())) + " "

    return [
        hit.chunk.id
        for hit in rt.engine.retrieve(question, KB, top_k=1 + POOL_FACTOR * k)
        if hit.chunk.id != oracle.id
        and hit.chunk.text != oracle.text
        and words(answer) not in words(hit.chunk.text)
    ][:k]


def test_dataset_is_raft_shaped(runtime: Runtime, tmp_path: Path) -> None:
    out = tmp_path / "raft" / "train.jsonl"
    report = build_raft_dataset(
        runtime,
        KB,
        out,
        teacher=None,
        max_chunks=8,
        questions_per_chunk=2,
        distractors=2,
        abstain_fraction=0.25,
        seed=7,
    )
    records = read_jsonl(out)
    store = {chunk.id: chunk for chunk in runtime.store.chunks(KB)}
    assert len(records) == report.examples >= 8
    assert report.chunks_used <= 8
    assert sum(report.origins.values()) == report.examples
    abstaining = [r for r in records if r["oracle_chunk_id"] is None]
    assert len(abstaining) == report.abstain_examples == int(0.25 * len(records) + 0.5)
    assert report.source_doc_ids == sorted({doc for r in records for doc in r["doc_ids"]})
    assert len({r["question"] for r in records}) == len(records)  # deduplicated

    for record in records:
        assert set(record) == {
            "question",
            "sources",
            "answer",
            "chunk_ids",
            "oracle_chunk_id",
            "doc_ids",
            "origin",
        }
        assert parse_record(record).format == "rag"
        assert record["origin"] in ("model", "extractive")
        chunks = [store[chunk_id] for chunk_id in record["chunk_ids"]]  # all in the store
        assert record["doc_ids"] == [chunk.doc_id for chunk in chunks]
        assert record["sources"] == [
            DEFAULT_TEMPLATE.format_source(n, Hit(chunk, 0.0, 0.0))
            for n, chunk in enumerate(chunks, start=1)
        ]
        assert len(set(record["chunk_ids"])) == len(chunks)
        oracle_id = record["oracle_chunk_id"]
        if oracle_id is None:
            assert record["answer"] == DEFAULT_TEMPLATE.abstain_answer
            assert 1 <= len(chunks) <= 2
            retrieved = {h.chunk.id for h in runtime.engine.retrieve(record["question"], KB, 7)}
            assert set(record["chunk_ids"]) <= retrieved
            continue
        position = record["chunk_ids"].index(oracle_id) + 1
        assert record["answer"].endswith(f" [{position}]")
        answer = record["answer"].removesuffix(f" [{position}]")
        assert answer.lower() in store[oracle_id].text.lower()
        distractors = [chunk_id for chunk_id in record["chunk_ids"] if chunk_id != oracle_id]
        assert oracle_id not in distractors
        assert sorted(distractors) == sorted(
            eligible_distractors(runtime, record["question"], store[oracle_id], answer, 2)
        )

    # The extractive questions blank out their answer in a sentence of the oracle.
    extractive = [r for r in records if r["origin"] == "extractive" and r["oracle_chunk_id"]]
    assert extractive
    for record in extractive:
        answer = record["answer"].rsplit(" [", 1)[0]
        sentence = record["question"].removeprefix('What fills the blank in "')[: -len('"?')]
        assert sentence.replace("_____", answer) in store[record["oracle_chunk_id"]].text


def test_the_same_seed_writes_the_same_file(runtime: Runtime, tmp_path: Path) -> None:
    options = {"max_chunks": 6, "questions_per_chunk": 1, "distractors": 2, "teacher": None}
    first = build_raft_dataset(
        runtime, KB, tmp_path / "a.jsonl", abstain_fraction=0.3, seed=1, **options
    )
    build_raft_dataset(runtime, KB, tmp_path / "b.jsonl", abstain_fraction=0.3, seed=1, **options)
    build_raft_dataset(runtime, KB, tmp_path / "c.jsonl", abstain_fraction=0.3, seed=2, **options)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()
    assert first.examples == 6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files


class ScriptedTeacher:
    """A deterministic Generator standing in for a capable teacher model: for a passage about
    the warehouse it writes a good pair, the same pair again, an answer the passage does not
    hold, one that only repeats the question, and an unanswered question."""

    model_id = "scripted-teacher"
    context_window = 4096

    def __init__(self) -> None:
        self.prompts: list[list[dict[str, str]]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def render(self, messages: list[dict[str, str]]) -> str:
        return "\n".join(message["content"] for message in messages)

    def load_adapter(self, path: str, name: str) -> None:
        raise NotImplementedError

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        adapter: str | None = None,
    ) -> Iterator[str]:
        self.prompts.append(messages)
        if "Utrecht" not in messages[-1]["content"]:
            return iter(["I am not sure what to ask."])
        return iter(
            [
                "Here are the questions.\n",
                "1. **Q:** Where did the warehouse move in spring?\n   **A:** Utrecht.\n",
                "2. Question: Where did the warehouse move in spring? Answer: Utrecht\n",
                "Q: Who owns the warehouse?\nA: Napoleon Bonaparte\n",
                "Q: Did the warehouse move to Utrecht?\nA: Utrecht\n",
                "Q: How many parcels ship a day?\n",
            ]
        )


def test_teacher_pairs_are_checked_against_their_chunk(runtime: Runtime, tmp_path: Path) -> None:
    teacher = ScriptedTeacher()
    out = tmp_path / "train.jsonl"
    report = build_raft_dataset(
        runtime,
        KB,
        out,
        teacher=teacher,
        max_chunks=100,
        questions_per_chunk=3,
        distractors=1,
        abstain_fraction=0.0,
        seed=0,
    )
    # Every chunk was asked about (max_chunks exceeds them); some mention Utrecht (overlaps).
    asked = [prompt[-1]["content"] for prompt in teacher.prompts]
    assert all(
        any(c.text in prompt for prompt in asked)
        for c in runtime.store.chunks(KB)
        if len(c.text.split()) >= 10
    )
    utrecht = sum("Utrecht" in prompt for prompt in asked)
    assert utrecht >= 1
    records = read_jsonl(out)
    model = [r for r in records if r["origin"] == "model"]
    assert [r["question"] for r in model] == ["Where did the warehouse move in spring?"]
    assert model[0]["answer"].startswith("Utrecht [")
    # Per Utrecht chunk: the repeat, Napoleon (not in the chunk) and the answer the question
    # gives away are dropped; after the first chunk, the good pair is a repeat too.
    assert report.dropped == {
        "duplicate": 2 * utrecht - 1,
        "trivial": utrecht,
        "unsupported": utrecht,
    }
    assert report.origins == {"extractive": report.examples - 1, "model": 1}
    assert report.abstain_examples == 0
    assert all(r["oracle_chunk_id"] for r in records)


def test_parse_pairs_reads_the_shapes_models_write() -> None:
    reply = (
        "Answer: an answer before any question\n"
        "Sure! Here are two questions:\n"
        "Q1: Where does the river flow\n"
        "A1: Through London.\n"
        '**Question 2:** "Who won two prizes?"\n'
        "**Answer 2:** Marie Curie [1]\n"
        "Q: When? A: In 1969\n"
        "Q: A question without an answer?"
    )
    assert parse_pairs(reply) == [
        ("Where does the river flow?", "Through London"),
        ("Who won two prizes?", "Marie Curie"),
        ("When?", "In 1969"),
    ]
    assert parse_pairs("nothing to see") == []


def test_cloze_questions_blank_numbers_then_names_then_long_words() -> None:
    text = (
        "Short line.\n"
        "In 1969 the crew of Apollo walked on the Moon before breakfast. "
        "the astronauts returned safely home afterwards\n"
        "Then I saw a B-17 bomber fly over."  # not "17" (part of a name) nor "I" (one letter)
    )
    pairs = cloze_pairs(text, random.Random(0))
    answers = [answer for _, answer in pairs]
    assert answers[0] == "1969"
    assert set(answers[1:4]) == {"Apollo", "Moon", "B-17"}
    assert set(answers[4:]) == {"breakfast", "astronauts", "returned", "afterwards"}
    assert pairs[0][0] == (
        'What fills the blank in "In _____ the crew of Apollo walked on the Moon before '
        'breakfast."?'
    )
    assert cloze_pairs(text, random.Random(0)) == pairs


def test_bad_options_and_collections_are_refused(runtime: Runtime, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    with pytest.raises(ConfigError, match="needs distractors >= 1"):
        build_raft_dataset(runtime, KB, out, distractors=0, abstain_fraction=0.1)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        build_raft_dataset(runtime, KB, out, abstain_fraction=1.5)
    with pytest.raises(ConfigError, match="at least 1"):
        build_raft_dataset(runtime, KB, out, max_chunks=0)
    with pytest.raises(CollectionNotFoundError, match="unknown collection 'nope'"):
        build_raft_dataset(runtime, "nope", out)
    runtime.store.create_collection("empty", runtime.embedder.dimension)
    with pytest.raises(LoragError, match="ingest documents into it first"):
        build_raft_dataset(runtime, "empty", out)
    assert not out.exists()
