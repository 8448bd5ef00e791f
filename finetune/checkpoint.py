"""Checkpoints: all a run needs to continue exactly where it stopped, atomic and pickle-free.

``run_dir/checkpoints/step-N/`` holds

- ``adapter.safetensors``: the trainable weights (the PEFT state dict);
- ``optimizer.safetensors`` + ``optimizer.json``: the optimiser state's tensors and the rest
  (hyper-parameters, step counts);
- ``rng.safetensors``: torch's CPU (and CUDA) generator states (of every training process, those
  of rank N > 0 under ``rankN.``, so that dropout continues on each as it would have);
- ``state.json``: the step reached (which fixes the data order position, the order being a pure
  function of the seed and the step), the scheduler state, numpy's and Python's generator states,
  the loss history, and what the run was (config, data fingerprint) so a resume cannot mix runs.

A checkpoint is written into a temporary sibling folder and renamed into place, so a crash (kill
-9 included) leaves either a whole checkpoint or none; the last :data:`KEEP` are kept. Nothing is
pickled: loading a checkpoint cannot run code.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.core.errors import LoragError
from assistant.core.files import write_json

if TYPE_CHECKING:
    import torch
    from peft import PeftModel

CHECKPOINTS = "checkpoints"
KEEP = 2
STEP_DIR = re.compile(r"^step-(\d+)$")


class CheckpointError(LoragError):
    """A checkpoint cannot be used to resume this run."""


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Complete checkpoints of ``run_dir``, oldest first."""
    folder = run_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_DIR.match(p.name))]
    return [path for _, path in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: PeftModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: dict[str, Any],
    rank_rngs: list[dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write ``checkpoints/step-{step}`` atomically, then drop all but the newest :data:`KEEP`.

    ``rank_rngs``: the :func:`torch_rng` of each training process, by rank (default: this
    process's only)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder = run_dir / CHECKPOINTS
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".step-{step}-", dir=folder))
    try:
        weights = get_peft_model_state_dict(model)
        adapter = {key: value.detach().cpu().contiguous() for key, value in weights.items()}
        save_file(adapter, staging / "adapter.safetensors")
        tensors, rest = _split_optimizer(optimizer.state_dict())
        save_file(tensors, staging / "optimizer.safetensors")
        write_json(staging / "optimizer.json", rest)
        save_file(_by_rank(rank_rngs or [torch_rng()]), staging / "rng.safetensors")
        full_state = {
            **state,
            "step": step,
            "scheduler": scheduler.state_dict(),
            "numpy_rng": _numpy_rng(),
            "python_rng": random.getstate(),
        }
        write_json(staging / "state.json", full_state)
        _fsync_tree(staging)
        target = folder / f"step-{step}"
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        _fsync_dir(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for old in checkpoint_dirs(run_dir)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_checkpoint(
    path: Path,
    model: PeftModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    expected: dict[str, Any],
    rank: int = 0,
) -> dict[str, Any]:
    """Restore weights, optimiser, scheduler and RNG states from ``path``; return its state.

    ``expected`` holds what must match (config, data fingerprint); a mismatch raises
    :class:`CheckpointError` naming the difference. ``rank``: the training process restoring
    (its own torch generator states; one the checkpoint has none for keeps its own).
    """
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = json.loads((path / "state.json").read_text())
    for key, value in expected.items():
        if state.get(key) != value:
            raise CheckpointError(
                f"checkpoint {str(path)!r} belongs to another run: its {key} differs from this "
                "one; resume with the same data and options, or start a new run folder"
            )
    device = next(model.parameters()).device
    weights = load_file(path / "adapter.safetensors", device=str(device))
    result = set_peft_model_state_dict(model, weights)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise CheckpointError(f"checkpoint {str(path)!r} has unknown weights: {unexpected[:3]}")
    rest = json.loads((path / "optimizer.json").read_text())
    optimizer.load_state_dict(_join_optimizer(load_file(path / "optimizer.safetensors"), rest))
    scheduler.load_state_dict(state["scheduler"])
    torch_states = _of_rank(load_file(path / "rng.safetensors"), rank)
    _restore_rng(torch_states, state["numpy_rng"], state["python_rng"])
    return state


def remove_staging(run_dir: Path) -> None:
    """Delete half-written checkpoints a crash left behind."""
    folder = run_dir / CHECKPOINTS
    if folder.is_dir():
        for stale in folder.glob(".step-*"):
            shutil.rmtree(stale, ignore_errors=True)


# --------------------------------------------------------------------------- serialising


def _split_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tensors keyed ``"{param}.{name}"``, and everything else as JSON-ready data."""
    import torch

    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, entries in state_dict["state"].items():
        for name, value in entries.items():
            key = f"{index}.{name}"
            if isinstance(value, torch.Tensor):
                tensors[key] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, Any], rest: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *rest["scalars"].items()]:
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def torch_rng() -> dict[str, torch.Tensor]:
    """This process's torch generator states: ``cpu``, and ``cuda.N`` where CUDA is in use."""
    import torch

    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for n, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            states[f"cuda.{n}"] = cuda_state
    return states


def _by_rank(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One flat dict: rank 0's keys as they are, rank N's prefixed ``rankN.``."""
    return {
        (key if rank == 0 else f"rank{rank}.{key}"): value
        for rank, rank_states in enumerate(states)
        for key, value in rank_states.items()
    }


def _of_rank(tensors: dict[str, torch.Tensor], rank: int) -> dict[str, torch.Tensor]:
    """The states :func:`_by_rank` stored for ``rank`` (none: an empty dict)."""
    if rank == 0:
        return {key: value for key, value in tensors.items() if not key.startswith("rank")}
    prefix = f"rank{rank}."
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _numpy_rng() -> list[Any]:
    import numpy as np

    name, keys, position, has_gauss, gauss = np.random.get_state(legacy=True)
    return [name, np.asarray(keys).tolist(), position, has_gauss, gauss]


def _restore_rng(tensors: dict[str, Any], numpy_state: list[Any], python_state: list[Any]) -> None:
    import numpy as np
    import torch

    if "cpu" in tensors:
        torch.set_rng_state(tensors["cpu"])
    cuda = sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    name, keys, position, has_gauss, gauss = numpy_state
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = python_state
    random.setstate((version, tuple(internal), gauss_next))


def _fsync_tree(folder: Path) -> None:
    """Flush ``folder``'s files and the folder itself to disk."""
    for path in folder.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
