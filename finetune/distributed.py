"""Training on several processes (``torchrun`` / ``accelerate launch``): who this process is, and
the few collective operations the training loop needs.

A launcher starts one process per device and tells each who it is through the environment
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``).
:func:`process_group` reads them and joins the group: gloo on the CPU, NCCL on CUDA, each process
on ``cuda:LOCAL_RANK``. Without a launcher it yields :data:`SINGLE`, for which every operation here
is a no-op, so one-process training runs exactly the code it ran before.

Every process holds the whole model (data parallelism). Each optimiser step's examples are
dealt round-robin to the processes (:meth:`Ranks.share`), each sums its answer-token losses, and
the gradients are summed over the processes (:meth:`Ranks.sum_gradients`) before clipping and
the optimiser step, which therefore see the gradient one process would have computed on the whole
step. This is what ``DistributedDataParallel`` does, done by hand: the processes of one step run
different numbers of micro-batches (packed rows differ per share, and a short last step leaves a
process none), which DDP's one-reduction-per-backward hooks cannot express without hanging; and
the adapter's gradients are small (SmolLM2 LoRA r=8: 2.4 M floats), so one flat reduction per
step costs little against the forward and backward passes.

FSDP and DeepSpeed shard the model itself; this loop does not, so :func:`process_group` refuses a
launch whose accelerate config asks for them (rather than silently training without them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.core.errors import LoragError
from assistant.core.settings import Settings

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

TIMEOUT = timedelta(hours=2)
"""How long a process waits for the others at a collective: rank 0 may first build a dataset from
a collection (a teacher model writing questions) while the others wait."""

SHARDING_LAUNCHES = {
    "ACCELERATE_USE_FSDP": "FSDP",
    "ACCELERATE_USE_DEEPSPEED": "DeepSpeed",
    "ACCELERATE_USE_MEGATRON_LM": "Megatron-LM",
}
"""The variables ``accelerate launch`` sets for configs whose sharding this loop does not do."""


LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


class LaunchError(LoragError):
    """The environment describes a multi-process launch this loop cannot run."""


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes (``rank`` 0 of 1 without a launcher).

    The collective methods must be called by every process in the same order.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes the run's files (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def share(self, items: Sequence[T]) -> list[T]:
        """This process's items of ``items``: every ``world_size``-th, from its rank."""
        return list(items[self.rank :: self.world_size])

    def for_rank(self, settings: Settings) -> Settings:
        """``settings`` for this process: CUDA on ``cuda:LOCAL_RANK``; on the CPU, unless
        ``threads`` is set, this node's cores split between its processes."""
        if not self.distributed:
            return settings
        if settings.generator.device.startswith("cuda"):
            generator = settings.generator.model_copy(update={"device": f"cuda:{self.local_rank}"})
            return settings.model_copy(update={"generator": generator})
        if settings.threads is None:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
            threads = max(1, (cores or os.cpu_count() or 1) // self.local_world_size)
            return settings.model_copy(update={"threads": threads})
        return settings

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def sum(self, values: Sequence[float]) -> list[float]:
        """``values`` summed element-wise over the processes (in float64)."""
        if not self.distributed:
            return list(values)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self._device())
        dist.all_reduce(tensor)
        return [float(v) for v in tensor.cpu()]

    def sum_gradients(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """Replace each parameter's gradient by its sum over the processes, in one reduction
        (a parameter without a gradient counts as zeros; all are float32, see modeling)."""
        if not self.distributed:
            return
        import torch
        import torch.distributed as dist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        for parameter, summed in zip(parameters, _unflatten(flat, parameters), strict=True):
            parameter.grad = summed

    def copy_from_main(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """Give every process rank 0's values of ``parameters`` (as DDP does when it wraps)."""
        if not self.distributed:
            return
        import torch
        import torch.distributed as dist

        with torch.no_grad():
            flat = torch.cat([p.detach().reshape(-1) for p in parameters])
            dist.broadcast(flat, src=0)
            for parameter, value in zip(parameters, _unflatten(flat, parameters), strict=True):
                parameter.copy_(value)

    def gather(self, value: T) -> list[T]:
        """``value`` of every process, by rank (on every process)."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def _device(self) -> torch.device:
        import torch
        import torch.distributed as dist

        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def _unflatten(flat: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``flat`` cut back into tensors of the shapes of ``like`` (copies, not views of it)."""
    pieces = flat.split([tensor.numel() for tensor in like])
    return [piece.view_as(tensor).clone() for piece, tensor in zip(pieces, like, strict=True)]


SINGLE = Ranks()
"""One process, no launcher."""


def launched_ranks(environ: Mapping[str, str] = os.environ) -> Ranks:
    """The :class:`Ranks` a launcher's variables describe (:data:`SINGLE` without them)."""
    if "WORLD_SIZE" not in environ:
        return SINGLE
    given = {name: environ.get(name) for name in LAUNCH_VARIABLES}
    try:
        world = int(environ["WORLD_SIZE"])
        rank, local = int(environ.get("RANK", "0")), int(environ.get("LOCAL_RANK", "0"))
        local_world = int(environ.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError:
        shown = ", ".join(f"{name}={value!r}" for name, value in given.items() if value is not None)
        raise LaunchError(f"the launch variables must be integers ({shown})") from None
    if world < 1 or not 0 <= rank < world or not 0 <= local < local_world:
        raise LaunchError(
            f"inconsistent launch variables: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}, "
            f"LOCAL_WORLD_SIZE={local_world} (launch with torchrun or accelerate launch)"
        )
    return Ranks(rank, world, local, local_world)


@contextmanager
def process_group(device: str, environ: Mapping[str, str] = os.environ) -> Iterator[Ranks]:
    """Join the training processes for the ``with`` block (:data:`SINGLE` without a launcher).

    ``device`` is ``generator.device``: a CUDA device means NCCL, with this process on
    ``cuda:LOCAL_RANK``; anything else gloo.
    """
    ranks = launched_ranks(environ)
    if not ranks.distributed:
        yield ranks
        return
    asked = [name for var, name in SHARDING_LAUNCHES.items() if environ.get(var) == "true"]
    if asked:
        raise LaunchError(
            f"the accelerate config asks for {', '.join(asked)}, which lorag's training loop does "
            "not do (it keeps a whole model on every process): launch with a DDP config "
            "(finetune/recipes/accelerate/multi-gpu.yaml); for a base too large for one device, "
            "train with QLoRA (--qlora)"
        )
    import torch
    import torch.distributed as dist

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    try:
        yield ranks
    finally:
        dist.destroy_process_group()
