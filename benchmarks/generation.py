"""Generation speed on the transformers back end: lorag's loader beside the model loaded
straight from its GGUF.

Both run the real default generator (Qwen2.5-Coder-0.5B-Instruct from its pinned packages; set
``LORAG_GENERATOR__MODEL`` for another) on two chat prompts: a ~600-token RAG prompt (quoref-dev
passages in lorag's prompt template) and a short one. The llama.cpp runtimes are compared with
transformers in ``backends.py``, and the whole engine's time to first token in ``first_token.py``.

- lorag: ``load_generator`` — the GGUF converted once to a safetensors folder, dtype ``auto``,
  torch threads set to the free cores — answering through ``stream`` (what the API serves); time
  to first token is the time to the first text piece the caller receives;
- lorag fp32: the same with ``generator.dtype = float32``, to separate the dtype's share;
- baseline: ``AutoModelForCausalLM.from_pretrained(folder, gguf_file=...)`` in fp32 and a plain
  ``generate()`` (what a naive user does); its time to first token is taken by a streamer that
  only records when the first token arrives.

Each is warmed up first, then timed ``--repeats`` times (median), greedy, with the same
``max_new_tokens``. tokens/s is the decode rate after the first token. Also times the one-time
GGUF conversion in a fresh cache. Prints each figure beside the baseline as a ratio; writes
benchmarks/results/generation.json. Run: ``python benchmarks/generation.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.core.models import (
    HFGenerator,
    load_generator,
    packaged_gguf,
    resolve_generator_path,
)
from assistant.core.prompt import DEFAULT_TEMPLATE
from assistant.core.settings import GeneratorSettings, Settings

REPO = Path(__file__).resolve().parents[1]
QUOREF = REPO.parent / "shared" / "data" / "quoref-dev"
RESULTS = REPO / "benchmarks" / "results" / "generation.json"
RAG_TOKENS = 600
SHORT = [{"role": "user", "content": "Explain in a few sentences why the sky is blue."}]

Messages = list[dict[str, str]]
# One timed run: (seconds to the first token or piece, total seconds, tokens generated).
Run = tuple[float, float, int]


def rag_messages(generator: HFGenerator) -> Messages:
    """A quoref question with its gold passage first, then others, cut to ~RAG_TOKENS tokens."""
    with (QUOREF / "questions.jsonl").open(encoding="utf-8") as lines:
        row = json.loads(next(lines))
    docs = QUOREF / "docs"
    files = [
        docs / row["source"],
        *(p for p in sorted(docs.glob("*.txt")) if p.name != row["source"]),
    ]
    sources: list[str] = []
    for n, path in enumerate(files, start=1):
        words = path.read_text(encoding="utf-8").split()
        source = DEFAULT_TEMPLATE.format_text(n, " ".join(words), path.stem)
        used = generator.count_tokens(
            generator.render(DEFAULT_TEMPLATE.messages(row["question"], sources))
        )
        room = RAG_TOKENS - used
        cost = generator.count_tokens(source)
        if cost <= room:
            sources.append(source)
            continue
        keep = len(words) * room // cost
        sources.append(DEFAULT_TEMPLATE.format_text(n, " ".join(words[:keep]), path.stem))
        break
    return DEFAULT_TEMPLATE.messages(row["question"], sources)


def time_stream(generator: HFGenerator, messages: Messages, max_new_tokens: int) -> Run:
    started = time.perf_counter()
    first = 0.0
    pieces: list[str] = []
    for piece in generator.stream(messages, max_new_tokens):
        first = first or time.perf_counter() - started
        pieces.append(piece)
    total = time.perf_counter() - started
    return first, total, generator.count_tokens("".join(pieces))


def gguf_baseline(gguf: Path) -> Callable[[Messages, int], Run]:
    """A timer for the naive setup: the model loaded from the GGUF file, fp32, plain generate()."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.generation.streamers import BaseStreamer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)

    class FirstToken(BaseStreamer):
        """Records when generate() hands over its first new token (the prompt comes first)."""

        def __init__(self) -> None:
            self.calls = 0
            self.at = 0.0

        def put(self, value: Any) -> None:
            self.calls += 1
            if self.calls == 2:
                self.at = time.perf_counter()

        def end(self) -> None:
            pass

    def run(messages: Messages, max_new_tokens: int) -> Run:
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
        streamer = FirstToken()
        started = time.perf_counter()
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
            streamer=streamer,
        )
        total = time.perf_counter() - started
        return streamer.at - started, total, int(output.shape[1] - inputs["input_ids"].shape[1])

    return run


