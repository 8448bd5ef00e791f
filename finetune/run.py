"""The fine-tuning entry point the CLI calls: load → split → train → evaluate → report.

``run_finetune`` returns the :class:`~finetune.trainer.TrainResult` (adapter folder, metrics,
data fingerprint, source chunk ids) for the caller to register the adapter. Under a multi-process
launch every process trains; only rank 0 evaluates and writes.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from assistant.core.files import write_json
from assistant.core.settings import Settings
from assistant.core.training_rows import count_rows
from finetune.config import TrainConfig
from finetune.data import load_examples, split_examples
from finetune.distributed import SINGLE, Ranks
from finetune.evaluate import evaluate_adapter
from finetune.replay import REPLAY_FILE
from finetune.trainer import Progress, TrainResult, train

log = logging.getLogger(__name__)


def run_finetune(
    settings: Settings,
    config: TrainConfig,
    data_path: Path,
    run_dir: Path,
    resume: bool = False,
    progress: Progress | None = None,
    announce: Callable[[str], None] | None = None,
    ranks: Ranks = SINGLE,
) -> TrainResult:
    """Train an adapter on the JSONL dataset ``data_path`` into ``run_dir`` and evaluate it.

    ``config.eval_split`` of the examples (seeded) is held out; the replay rows in the run's
    ``replay.jsonl`` (:mod:`finetune.replay`), where there is one, are trained on beside the
    rest and never held out. The evaluation (held-out loss and perplexity, base vs adapter, and
    the forgetting check) is added to ``metrics.json``.
    ``announce`` gets the plan (examples, held out, steps) before training starts. ``ranks``:
    this process of a multi-process launch; the others return the result without evaluation.
    """
    examples = load_examples(data_path)
    train_examples, eval_examples = split_examples(
        examples, config.eval_split, config.seed, config.eval_min_examples
    )
    replay_path = run_dir / REPLAY_FILE
    replay = load_examples(replay_path) if count_rows(replay_path) else []
    train_examples += replay
    plan = config.plan(len(train_examples), len(eval_examples), len(replay))
    log.info("%s", plan)
    if announce is not None:
        announce(plan)
    result = train(
        settings, config, train_examples, eval_examples, run_dir, resume, progress, ranks
    )
    if not ranks.main:
        return result
    if result.truncated_examples:
        log.warning(
            "%d examples were longer than max_seq_length=%d and were cut (prompt start dropped)",
            result.truncated_examples,
            config.max_seq_length,
        )
    gc.collect()  # the trained model, before the saved adapter is loaded to be evaluated
    evaluation = evaluate_adapter(settings, config, result.adapter_dir, eval_examples)
    result = replace(result, evaluation=evaluation)
    write_json(result.run_dir / "metrics.json", result.metrics())
    return result
