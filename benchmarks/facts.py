"""Six invented facts, trained as a new user would (``lorag finetune --data facts.jsonl``, the
default recipe), then asked closed-book: how many facts the adapter answers, and how many
general questions (none of them among the replay prompts) it still answers right.

lorag: the default recipe, replay rows included. Baseline: the same recipe with
``replay_examples=0`` (the facts alone). Same model, data, seed and steps in one run.

Prints both with the ratio; writes benchmarks/results/facts.json.
Run: ``python benchmarks/facts.py``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' facts, and lorag itself from a checkout

from assistant.core.settings import Settings  # noqa: E402
from assistant.engine import Done  # noqa: E402
from assistant.runtime import Runtime  # noqa: E402
from assistant.training import FinetunePlan, train_adapter  # noqa: E402
from tests.finetune.test_real_model import FACTS  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "facts.json"
FACT_KEYS = ["Okafor", "2031", "Okafor", "Velsport", "Velsport", "Brisk Hollow"]
GENERAL = {
    "What is the capital of France?": "Paris",
    "What is the capital of Spain?": "Madrid",
    "What is the capital of Italy?": "Rome",
    "Who painted the Mona Lisa?": "Leonardo",
    "Who wrote Hamlet?": "Shakespeare",
    "What is the chemical symbol for iron?": "Fe",
}


def run(work: Path, overrides: dict[str, str]) -> dict[str, object]:
    """Train on the facts with ``overrides`` in a fresh data dir under ``work`` (its model
    cache shared), then ask every fact and general question closed-book."""
    data = work / "facts.jsonl"
    data.write_text(
        "".join(json.dumps({"instruction": q, "output": a}) + "\n" for q, a in FACTS), "utf-8"
    )
    data_dir = work / "data"
    data_dir.mkdir()
    cached = Settings(_env_file=None).cache_dir
    if cached.is_dir():
        (data_dir / "cache").symlink_to(cached)
    runtime = Runtime(Settings(_env_file=None, data_dir=data_dir))
    try:
        started = time.perf_counter()
        announced: list[str] = []
        plan = FinetunePlan(name="facts", data=data, overrides=overrides)
        trained = train_adapter(runtime, plan, announce=announced.append)
        train_s = time.perf_counter() - started
        key = runtime.use_adapter("facts")

        def closed_book(question: str) -> str:
            done = list(runtime.engine.stream_closed_book(question, key))[-1]
            assert isinstance(done, Done)
            return done.answer.text

        facts = {q: closed_book(q) for q, _ in FACTS}
        general = {q: closed_book(q) for q in GENERAL}
    finally:
        runtime.close()
    return {
        "plan": announced[0],
        "train_s": round(train_s, 1),
        "steps": trained.result.steps,
        "final_loss": round(trained.result.final_loss, 4),
        "facts_answered": sum(k in a for k, a in zip(FACT_KEYS, facts.values(), strict=True)),
        "general_kept": sum(GENERAL[q] in a for q, a in general.items()),
        "answers": {**facts, **general},
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="lorag-facts-") as work:
        (Path(work) / "lorag").mkdir()
        (Path(work) / "baseline").mkdir()
        lorag = run(Path(work) / "lorag", {})
        baseline = run(Path(work) / "baseline", {"replay_examples": "0"})
    figures = {"facts": len(FACTS), "general": len(GENERAL), "lorag": lorag, "baseline": baseline}
    print(json.dumps(figures, indent=2))
    for name, result in (("lorag (replay)", lorag), ("baseline (no replay)", baseline)):
        print(
            f"{name}: facts {result['facts_answered']}/{len(FACTS)}, general kept "
            f"{result['general_kept']}/{len(GENERAL)}, {result['steps']} steps in "
            f"{result['train_s']} s"
        )
    kept = lorag["general_kept"], baseline["general_kept"]
    print(f"general kept, lorag / baseline: {kept[0]} / {kept[1]}")
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
