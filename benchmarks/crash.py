"""Crash loops: ``kill -9`` an ingest, a batch run and a fine-tuning run at random moments, run
each again until it finishes, and compare what it leaves with a run that was never killed.

- ingest: the same point count, the same point ids, the same payloads (the ingest time aside)
  and the same kept originals as a clean ingest of the same files;
- batch (``--resume``): every question answered exactly once, with the clean run's answers;
- fine-tuning (``--resume``): one registered version, whose per-step losses match an
  uninterrupted run's within bf16 noise.

Each round starts from an empty data folder and kills its command 1 to 3 times, each at a moment
drawn uniformly from the clean run's duration (seeded), before letting it finish. The goal is
every round identical; the figure beside it is how long a killed run took to finish, over the
clean run's time. ``tests/test_crash_loops.py`` runs a few rounds on the tiny models in CI.

    python benchmarks/crash.py                   # 20 rounds of each, default models
    python benchmarks/crash.py --rounds 3 --skip finetune
    LORAG_GENERATOR__MODEL=HuggingFaceTB/SmolLM2-135M-Instruct python benchmarks/crash.py \
        --skip ingest batch --examples 12 --finetune-set max_steps=12 \
        --out benchmarks/results/crash-finetune.json   # the README's fine-tuning row
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LORAG = Path(sys.executable).parent / "lorag"
RESULTS = Path(__file__).resolve().parent / "results"
SettingsFor = Callable[[Path], Any]
"""Settings (``assistant.core.settings.Settings``) on a given data folder."""


@dataclass
class Round:
    """One round: how many kills landed mid-run, whether the end state matched the clean
    run's, what differed, and how long the killed run took in all."""

    kills: int
    identical: bool
    seconds: float
    differences: list[str] = field(default_factory=list)


