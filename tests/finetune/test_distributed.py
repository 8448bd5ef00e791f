"""``lorag finetune`` under torchrun: two gloo processes on the CPU follow the loss curve of one
process with the same global batch, rank 0 alone writes and registers the adapter, and a run
resumed from a checkpoint on two processes ends where the uninterrupted one ends."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from assistant.core.registry import AdapterRegistry
from assistant.core.settings import Settings
from finetune.checkpoint import checkpoint_dirs
from finetune.config import TrainConfig
from finetune.data import load_examples, split_examples
from finetune.distributed import LaunchError, Ranks, launched_ranks, process_group
from finetune.trainer import train
from tests.finetune.conftest import rag_record, write_jsonl
from tests.fixtures.otlp import attributes_of, otlp_receiver

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _finetune(
    processes: int, args: list[str], settings: Settings, cwd: Path, **extra_env: str
) -> None:
    """``lorag finetune ARGS`` on ``processes`` processes started by torchrun's Python entry."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LORAG_")},
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "LORAG_DATA_DIR": str(settings.data_dir),
        "LORAG_GENERATOR__MODEL": settings.generator.model,
        "LORAG_THREADS": "1",
        **extra_env,
    }
    launch = [
        *(sys.executable, "-m", "torch.distributed.run", "--nnodes", "1"),
        *("--nproc-per-node", str(processes), "--master-addr", "127.0.0.1"),
        *("--master-port", str(_free_port()), "-m", "assistant.cli", "finetune"),
    ]
    done = subprocess.run([*launch, *args], env=env, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _metrics(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "metrics.json").read_text()))


def _adapter(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


def _split_data(tmp_path: Path, config: TrainConfig) -> tuple[Path, list[str]]:
    """10 examples (1 held out, 9 trained on in steps of 4, 4 and 1, so the second process has
    no example in every third step, and none of the held-out one) and the CLI arguments that
    train on them with ``config``."""
    data = write_jsonl(tmp_path / "data.jsonl", [rag_record(n) for n in range(10)])
    recipe = tmp_path / "recipe.json"
    recipe.write_text(config.model_dump_json(), encoding="utf-8")
    return data, ["--data", str(data), "--config", str(recipe)]


@pytest.fixture
def config(fast_config: TrainConfig) -> TrainConfig:
    # no replay rows: the one-process run below trains on the dataset's rows alone
    return fast_config.model_copy(
        update={
            "max_steps": 8,
            "save_every": 2,
            "eval_every": 4,
            "eval_min_examples": 2,
            "replay_examples": 0,
        }
    )


def test_two_processes_follow_the_loss_curve_of_one_and_register_one_adapter(
    train_settings: Settings, config: TrainConfig, tmp_path: Path
) -> None:
    """...and trace the run once: rank 0's ``finetune`` span over one ``train.step`` per step
    (the other process's steps are the same steps, not spans of their own)."""
    # Dropout 0: each process draws its masks from its own generator, so only without dropout
    # can the curves agree.
    assert config.dropout == 0
    data, args = _split_data(tmp_path, config)
    train_examples, eval_examples = split_examples(
        load_examples(data), config.eval_split, config.seed, config.eval_min_examples
    )
    assert (len(train_examples), len(eval_examples)) == (9, 1)
    one = train(train_settings, config, train_examples, eval_examples, tmp_path / "one")

    with otlp_receiver() as (url, received):
        _finetune(
            2, ["--name", "two", *args], train_settings, tmp_path, LORAG_TRACING__OTLP_ENDPOINT=url
        )
    spans = [span for got in received for span in got.spans]
    [run] = [span for span in spans if span.name == "finetune"]
    steps = [span for span in spans if span.name == "train.step"]
    assert sorted(attributes_of(span)["lorag.train.step"] for span in steps) == list(range(1, 9))
    assert {(span.trace_id, span.parent_span_id) for span in steps} == {(run.trace_id, run.span_id)}

    run_dir = train_settings.data_dir / "runs" / "two"
    two = _metrics(run_dir)
    assert two["processes"] == 2 and one.processes == 1
    assert [h["step"] for h in two["history"]] == list(range(1, 9))
    for single, double in zip(one.history, two["history"], strict=True):
        assert double["loss"] == pytest.approx(single["loss"], abs=1e-4)
        assert double["tokens"] == single["tokens"]
    assert [h["step"] for h in two["eval_history"]] == [4, 8]
    for single, double in zip(one.eval_history, two["eval_history"], strict=True):
        assert double["loss"] == pytest.approx(single["loss"], abs=1e-4)
    assert two["evaluation"]["eval_examples"] == 1  # rank 0 evaluated the adapter
    records = AdapterRegistry.for_settings(train_settings).list()
    assert [(r.name, r.version) for r in records] == [("two", 1)]
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []
    assert [p.name for p in checkpoint_dirs(run_dir)] == ["step-4", "step-6"]


def test_a_two_process_run_resumed_from_a_checkpoint_ends_where_it_would_have(
    train_settings: Settings, config: TrainConfig, tmp_path: Path
) -> None:
    # Dropout on, so each process's restored generator state matters.
    _, args = _split_data(tmp_path, config.model_copy(update={"dropout": 0.1}))
    _finetune(2, ["--name", "whole", *args], train_settings, tmp_path)

    # What a kill after step 4 leaves: the checkpoints up to step 4 only.
    runs = train_settings.data_dir / "runs"
    shutil.copytree(runs / "whole" / "checkpoints", runs / "resumed" / "checkpoints")
    shutil.rmtree(runs / "resumed" / "checkpoints" / "step-6")
    _finetune(2, ["--name", "resumed", "--resume", *args], train_settings, tmp_path)

    whole, resumed = _metrics(runs / "whole"), _metrics(runs / "resumed")
    assert resumed["resumed_from_step"] == 4
    assert [h["step"] for h in resumed["history"]] == list(range(1, 9))
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in whole["history"]]
    assert resumed["eval_history"] == whole["eval_history"]
    first, second = _adapter(runs / "whole"), _adapter(runs / "resumed")
    assert first.keys() == second.keys()
    for key, tensor in first.items():
        torch.testing.assert_close(second[key], tensor, rtol=0, atol=1e-7)
    records = AdapterRegistry.for_settings(train_settings).list()
    assert [(r.name, r.version) for r in records] == [("resumed", 1), ("whole", 1)]


