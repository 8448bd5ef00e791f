"""On-policy distillation (GKD): the student answers, the teacher scores every token it wrote.

``distill`` trains a fresh adapter on the serving base (the student) towards a ``teacher`` that
shares its tokenizer. Each optimiser step takes ``batch_size * grad_accumulation`` prompts (the
same seeded order as :mod:`finetune.trainer`). With probability ``lmbda`` (drawn from a seeded
generator per step) the step is on-policy: the student samples an answer to each prompt; else
it uses the dataset's answers. Both models then run over prompt + answer (packed or padded as in
``finetune``), and the loss is the generalised JSD of :mod:`finetune.gkd` between their
next-token distributions at the answer positions, summed and divided by the step's answer tokens.

Why lorag's loop and not TRL's ``GKDTrainer``: that trainer is a ``transformers.Trainer``, whose
checkpoints pickle the optimiser and RNG states, whose resume does not replay lorag's data order,
and which pads every batch. This loop reuses ``finetune``'s pieces instead: the model builder,
batches (packing, logits only at answer positions), the pickle-free kill -9 safe checkpoints
(which also restore the sampling RNG, so a resumed run samples the same answers) and the run
folder layout. It calls TRL only for the divergence itself.

The held-out ``eval_loss`` is the mean per-token divergence to the teacher on the student's
greedy answers to the eval prompts: what distillation lowers. A finished run leaves the files of
:mod:`finetune.trainer`, its ``metrics.json`` with a ``distillation`` section.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.core.settings import Settings
from assistant.core.tracing import record_span
from finetune.batches import Batch, make_batches
from finetune.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    remove_staging,
    save_checkpoint,
)
from finetune.config import TrainConfig
from finetune.data import IGNORE_INDEX, Example, TokenizedExample, fingerprint, tokenize_example
from finetune.distill_config import DistillConfig
from finetune.gkd import check_same_tokenizer, divergence_sum
from finetune.modeling import TrainableModel, build_model, trainable_parameters
from finetune.trainer import (
    ADAPTER_DIR,
    Progress,
    StepReport,
    TrainingError,
    TrainResult,
    peak_rss_mb,
    save_adapter,
    step_examples,
    write_run_files,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class DistillResult(TrainResult):
    """A finished distillation run: a :class:`TrainResult` with the ``distillation`` section."""

    distillation: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        return {**super().metrics(), "distillation": self.distillation}


@dataclass(frozen=True)
class Prompt:
    """One example's prompt tokens, and its dataset answer's (with EOS) for off-policy steps."""

    ids: list[int]
    answer_ids: list[int]
    truncated: bool


@dataclass
class Teacher:
    """The frozen teacher model, in eval mode."""

    model: PreTrainedModel
    name: str


def teacher_settings(settings: Settings, teacher: str) -> Settings:
    """``settings`` with the generator replaced by ``teacher`` (loaded the way serving loads)."""
    generator = settings.generator.model_copy(update={"model": teacher})
    return settings.model_copy(update={"generator": generator})


def check_teacher(settings: Settings, teacher: str) -> None:
    """Refuse a teacher whose tokenizer is not the student's, loading the tokenizers only."""
    from transformers import AutoTokenizer

    from assistant.core.models import resolve_generator_path

    def tokenizer(of: Settings) -> PreTrainedTokenizerBase:
        return AutoTokenizer.from_pretrained(resolve_generator_path(of), local_files_only=True)

    check_same_tokenizer(
        tokenizer(settings), tokenizer(teacher_settings(settings, teacher)), teacher
    )


def load_teacher(settings: Settings, teacher: str, student: TrainableModel) -> Teacher:
    """The teacher in the student's precision, frozen; refused if its tokenizer differs."""
    import torch

    from assistant.core.models import load_causal_lm

    dtype = torch.bfloat16 if student.bf16 else torch.float32
    model, tokenizer = load_causal_lm(teacher_settings(settings, teacher), dtype=dtype)
    check_same_tokenizer(student.tokenizer, tokenizer, teacher)
    model.eval()
    model.requires_grad_(False)
    return Teacher(model, teacher)


