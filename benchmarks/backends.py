"""Generator back ends side by side: transformers (the baseline) vs llama.cpp, same model.

One model (default Qwen2.5-Coder-0.5B-Instruct from its pinned packages) and one 600-token
quoref RAG prompt: for each back end the median time to first token and decode tokens/s over
``--repeats`` runs after a warm-up, and the ratio llama.cpp / transformers from the same run.
Parity: greedy answers of both back ends on ``--parity`` quoref prompts (the share of identical
answers). Results go to ``benchmarks/results/backends.json``.

With ``--adapter FOLDER`` (a PEFT LoRA of that model) the adapter is active on every run and the
back ends are transformers + PEFT (the baseline), lorag's llama.cpp back end (ik_llama.cpp)
with the adapter's GGUF LoRA, and that runtime driven raw (the same token ids and
greedy loop, without lorag's generator around it); also the resident memory each generator
with its adapter adds; results go to ``backends-adapter.json``.

    python benchmarks/backends.py [--model HF_ID_OR_FOLDER] [--gguf FILE] [--adapter FOLDER]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generation import RAG_TOKENS, Messages, rag_messages

from assistant.core.models import load_generator, load_serving_generator
from assistant.core.models.llama_ik import IkLlama
from assistant.core.protocols import Generator
from assistant.core.settings import GeneratorSettings, Settings

RESULTS = Path(__file__).resolve().parent / "results" / "backends.json"
ADAPTER_RESULTS = RESULTS.with_name("backends-adapter.json")


def timed(
    generator: Generator, messages: Messages, new: int, adapter: str | None = None
) -> tuple[float, float, int]:
    started = time.perf_counter()
    first, pieces = 0.0, []
    for piece in generator.stream(messages, new, adapter=adapter):
        first = first or time.perf_counter() - started
        pieces.append(piece)
    total = time.perf_counter() - started
    return first, total, generator.count_tokens("".join(pieces))


def timed_raw(runtime: IkLlama, ids: list[int], new: int, adapter: str) -> tuple[float, float, int]:
    """The runtime alone: prefill, then greedy decoding until the end of turn or ``new``."""
    started = time.perf_counter()
    runtime.use(adapter)
    runtime.clear()
    logits, first, count = runtime.decode(ids), 0.0, 0
    for _ in range(new):
        token = int(logits.argmax())
        first = first or time.perf_counter() - started
        if runtime.is_end(token):
            break
        count += 1
        logits = runtime.decode([token])
    return first, time.perf_counter() - started, count


def measure(
    run: Callable[[int], tuple[float, float, int]], new: int, repeats: int
) -> dict[str, float]:
    run(8)  # warm up
    runs = [run(new) for _ in range(repeats)]
    ttft = statistics.median(r[0] for r in runs)
    total = statistics.median(r[1] for r in runs)
    tokens = statistics.median(r[2] for r in runs)
    return {
        "ttft_s": round(ttft, 3),
        "tokens_per_s": round((tokens - 1) / (total - ttft), 1),
        "tokens": tokens,
    }


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


def adapter_figures(
    settings: Settings, adapter: Path, messages: Messages, args: argparse.Namespace
) -> dict:
    """The three ways of answering with ``adapter`` (see the module doc), and their parity."""
    from assistant.core.models.generators import load_llamacpp_generator
    from assistant.core.models.llamacpp_generator import LlamaCppGenerator

    before = resident_mib()
    torch_generator = load_generator(settings)
    torch_generator.load_adapter(str(adapter), "a")
    torch_generator.generate([{"role": "user", "content": "Say hello."}], 4, adapter="a")
    between = resident_mib()
    llama_generator = load_llamacpp_generator(settings)
    llama_generator.load_adapter(str(adapter), "a")
    llama_generator.generate([{"role": "user", "content": "Say hello."}], 4, adapter="a")
    memory = {
        "transformers_peft": round(between - before),
        "llamacpp_lora": round(resident_mib() - between),
    }
    assert isinstance(llama_generator, LlamaCppGenerator)
    runtime = llama_generator._runtime  # the same loaded runtime, driven without lorag
    assert isinstance(runtime, IkLlama)
    tokenizer = torch_generator._tokenizer
    ids = tokenizer(torch_generator.render(messages), add_special_tokens=False)
    figures = {
        "transformers_peft": measure(
            lambda new: timed(torch_generator, messages, new, "a"),
            args.max_new_tokens,
            args.repeats,
        ),
        "llamacpp_lora": measure(
            lambda new: timed(llama_generator, messages, new, "a"),
            args.max_new_tokens,
            args.repeats,
        ),
        "raw_runtime_lora": measure(
            lambda new: timed_raw(runtime, list(ids["input_ids"]), new, "a"),
            args.max_new_tokens,
            args.repeats,
        ),
    }
    print(figures, flush=True)
    prompts = quoref_prompts(args.parity)
    same = sum(
        llama_generator.generate_batch([prompt], 24, "a")[0].strip()
        == torch_generator.generate_batch([prompt], 24, "a")[0].strip()
        for prompt in prompts
    )
    ours, raw, baseline = (
        figures["llamacpp_lora"],
        figures["raw_runtime_lora"],
        figures["transformers_peft"],
    )
    return {
        "adapter": str(adapter),
        "figures": figures,
        "resident_mib_model_and_adapter": memory,
        "engine_over_raw_runtime": {
            "decode": round(ours["tokens_per_s"] / raw["tokens_per_s"], 2),
            "ttft": round(ours["ttft_s"] / raw["ttft_s"], 2),
        },
        "llamacpp_over_transformers": {
            "decode": round(ours["tokens_per_s"] / baseline["tokens_per_s"], 2),
            "ttft": round(ours["ttft_s"] / baseline["ttft_s"], 2),
            "answer_48_tokens": round(
                _answer_time(ours, args.max_new_tokens)
                / _answer_time(baseline, args.max_new_tokens),
                2,
            ),
        },
        "parity_identical_share": round(same / len(prompts), 2),
        "parity_prompts": len(prompts),
    }


def resident_mib() -> float:
    """This process's resident memory now, in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _answer_time(figures: dict[str, float], tokens: int) -> float:
    return figures["ttft_s"] + (tokens - 1) / figures["tokens_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="Qwen/Qwen2.5-Coder-0.5B-Instruct")
    parser.add_argument("--gguf", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--parity", type=int, default=10)
    parser.add_argument("--adapter", type=Path, default=None, help="a PEFT LoRA folder")
    args = parser.parse_args()

    data_dir = Path(os.environ.get("LORAG_DATA_DIR", Settings(_env_file=None).data_dir))
    spec = GeneratorSettings(model=args.model, gguf=args.gguf)
    settings = Settings(_env_file=None, data_dir=data_dir, generator=spec)
    if args.adapter is not None:
        messages = rag_messages(load_generator(settings))  # type: ignore[arg-type]
        report = {
            "model": args.model,
            "prompt_tokens": RAG_TOKENS,
            "max_new_tokens": args.max_new_tokens,
            **adapter_figures(settings, args.adapter, messages, args),
            "load_average_1m": os.getloadavg()[0],
        }
        ADAPTER_RESULTS.write_text(json.dumps(report, indent=2) + "\n")
        summary = (
            "engine_over_raw_runtime",
            "llamacpp_over_transformers",
            "parity_identical_share",
        )
        print(json.dumps({key: report[key] for key in summary}))
        return
    llama_settings = settings.model_copy(
        update={"generator": spec.model_copy(update={"backend": "llamacpp"})}
    )
    torch_generator = load_generator(settings)
    llama_generator = load_serving_generator(llama_settings)
    messages = rag_messages(torch_generator)  # type: ignore[arg-type]
    figures = {
        name: measure(
            lambda new, g=generator: timed(g, messages, new), args.max_new_tokens, args.repeats
        )
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