def measure(
    run: Callable[[Messages, int], Run], messages: Messages, new: int, repeats: int
) -> dict[str, float]:
    run(messages, 8)  # warm up
    runs = [run(messages, new) for _ in range(repeats)]
    ttft = statistics.median(r[0] for r in runs)
    total = statistics.median(r[1] for r in runs)
    tokens = statistics.median(r[2] for r in runs)
    return {
        "ttft_s": ttft,
        "total_s": total,
        "tokens": tokens,
        "tokens_per_s": (tokens - 1) / max(total - ttft, 1e-9),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lorag-bench-") as work:
        settings = Settings(_env_file=None, data_dir=Path(work))
        started = time.perf_counter()
        folder = resolve_generator_path(settings)
        conversion_s = time.perf_counter() - started
        started = time.perf_counter()
        resolve_generator_path(settings)
        cached_resolve_s = time.perf_counter() - started

        started = time.perf_counter()
        ours = load_generator(settings)
        load_s = time.perf_counter() - started
        fp32_settings = settings.model_copy(
            update={"generator": GeneratorSettings(dtype="float32")}
        )
        ours_fp32 = load_generator(fp32_settings)
        prompts = {"rag": rag_messages(ours), "short": SHORT}
        setups: dict[str, Callable[[Messages, int], Run]] = {
            "lorag": lambda m, n: time_stream(ours, m, n),
            "lorag_fp32": lambda m, n: time_stream(ours_fp32, m, n),
        }
        gguf = packaged_gguf(settings.generator.model, settings.cache_dir)
        assert gguf is not None, f"{settings.generator.model} has no packaged GGUF installed"
        started = time.perf_counter()
        setups["baseline_gguf_fp32"] = gguf_baseline(gguf)
        baseline_load_s = time.perf_counter() - started

        prompt_tokens = {name: ours.count_tokens(ours.render(m)) for name, m in prompts.items()}
        results = {
            prompt_name: {
                name: measure(run, messages, args.max_new_tokens, args.repeats)
                for name, run in setups.items()
            }
            for prompt_name, messages in prompts.items()
        }

        import torch

        report = {
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "cores_available": len(os.sched_getaffinity(0)),
                "torch_threads": torch.get_num_threads(),
                "lorag_dtype": str(ours._base.dtype),
            },
            "max_new_tokens": args.max_new_tokens,
            "repeats": args.repeats,
            "conversion_s": conversion_s,
            "cached_resolve_s": cached_resolve_s,
            "converted_folder_mb": sum(p.stat().st_size for p in folder.iterdir()) / 1e6,
            "load_s": {"lorag": load_s, "baseline_gguf_fp32": baseline_load_s},
            "prompt_tokens": prompt_tokens,
            "results": results,
        }

    print(f"GGUF conversion (once) {conversion_s:.1f} s; cached resolve {cached_resolve_s:.2f} s")
    print(f"load: lorag {load_s:.1f} s, baseline from GGUF {baseline_load_s:.1f} s")
    for prompt_name, by_setup in results.items():
        base = by_setup["baseline_gguf_fp32"]
        print(f"\n{prompt_name} prompt ({prompt_tokens[prompt_name]} tokens)")
        for name in setups:
            row = by_setup[name]
            faster = base["ttft_s"] / row["ttft_s"]
            rate = row["tokens_per_s"] / base["tokens_per_s"]
            print(
                f"  {name:<19} TTFT {row['ttft_s']:6.2f} s ({faster:5.2f}x sooner)"
                f"   {row['tokens_per_s']:6.1f} tok/s ({rate:5.2f}x)"
                f"   {row['tokens']:.0f} tokens in {row['total_s']:.1f} s"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