def distill(
    settings: Settings,
    config: TrainConfig,
    options: DistillConfig,
    train_examples: Sequence[Example],
    eval_examples: Sequence[Example],
    run_dir: Path,
    resume: bool = False,
    progress: Progress | None = None,
) -> DistillResult:
    """Distil ``options.teacher`` into a new adapter on ``train_examples``' prompts in ``run_dir``.

    As :func:`finetune.trainer.train`: ``resume`` continues from the newest checkpoint (the same
    run, after a kill -9 too, ends with the same adapter); without it a ``run_dir`` holding
    checkpoints is refused. A teacher with another tokenizer is refused before any step.
    """
    from transformers import get_scheduler

    if not train_examples:
        raise TrainingError("no training examples")
    if config.method == "prompt_tuning":
        raise TrainingError("distillation trains LoRA or QLoRA adapters, not prompt tuning")
    run_dir = Path(run_dir)
    latest = latest_checkpoint(run_dir)
    if latest is not None and not resume:
        raise TrainingError(
            f"{str(run_dir)!r} already holds checkpoints of a run: resume it, or distil into a "
            "new run folder"
        )
    student = build_model(settings, config)
    teacher = load_teacher(settings, options.teacher, student)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_staging(run_dir)

    ordered = sorted(train_examples, key=Example.digest)
    prompts = prompts_of(ordered, student.tokenizer, config, options)
    eval_prompts = prompts_of(eval_examples, student.tokenizer, config, options)
    total = config.total_steps(len(prompts))
    parameters = trainable_parameters(student.model)
    optimizer = _optimizer(parameters, config)
    scheduler = get_scheduler(
        config.lr_scheduler,
        optimizer,
        num_warmup_steps=config.warmup(total),
        num_training_steps=total,
    )
    run = _json_ready(
        {
            "config": config.model_dump(mode="json", exclude={"save_every", "eval_every"}),
            "distill": options.model_dump(mode="json"),
            "data_fingerprint": fingerprint(train_examples),
            "base_model": settings.generator.model,
        }
    )
    state: dict[str, Any] = {
        "history": [],
        "eval_history": [],
        "tokens": 0,
        "train_seconds": 0.0,
        "sample_seconds": 0.0,
    }
    start = 0
    if resume and latest is not None:
        restored = load_checkpoint(latest, student.model, optimizer, scheduler, expected=run)
        state = {key: restored[key] for key in state}
        start = restored["step"]

    for step in range(start + 1, total + 1):
        entry = _step(student, teacher, prompts, step, (optimizer, scheduler), config, options)
        state["tokens"] += entry["tokens"]
        state["train_seconds"] += entry["seconds"]
        state["sample_seconds"] += entry.pop("sample_seconds")
        state["history"].append(entry)
        record_span(
            "train.step", entry["seconds"], {f"lorag.train.{k}": v for k, v in entry.items()}
        )
        eval_loss = None
        eval_due = step == total or (config.eval_every and step % config.eval_every == 0)
        if eval_prompts and eval_due:
            eval_loss = held_out_divergence(student, teacher, eval_prompts, config, options)
            state["eval_history"].append({"step": step, "loss": eval_loss})
        if config.save_every and step % config.save_every == 0 and step < total:
            save_checkpoint(run_dir, step, student.model, optimizer, scheduler, {**run, **state})
        if progress is not None:
            speed = entry["tokens"] / entry["seconds"]
            progress(StepReport(step, total, entry["loss"], entry["lr"], speed, eval_loss))

    adapter_dir = save_adapter(student.model, run_dir / ADAPTER_DIR)
    data = (train_examples, eval_examples, [*prompts, *eval_prompts])
    result = _result(
        settings, config, options, student, parameters, state, start, data, (run_dir, adapter_dir)
    )
    write_run_files(result, config)
    return result


def prompts_of(
    examples: Sequence[Example],
    tokenizer: PreTrainedTokenizerBase,
    config: TrainConfig,
    options: DistillConfig,
) -> list[Prompt]:
    """Each example's prompt, its start cut so that a sampled answer still fits the row."""
    return [_prompt(example, tokenizer, config, options) for example in examples]