@dataclass
class Loop:
    """A crash loop's rounds beside the clean run they are compared with."""

    name: str
    clean_seconds: float
    rounds: list[Round]

    @property
    def identical(self) -> int:
        return sum(r.identical for r in self.rounds)

    def summary(self) -> dict[str, Any]:
        slowdown = [r.seconds / self.clean_seconds for r in self.rounds]
        return {
            "rounds": len(self.rounds),
            "identical": self.identical,
            "goal": f"{len(self.rounds)}/{len(self.rounds)} identical",
            "kills_mid_run": sum(r.kills for r in self.rounds),
            "clean_seconds": round(self.clean_seconds, 2),
            "killed_run_seconds_over_clean_median": round(sorted(slowdown)[len(slowdown) // 2], 2),
            "round_details": [asdict(r) for r in self.rounds],
        }


def run(args: Sequence[str], env: dict[str, str]) -> float:
    """Run ``lorag ARGS`` to the end (it must succeed); its wall time."""
    started = time.perf_counter()
    done = subprocess.run([str(LORAG), *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"lorag {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return time.perf_counter() - started


def killed_at(args: Sequence[str], env: dict[str, str], delay: float) -> bool:
    """Start ``lorag ARGS`` and ``kill -9`` it after ``delay`` seconds; False when it had
    already ended (successfully: anything else is an error)."""
    process = subprocess.Popen(
        [str(LORAG), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.communicate()
        return True
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"lorag {' '.join(args)} exited {process.returncode}:\n{stderr}")
    return False


def env_for(base: dict[str, str], data_dir: Path) -> dict[str, str]:
    """``base`` on ``data_dir``, whose model cache is the one shared by every data folder of
    the loop (``data_dir/../cache``): the first run converts the models, the others reuse them."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shared = data_dir.parent / "cache"
    shared.mkdir(exist_ok=True)
    if not (data_dir / "cache").exists():
        (data_dir / "cache").symlink_to(shared, target_is_directory=True)
    return {**base, "LORAG_DATA_DIR": str(data_dir)}


# ------------------------------------------------------------------------------------ ingest


def ingest_state(settings: Any, collection: str) -> dict[str, Any]:
    """What an ingest leaves: every point's payload by id (the ingest time aside) and the
    sha256 of every kept original, by path under the collection's originals folder."""
    from assistant.runtime import Runtime

    runtime = Runtime(settings)
    try:
        points = {
            chunk.id: {k: v for k, v in asdict(chunk).items() if k != "ingested_at"}
            for chunk in runtime.store.chunks(collection)
        }
    finally:
        runtime.close()
    originals = settings.data_dir / "originals" / collection
    kept = {
        str(p.relative_to(originals)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(originals.rglob("*"))
        if p.is_file()
    }
    return {"points": points, "originals": kept}


def compare_ingest(clean: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """What differs between two :func:`ingest_state` results (empty: identical)."""
    problems = []
    if len(found["points"]) != len(clean["points"]):
        problems.append(f"{len(found['points'])} points, clean {len(clean['points'])}")
    missing = clean["points"].keys() - found["points"].keys()
    extra = found["points"].keys() - clean["points"].keys()
    if missing or extra:
        problems.append(f"ids: {len(missing)} missing, {len(extra)} extra")
    changed = [i for i in clean["points"].keys() & found["points"].keys()
               if clean["points"][i] != found["points"][i]]  # fmt: skip
    if changed:
        problems.append(f"{len(changed)} payloads differ")
    if found["originals"] != clean["originals"]:
        problems.append("kept originals differ")
    return problems


def ingest_loop(
    work: Path, docs: Path, env: dict[str, str], settings_for: SettingsFor, rounds: int, seed: int
) -> Loop:
    args = ["ingest", str(docs), "--collection", "kb", "--no-progress"]
    clean_dir = work / "ingest-clean"
    clean_s = run(args, env_for(env, clean_dir))
    clean = ingest_state(settings_for(clean_dir), "kb")
    rng = random.Random(seed)
    done = []
    for n in range(rounds):
        data_dir = work / f"ingest-{n}"
        started = time.perf_counter()
        kills = sum(
            killed_at(args, env_for(env, data_dir), rng.uniform(0, clean_s))
            for _ in range(rng.randint(1, 3))
        )
        run(args, env_for(env, data_dir))
        seconds = time.perf_counter() - started
        problems = compare_ingest(clean, ingest_state(settings_for(data_dir), "kb"))
        done.append(Round(kills, not problems, seconds, problems))
        shutil.rmtree(data_dir)
    return Loop("ingest", clean_s, done)


# ------------------------------------------------------------------------------------- batch


def answers_of(path: Path) -> list[tuple[str, str]]:
    """(id, answer) of each row of a JSONL answers file, in file order."""
    from assistant.batch.output import read_answers

    return [(str(row["id"]), str(row["answer"])) for row in read_answers(path)]


def batch_loop(
    work: Path, docs: Path, questions: Path, env: dict[str, str], rounds: int, seed: int
) -> Loop:
    data_dir = work / "batch-data"
    run(["ingest", str(docs), "--collection", "kb", "--no-progress"], env_for(env, data_dir))
    batch_env = env_for(env, data_dir)
    clean_out = work / "batch-clean.jsonl"
    base = ["batch", str(questions), "--collection", "kb", "--no-progress"]
    run([*base, "--output", str(work / "batch-warm-up.jsonl")], batch_env)  # converts the model
    clean_s = run([*base, "--output", str(clean_out)], batch_env)
    clean = answers_of(clean_out)
    rng = random.Random(seed)
    done = []
    for n in range(rounds):
        out = work / f"batch-{n}.jsonl"
        args = [*base, "--output", str(out), "--resume"]
        started = time.perf_counter()
        kills = sum(
            killed_at(args, batch_env, rng.uniform(0, clean_s)) for _ in range(rng.randint(1, 3))
        )
        run(args, batch_env)
        seconds = time.perf_counter() - started
        found = answers_of(out)
        problems = []
        ids = [i for i, _ in found]
        if len(ids) != len(set(ids)):
            problems.append(f"{len(ids) - len(set(ids))} questions answered twice")
        if sorted(set(found)) != sorted(clean):
            problems.append("answers differ from the clean run's")
        done.append(Round(kills, not problems, seconds, problems))
        out.unlink()
    return Loop("batch", clean_s, done)


# ------------------------------------------------------------------------------- fine-tuning


def losses_of(data_dir: Path, name: str) -> tuple[int, list[float]]:
    """How many versions of ``name`` are registered, and the newest one's per-step losses."""
    from assistant.core.files import read_json_object

    adapters = data_dir / "adapters" / name
    found = adapters.iterdir() if adapters.is_dir() else iter(())
    versions = sorted((p for p in found if p.name.isdigit()), key=lambda p: int(p.name))
    if not versions:
        return 0, []
    metrics = read_json_object(versions[-1] / "metrics.json", ValueError)
    return len(versions), [float(step["loss"]) for step in metrics["history"]]


def finetune_loop(
    work: Path,
    dataset: Path,
    env: dict[str, str],
    rounds: int,
    seed: int,
    tolerance: float,
    overrides: Sequence[str] = (),
) -> Loop:
    """``lorag finetune`` on ``dataset`` with the recipe's ``overrides`` (``key=value``)."""
    sets = [arg for override in overrides for arg in ("--set", override)]
    args = ["finetune", "--data", str(dataset), "--name", "crash", *sets]
    run(args, env_for(env, work / "finetune-warm-up"))  # converts the model into the shared cache
    clean_dir = work / "finetune-clean"
    clean_s = run(args, env_for(env, clean_dir))
    _, clean = losses_of(clean_dir, "crash")
    rng = random.Random(seed)
    done = []
    for n in range(rounds):
        data_dir = work / f"finetune-{n}"
        round_env = env_for(env, data_dir)
        started = time.perf_counter()
        kills, finished = 0, False
        for _ in range(rng.randint(1, 3)):
            finished = not killed_at(
                _finetune_args(args, data_dir), round_env, rng.uniform(0, clean_s)
            )
            if finished:  # ended before its kill: a finished run is not run again
                break
            kills += 1
        if not finished:
            run(_finetune_args(args, data_dir), round_env)
        seconds = time.perf_counter() - started
        versions, losses = losses_of(data_dir, "crash")
        problems = []
        if versions != 1:
            problems.append(f"{versions} versions registered")
        if len(losses) != len(clean) or any(
            abs(a - b) > tolerance * max(1.0, abs(b)) for a, b in zip(losses, clean, strict=False)
        ):
            problems.append(f"losses {losses} differ from the clean run's {clean}")
        done.append(Round(kills, not problems, seconds, problems))
        shutil.rmtree(data_dir)
    return Loop("finetune", clean_s, done)


def _finetune_args(args: list[str], data_dir: Path) -> list[str]:
    """``args``, with ``--resume`` once a killed run has left its run folder."""
    runs = data_dir / "runs"
    return [*args, "--resume"] if runs.is_dir() and any(runs.iterdir()) else args


# -------------------------------------------------------------------------------------- main


def write_corpus(folder: Path, files: int) -> Path:
    """``files`` small Markdown notes, each with facts of its own."""
    folder.mkdir(parents=True)
    for i in range(files):
        body = "\n\n".join(
            f"Paragraph {j} of note {i}: warehouse {i} ships order {i * 100 + j} on day {j}."
            for j in range(6)
        )
        (folder / f"note{i:03d}.md").write_text(f"# Note {i}\n\n{body}\n", encoding="utf-8")
    return folder


def write_questions(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            row = {"id": f"q{i}", "question": f"Which order does warehouse {i} ship on day 2?"}
            out.write(json.dumps(row) + "\n")
    return path


def write_dataset(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            row = {
                "instruction": f"Which order does warehouse {i} ship on day 2?",
                "output": f"Warehouse {i} ships order {i * 100 + 2} on day 2.",
            }
            out.write(json.dumps(row) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--examples", type=int, default=24, help="fine-tuning rows")
    parser.add_argument("--skip", nargs="*", default=[], choices=["ingest", "batch", "finetune"])
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--tolerance", type=float, default=1e-2, help="relative loss difference")
    parser.add_argument(
        "--finetune-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a recipe override for the fine-tuning runs (repeatable), as `lorag finetune --set`",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "crash.json")
    options = parser.parse_args()

    from harness import machine

    from assistant.core.settings import load_settings

    env = {k: v for k, v in os.environ.items() if k != "LORAG_DATA_DIR"}
    loops: list[Loop] = []
    with tempfile.TemporaryDirectory(prefix="lorag-crash-") as tmp:
        work = Path(tmp)
        docs = write_corpus(work / "docs", options.files)
        if "ingest" not in options.skip:
            loops.append(
                ingest_loop(
                    work,
                    docs,
                    env,
                    lambda d: load_settings(data_dir=d),
                    options.rounds,
                    options.seed,
                )
            )
        if "batch" not in options.skip:
            questions = write_questions(work / "questions.jsonl", options.questions)
            loops.append(batch_loop(work, docs, questions, env, options.rounds, options.seed))
        if "finetune" not in options.skip:
            dataset = write_dataset(work / "facts.jsonl", options.examples)
            loops.append(
                finetune_loop(
                    work,
                    dataset,
                    env,
                    options.rounds,
                    options.seed,
                    options.tolerance,
                    options.finetune_set,
                )
            )
    results = {
        "machine": machine(),
        "generator": load_settings().generator.model,
        "finetune_set": options.finetune_set,
        "loops": {loop.name: loop.summary() for loop in loops},
    }
    for loop in loops:
        summary = results["loops"][loop.name]
        print(
            f"{loop.name:9s} {loop.identical}/{len(loop.rounds)} rounds identical to a clean run "
            f"(goal {summary['goal']}), {summary['kills_mid_run']} kills mid-run; a killed run "
            f"took {summary['killed_run_seconds_over_clean_median']}x the clean run's "
            f"{summary['clean_seconds']} s (median)"
        )
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
