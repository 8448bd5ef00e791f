"""Generator back ends side by side: transformers (the baseline) vs llama.cpp, same model.

One model (default Qwen2.5-Coder-0.5B-Instruct from its pinned packages) and one 600-token
quoref RAG prompt: for each back end the median time to first token and decode tokens/s over
``--repeats`` runs after a warm-up, and the ratio llama.cpp / transformers from the same run.
Parity: greedy answers of both back ends on ``--parity`` quoref prompts (the share of identical
answers). Results go to ``benchmarks/results/backends.json``.

    python benchmarks/backends.py [--model HF_ID_OR_FOLDER] [--gguf FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generation import RAG_TOKENS, Messages, rag_messages

from assistant.core.models import load_generator, load_serving_generator
from assistant.core.protocols import Generator
from assistant.core.settings import GeneratorSettings, Settings

RESULTS = Path(__file__).resolve().parent / "results" / "backends.json"


def timed(generator: Generator, messages: Messages, new: int) -> tuple[float, float, int]:
    started = time.perf_counter()
    first, pieces = 0.0, []
    for piece in generator.stream(messages, new):
        first = first or time.perf_counter() - started
        pieces.append(piece)
    total = time.perf_counter() - started
    return first, total, generator.count_tokens("".join(pieces))


def measure(generator: Generator, messages: Messages, new: int, repeats: int) -> dict:
    timed(generator, messages, 8)  # warm up
    runs = [timed(generator, messages, new) for _ in range(repeats)]
    ttft = statistics.median(r[0] for r in runs)
    total = statistics.median(r[1] for r in runs)
    tokens = statistics.median(r[2] for r in runs)
    return {"ttft_s": round(ttft, 3), "tokens_per_s": round((tokens - 1) / (total - ttft), 1)}


def quoref_prompts(count: int) -> list[Messages]:
    from assistant.core.prompt import DEFAULT_TEMPLATE

    docs = Path(__file__).resolve().parents[2] / "shared" / "data" / "quoref-dev"
    with (docs / "questions.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines][: count * 7 : 7]
    prompts = []
    for row in rows:
        text = " ".join((docs / "docs" / row["source"]).read_text(encoding="utf-8").split()[:300])
        source = DEFAULT_TEMPLATE.format_text(1, text, row["source"])
        prompts.append(DEFAULT_TEMPLATE.messages(row["question"], [source]))
    return prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="Qwen/Qwen2.5-Coder-0.5B-Instruct")
    parser.add_argument("--gguf", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--parity", type=int, default=10)
    args = parser.parse_args()

    data_dir = Path(os.environ.get("LORAG_DATA_DIR", Settings(_env_file=None).data_dir))
    spec = GeneratorSettings(model=args.model, gguf=args.gguf)
    settings = Settings(_env_file=None, data_dir=data_dir, generator=spec)
    llama_settings = settings.model_copy(
        update={"generator": spec.model_copy(update={"backend": "llamacpp"})}
    )
    torch_generator = load_generator(settings)
    llama_generator = load_serving_generator(llama_settings)
    messages = rag_messages(torch_generator)  # type: ignore[arg-type]
    figures = {
        name: measure(generator, messages, args.max_new_tokens, args.repeats)
        for name, generator in (("transformers", torch_generator), ("llamacpp", llama_generator))
    }
    print(figures, flush=True)
    prompts = quoref_prompts(args.parity)
    same = sum(
        llama_generator.generate_batch([prompt], 24)[0].strip()
        == torch_generator.generate_batch([prompt], 24)[0].strip()
        for prompt in prompts
    )
    ours, baseline = figures["llamacpp"], figures["transformers"]
    ratios = {
        "decode": round(ours["tokens_per_s"] / baseline["tokens_per_s"], 2),
        "ttft": round(ours["ttft_s"] / baseline["ttft_s"], 2),
    }
    report = {
        "model": args.model,
        "prompt_tokens": RAG_TOKENS,
        "max_new_tokens": args.max_new_tokens,
        "figures": figures,
        "llamacpp_over_transformers": ratios,
        "parity_identical_share": round(same / len(prompts), 2),
        "parity_prompts": len(prompts),
        "load_average_1m": os.getloadavg()[0],
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    summary = ("llamacpp_over_transformers", "parity_identical_share")
    print(json.dumps({key: report[key] for key in summary}))


if __name__ == "__main__":
    main()