def held_out_divergence(
    student: TrainableModel,
    teacher: Teacher,
    prompts: Sequence[Prompt],
    config: TrainConfig,
    options: DistillConfig,
) -> float:
    """Mean per-token divergence to the teacher on the student's greedy answers to ``prompts``."""
    import torch

    answers = _sample(student, prompts, options, greedy=True)
    batches = _batches(prompts, answers, config, student)
    was_training = student.model.training
    student.model.eval()
    try:
        with torch.no_grad():
            total = sum(
                float(_batch_divergence(student, teacher, batch, options)) for batch in batches
            )
    finally:
        student.model.train(was_training)
    return total / max(sum(batch.answer_tokens for batch in batches), 1)


# --------------------------------------------------------------------------- internals


def _prompt(
    example: Example,
    tokenizer: PreTrainedTokenizerBase,
    config: TrainConfig,
    options: DistillConfig,
) -> Prompt:
    tokens = tokenize_example(example, tokenizer, config.max_seq_length)
    split = next(n for n, label in enumerate(tokens.labels) if label != IGNORE_INDEX)
    room = max(config.max_seq_length - options.max_new_tokens, 1)
    ids = tokens.input_ids[:split]
    return Prompt(ids[-room:], tokens.input_ids[split:], tokens.truncated or len(ids) > room)


def _step(
    student: TrainableModel,
    teacher: Teacher,
    prompts: Sequence[Prompt],
    step: int,
    optimisation: tuple[torch.optim.Optimizer, Any],
    config: TrainConfig,
    options: DistillConfig,
) -> dict[str, Any]:
    """Optimiser step ``step`` (1-based): its prompts, on- or off-policy answers, the update;
    the history entry (with ``sample_seconds``, the time the student spent sampling)."""
    optimizer, scheduler = optimisation
    per_step = config.batch_size * config.grad_accumulation
    indices = step_examples(len(prompts), per_step, config.seed, step - 1)
    on_policy = random.Random(f"{config.seed}/{step}").random() < options.lmbda
    learning_rate = optimizer.param_groups[0]["lr"]
    began = time.perf_counter()
    chosen = [prompts[i] for i in indices]
    answers = (
        _sample(student, chosen, options, greedy=False)
        if on_policy
        else [p.answer_ids for p in chosen]
    )
    sampled = time.perf_counter()
    batches = _batches(chosen, answers, config, student)
    parameters = trainable_parameters(student.model)
    loss = _optimiser_step(student, teacher, batches, optimizer, parameters, config, options)
    scheduler.step()
    return {
        "step": step,
        "loss": loss,
        "lr": learning_rate,
        "tokens": sum(batch.tokens for batch in batches),
        "answer_tokens": sum(batch.answer_tokens for batch in batches),
        "on_policy": on_policy,
        "seconds": time.perf_counter() - began,
        "sample_seconds": sampled - began,
    }


def _sample(
    student: TrainableModel, prompts: Sequence[Prompt], options: DistillConfig, *, greedy: bool
) -> list[list[int]]:
    """The student's answer to each prompt (sampled at ``options.temperature``, or greedy), up to
    and including EOS. One prompt at a time: no padding, so an answer does not depend on which
    other prompts share its step."""
    import torch

    model, eos = student.model, int(student.tokenizer.eos_token_id)
    was_training = model.training
    model.eval()
    answers = []
    try:
        with torch.no_grad(), student.autocast():
            for prompt in prompts:
                ids = torch.tensor([prompt.ids], device=student.device)
                sampling: dict[str, Any] = (
                    {"do_sample": False}
                    if greedy
                    else {"do_sample": True, "temperature": options.temperature, "top_k": 0}
                )
                output = model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=options.max_new_tokens,
                    eos_token_id=eos,
                    pad_token_id=student.pad_id,
                    use_cache=True,
                    top_p=1.0,
                    **sampling,
                )
                answer = [int(t) for t in output[0, len(prompt.ids) :]]
                answers.append(answer[: answer.index(eos) + 1] if eos in answer else answer)
    finally:
        model.train(was_training)
    return answers