def test_the_launch_variables_say_who_this_process_is() -> None:
    assert launched_ranks({}) == Ranks()
    variables = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    ranks = launched_ranks(variables)
    assert ranks == Ranks(rank=3, world_size=4, local_rank=1, local_world_size=2)
    assert not ranks.main and ranks.distributed
    assert ranks.share(list(range(10))) == [3, 7]
    with pytest.raises(LaunchError, match="RANK=4, WORLD_SIZE=4"):
        launched_ranks({**variables, "RANK": "4"})
    with pytest.raises(LaunchError, match="must be integers"):
        launched_ranks({**variables, "WORLD_SIZE": "two"})


def test_each_process_gets_its_gpu_or_its_share_of_the_cores(train_settings: Settings) -> None:
    second = Ranks(rank=1, world_size=2, local_rank=1, local_world_size=2)
    on_gpu = train_settings.model_copy(
        update={"generator": train_settings.generator.model_copy(update={"device": "cuda"})}
    )
    assert second.for_rank(on_gpu).generator.device == "cuda:1"
    unset = train_settings.model_copy(update={"threads": None})
    cores = len(os.sched_getaffinity(0))
    assert second.for_rank(unset).threads == max(1, cores // 2)
    assert second.for_rank(train_settings).threads == train_settings.threads == 1
    assert Ranks().for_rank(unset) is unset


def test_a_sharding_accelerate_config_is_refused_before_training() -> None:
    variables = {"RANK": "0", "WORLD_SIZE": "2", "ACCELERATE_USE_FSDP": "true"}
    with pytest.raises(LaunchError, match="FSDP"), process_group("cpu", variables):
        pytest.fail("the group was joined")
