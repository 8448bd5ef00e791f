"""The training loop: plain PyTorch over the base that serving loads, with a PEFT adapter.

``train`` tokenises the examples (answer-only labels), then runs optimiser steps of
``batch_size * grad_accumulation`` examples: packed rows or padded micro-batches, bf16 autocast
where supported, the loss summed over answer tokens and divided by their number in the step,
gradient clipping, AdamW (bitsandbytes' paged AdamW for QLoRA on CUDA) and a warm-up + cosine /
linear / constant schedule. No ``transformers.Trainer``: every token it processes is a real one.

The data order is a pure function of the seed and the step (a seeded permutation per epoch over
the examples sorted by content), so a run resumed from a checkpoint — after a kill -9 too —
continues with exactly the batches, dropout masks and optimiser state it would have had, and
ends with the same adapter.

Under ``torchrun`` / ``accelerate launch`` (:mod:`finetune.distributed`) every process runs
``train`` with the same arguments: each takes its share of every step's examples, the loss is
divided by the answer tokens of the whole step (summed over the processes) and the gradients are
summed before clipping, so a step's update is the one a single process makes on the whole step
(the same loss curve, up to float rounding). Only rank 0 writes checkpoints (with every process's
torch generator states), the adapter and the run files; a resumed run loads the same checkpoint
on every process. A finished run leaves in ``run_dir``::

    adapter/               PEFT adapter (adapter_config.json, adapter_model.safetensors)
    checkpoints/step-N/    the last two checkpoints
    train_config.json      the TrainConfig (a recipe: load_config reads it back)
    prompt_template.json   the prompt template the examples were rendered with
    metrics.json           losses, throughput, memory, data fingerprint (and evaluation)
    loss.png               train and eval loss curves
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.core.errors import LoragError
from assistant.core.files import write_json
from assistant.core.models import PICKLE_SUFFIXES
from assistant.core.prompt import DEFAULT_TEMPLATE
from assistant.core.settings import Settings
from assistant.core.tracing import record_span
from finetune.batches import Batch, loss_sum, loss_totals, make_batches
from finetune.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    remove_staging,
    save_checkpoint,
    torch_rng,
)
from finetune.config import TrainConfig
from finetune.data import Example, TokenizedExample, fingerprint, tokenize_example
from finetune.distributed import SINGLE, Ranks
from finetune.modeling import TrainableModel, build_model, trainable_parameters
from finetune.report import plot_losses

if TYPE_CHECKING:
    import torch
    from peft import PeftModel

ADAPTER_DIR = "adapter"


class TrainingError(LoragError):
    """A run cannot start or finish as asked."""


@dataclass(frozen=True)
class StepReport:
    """What the progress callback gets after every optimiser step."""

    step: int
    total_steps: int
    loss: float
    learning_rate: float
    tokens_per_second: float
    eval_loss: float | None


Progress = Callable[[StepReport], None]


@dataclass(frozen=True)
class TrainResult:
    """A finished run: where its adapter is, how training went, what it was trained on."""

    run_dir: Path
    adapter_dir: Path
    method: str
    base_model: str
    steps: int
    final_loss: float
    eval_loss: float | None
    tokens: int
    train_seconds: float
    peak_rss_mb: float
    processes: int
    bf16: bool
    trainable_parameters: int
    data_fingerprint: str
    train_examples: int
    eval_examples: int
    truncated_examples: int
    chunk_ids: list[str]
    resumed_from_step: int | None
    history: list[dict[str, Any]]
    eval_history: list[dict[str, Any]]
    evaluation: dict[str, Any] | None = field(default=None)

    @property
    def tokens_per_second(self) -> float:
        """Real (non-padding) tokens trained per second of optimiser steps."""
        return self.tokens / self.train_seconds if self.train_seconds else 0.0

    def metrics(self) -> dict[str, Any]:
        """What ``metrics.json`` holds."""
        data = asdict(self)
        for key in ("run_dir", "adapter_dir", "chunk_ids"):
            data.pop(key)
        data["tokens_per_second"] = self.tokens_per_second
        data["source_chunks"] = len(self.chunk_ids)
        return data


def step_examples(count: int, per_step: int, seed: int, step: int) -> list[int]:
    """Indices of the examples of 0-based optimiser ``step``: a seeded permutation per epoch."""
    import numpy as np

    steps_per_epoch = -(-count // per_step)
    epoch, position = divmod(step, steps_per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(count)
    return [int(i) for i in order[position * per_step : (position + 1) * per_step]]


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1024


def train(
    settings: Settings,
    config: TrainConfig,
    train_examples: Sequence[Example],
    eval_examples: Sequence[Example],
    run_dir: Path,
    resume: bool = False,
    progress: Progress | None = None,
    ranks: Ranks = SINGLE,
) -> TrainResult:
    """Train an adapter on ``train_examples`` into ``run_dir`` (see the module docstring).

    With ``resume``, continue from the newest checkpoint in ``run_dir`` (or start if it has
    none). Without it, a ``run_dir`` that already holds checkpoints is refused. ``ranks``: this
    process among those of a multi-process launch (every one returns the same result; ``progress``
    is called on each).
    """
    from transformers import get_scheduler

    if not train_examples:
        raise TrainingError("no training examples")
    run_dir = Path(run_dir)
    if ranks.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_staging(run_dir)
    latest = latest_checkpoint(run_dir)
    if latest is not None and not resume:
        raise TrainingError(
            f"{str(run_dir)!r} already holds checkpoints of a run: resume it, or train into a "
            "new run folder"
        )

    trainable = build_model(ranks.for_rank(settings), config)
    tokenizer, length = trainable.tokenizer, config.max_seq_length
    ordered = sorted(train_examples, key=Example.digest)
    train_tokens = [tokenize_example(e, tokenizer, length) for e in ordered]
    eval_tokens = [tokenize_example(e, tokenizer, length) for e in eval_examples]
    eval_batches = _batches(ranks.share(eval_tokens), config, trainable)

    total = config.total_steps(len(train_tokens))
    parameters = trainable_parameters(trainable.model)
    ranks.copy_from_main(parameters)
    optimizer = _optimizer(parameters, config, trainable)
    scheduler = get_scheduler(
        config.lr_scheduler,
        optimizer,
        num_warmup_steps=config.warmup(total),
        num_training_steps=total,
    )
    run = {
        "config": config.model_dump(mode="json", exclude={"save_every", "eval_every"}),
        "data_fingerprint": fingerprint(train_examples),
        "base_model": settings.generator.model,
    }
    state: dict[str, Any] = {"history": [], "eval_history": [], "tokens": 0, "train_seconds": 0.0}
    start = 0
    if resume and latest is not None:
        restored = load_checkpoint(
            latest, trainable.model, optimizer, scheduler, _json_ready(run), ranks.rank
        )
        state = {key: restored[key] for key in state}
        start = restored["step"]

    per_step = config.batch_size * config.grad_accumulation
    for step in range(start + 1, total + 1):
        indices = step_examples(len(train_tokens), per_step, config.seed, step - 1)
        batches = _batches([train_tokens[i] for i in ranks.share(indices)], config, trainable)
        learning_rate = optimizer.param_groups[0]["lr"]
        began = time.perf_counter()
        loss = _optimiser_step(
            trainable, batches, optimizer, parameters, config.max_grad_norm, ranks
        )
        scheduler.step()
        seconds = time.perf_counter() - began
        tokens = round(ranks.sum([sum(batch.tokens for batch in batches)])[0])
        state["tokens"] += tokens
        state["train_seconds"] += seconds
        state["history"].append(
            {"step": step, "loss": loss, "lr": learning_rate, "tokens": tokens, "seconds": seconds}
        )
        if ranks.main:  # one span per step, with every process's tokens and the mean loss
            done = state["history"][-1]
            record_span("train.step", seconds, {f"lorag.train.{k}": v for k, v in done.items()})
        eval_loss = None
        eval_due = step == total or (config.eval_every and step % config.eval_every == 0)
        if eval_tokens and eval_due:
            eval_sum, eval_count = ranks.sum(
                loss_totals(
                    trainable.model,
                    eval_batches,
                    trainable.device,
                    trainable.autocast,
                    trainable.virtual_tokens,
                )
            )
            eval_loss = eval_sum / max(eval_count, 1)
            state["eval_history"].append({"step": step, "loss": eval_loss})
        if config.save_every and step % config.save_every == 0 and step < total:
            rngs = ranks.gather(torch_rng())
            if ranks.main:
                saved = {**run, **state}
                save_checkpoint(run_dir, step, trainable.model, optimizer, scheduler, saved, rngs)
            ranks.barrier()
        if progress is not None:
            report = StepReport(step, total, loss, learning_rate, tokens / seconds, eval_loss)
            progress(report)

    adapter_dir = run_dir / ADAPTER_DIR
    if ranks.main:
        save_adapter(trainable.model, adapter_dir)
    result = TrainResult(
        run_dir=run_dir,
        adapter_dir=adapter_dir,
        method=config.method,
        base_model=settings.generator.model,
        steps=total,
        final_loss=state["history"][-1]["loss"] if state["history"] else float("nan"),
        eval_loss=state["eval_history"][-1]["loss"] if state["eval_history"] else None,
        tokens=state["tokens"],
        train_seconds=state["train_seconds"],
        peak_rss_mb=peak_rss_mb(),
        processes=ranks.world_size,
        bf16=trainable.bf16,
        trainable_parameters=sum(p.numel() for p in parameters),
        data_fingerprint=fingerprint([*train_examples, *eval_examples]),
        train_examples=len(train_examples),
        eval_examples=len(eval_examples),
        truncated_examples=sum(t.truncated for t in [*train_tokens, *eval_tokens]),
        chunk_ids=sorted({c for e in [*train_examples, *eval_examples] for c in e.chunk_ids}),
        resumed_from_step=start if start else None,
        history=state["history"],
        eval_history=state["eval_history"],
    )
    if ranks.main:
        write_run_files(result, config)
    ranks.barrier()
    return result


def write_run_files(result: TrainResult, config: TrainConfig) -> None:
    """``train_config.json``, ``prompt_template.json``, ``metrics.json`` and ``loss.png``."""
    run_dir = result.run_dir
    write_json(run_dir / "train_config.json", config.model_dump(mode="json"))
    write_json(run_dir / "prompt_template.json", DEFAULT_TEMPLATE.to_dict())
    write_json(run_dir / "metrics.json", result.metrics())
    plot_losses(result.history, result.eval_history, run_dir / "loss.png")


def save_adapter(model: PeftModel, target: Path) -> Path:
    """Save the adapter as safetensors into ``target`` (replaced atomically); refuse pickles."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        # No embedding layers are trained; "auto" would look the base up on the Hub to check.
        model.save_pretrained(str(staging), safe_serialization=True, save_embedding_layers=False)
        pickles = sorted(p.name for p in staging.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise TrainingError(f"saving the adapter wrote pickle files: {', '.join(pickles)}")
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
            os.replace(target, old / target.name)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


# --------------------------------------------------------------------------- internals


def _batches(
    examples: Sequence[TokenizedExample], config: TrainConfig, trainable: TrainableModel
) -> list[Batch]:
    return make_batches(
        examples,
        packing=config.packing,
        batch_size=config.batch_size,
        max_len=config.max_seq_length,
        pad_id=trainable.pad_id,
    )


def _optimizer(
    parameters: list[torch.nn.Parameter], config: TrainConfig, trainable: TrainableModel
) -> torch.optim.Optimizer:
    """Paged AdamW (bitsandbytes) for QLoRA on CUDA; torch's AdamW otherwise."""
    import torch

    rate, decay = config.learning_rate, config.weight_decay
    if config.method == "qlora" and trainable.device.type == "cuda":
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW(parameters, lr=rate, weight_decay=decay)
    return torch.optim.AdamW(parameters, lr=rate, weight_decay=decay)


def _optimiser_step(
    trainable: TrainableModel,
    batches: Sequence[Batch],
    optimizer: torch.optim.Optimizer,
    parameters: list[torch.nn.Parameter],
    max_grad_norm: float,
    ranks: Ranks,
) -> float:
    """Accumulate gradients over ``batches``, sum them over the processes, clip, step; the
    step's mean answer-token loss (the whole step's, on every process)."""
    import torch

    (answer_tokens,) = ranks.sum([sum(batch.answer_tokens for batch in batches)])
    total = 0.0
    for batch in batches:
        with trainable.autocast():
            loss = loss_sum(trainable.model, batch.to(trainable.device), trainable.virtual_tokens)
        (loss / answer_tokens).backward()
        total += float(loss.detach())
    ranks.sum_gradients(parameters)
    if max_grad_norm:
        torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    (total,) = ranks.sum([total])
    return total / answer_tokens


def _json_ready(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as it reads back from JSON (tuples become lists), to compare with a checkpoint."""
    import json

    return dict(json.loads(json.dumps(data)))