def _batches(
    prompts: Sequence[Prompt],
    answers: Sequence[list[int]],
    config: TrainConfig,
    student: TrainableModel,
) -> list[Batch]:
    sequences = [
        TokenizedExample(p.ids + a, [IGNORE_INDEX] * len(p.ids) + a)
        for p, a in zip(prompts, answers, strict=True)
    ]
    return make_batches(
        sequences,
        packing=config.packing,
        batch_size=config.batch_size,
        max_len=config.max_seq_length,
        pad_id=student.pad_id,
    )


def _batch_divergence(
    student: TrainableModel, teacher: Teacher, batch: Batch, options: DistillConfig
) -> torch.Tensor:
    """The summed divergence over ``batch``'s answer positions (the student's graph kept)."""
    import torch

    batch = batch.to(student.device)
    inputs = {
        "input_ids": batch.input_ids,
        "attention_mask": batch.attention_mask,
        "position_ids": batch.position_ids,
        "logits_to_keep": batch.targets != IGNORE_INDEX,
        "use_cache": False,
    }
    with student.autocast():
        with torch.no_grad():
            teacher_logits = teacher.model(**inputs).logits
        student_logits = student.model(**inputs).logits
    return divergence_sum(
        student_logits, teacher_logits, beta=options.beta, temperature=options.temperature
    )


def _optimiser_step(
    student: TrainableModel,
    teacher: Teacher,
    batches: Sequence[Batch],
    optimizer: torch.optim.Optimizer,
    parameters: list[torch.nn.Parameter],
    config: TrainConfig,
    options: DistillConfig,
) -> float:
    """Accumulate the divergence's gradients over ``batches``, clip, step; the per-token mean."""
    import torch

    answer_tokens = max(sum(batch.answer_tokens for batch in batches), 1)
    total = 0.0
    for batch in batches:
        loss = _batch_divergence(student, teacher, batch, options)
        (loss / answer_tokens).backward()
        total += float(loss.detach())
    if config.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total / answer_tokens


def _optimizer(parameters: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    import torch

    return torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)


def _result(
    settings: Settings,
    config: TrainConfig,
    options: DistillConfig,
    student: TrainableModel,
    parameters: list[torch.nn.Parameter],
    state: dict[str, Any],
    start: int,
    data: tuple[Sequence[Example], Sequence[Example], Sequence[Prompt]],
    folders: tuple[Path, Path],
) -> DistillResult:
    """The finished run: ``data`` is (train examples, eval examples, all prompts), ``folders``
    (run folder, adapter folder)."""
    train_examples, eval_examples, prompts = data
    examples = [*train_examples, *eval_examples]
    history = state["history"]
    return DistillResult(
        run_dir=folders[0],
        adapter_dir=folders[1],
        method=config.method,
        base_model=settings.generator.model,
        steps=config.total_steps(len(train_examples)),
        final_loss=history[-1]["loss"] if history else float("nan"),
        eval_loss=state["eval_history"][-1]["loss"] if state["eval_history"] else None,
        tokens=state["tokens"],
        train_seconds=state["train_seconds"],
        peak_rss_mb=peak_rss_mb(),
        bf16=student.bf16,
        trainable_parameters=sum(p.numel() for p in parameters),
        data_fingerprint=fingerprint(examples),
        train_examples=len(train_examples),
        eval_examples=len(eval_examples),
        truncated_examples=sum(p.truncated for p in prompts),
        chunk_ids=sorted({c for e in examples for c in e.chunk_ids}),
        resumed_from_step=start if start else None,
        history=history,
        eval_history=state["eval_history"],
        processes=1,  # distillation runs on one process
        distillation={
            **options.model_dump(mode="json"),
            "on_policy_steps": sum(bool(h["on_policy"]) for h in history),
            "answer_tokens": sum(h["answer_tokens"] for h in history),
            "sample_seconds": state["sample_seconds"],
        },
    )


def _json_ready(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as it reads back from JSON, to compare with a checkpoint's."""
    import json

    return dict(json.loads(json.dumps(data)))
