"""Micro-batches as tensors, and the answer-token loss that training and evaluation share.

The loss is a sum of next-token cross-entropies over answer tokens only. Logits are computed only
at the positions that predict an answer token (transformers' boolean ``logits_to_keep``), so the
vocabulary projection — a fifth of a small model's work — is skipped for prompt tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from finetune.data import IGNORE_INDEX, PackedRow, TokenizedExample, pack

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Batch:
    """One forward pass: ``targets[:, t]`` is the label of token ``t + 1`` (or ``-100``).

    Packed rows have ``position_ids`` and no ``attention_mask``; a padded batch the reverse.
    """

    input_ids: torch.Tensor
    targets: torch.Tensor
    attention_mask: torch.Tensor | None
    position_ids: torch.Tensor | None
    tokens: int
    answer_tokens: int

    def to(self, device: torch.device) -> Batch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return Batch(
            self.input_ids.to(device),
            self.targets.to(device),
            move(self.attention_mask),
            move(self.position_ids),
            self.tokens,
            self.answer_tokens,
        )


def _shifted(labels: list[int]) -> list[int]:
    return [*labels[1:], IGNORE_INDEX]


def make_batches(
    examples: Sequence[TokenizedExample],
    *,
    packing: bool,
    batch_size: int,
    max_len: int,
    pad_id: int,
) -> list[Batch]:
    """Micro-batches: ``batch_size`` packed rows each, or ``batch_size`` padded examples each.

    Packed rows are stacked into one tensor, the shorter ones filled up to the longest with a
    padding "sequence" of their own (position ids restarting at 0, no labels), so that nothing
    attends across sequences. One forward pass over the stacked rows was 1.5x faster on CPU than
    one pass per row (larger matrix products; 1,400 tokens in 3 rows: 2.8 s vs 4.3 s).
    """
    sequences: Sequence[PackedRow | TokenizedExample] = (
        pack(examples, max_len) if packing else examples
    )
    return [
        _stack(sequences[start : start + batch_size], pad_id)
        for start in range(0, len(sequences), batch_size)
    ]


def _stack(group: Sequence[PackedRow | TokenizedExample], pad_id: int) -> Batch:
    """``group`` filled up to its longest member: packed rows get position ids (the fill a
    sequence of its own), padded examples an attention mask (the fill masked out)."""
    import torch

    packed = isinstance(group[0], PackedRow)
    width = max(len(member.input_ids) for member in group)
    ids, targets, layout = [], [], []
    for member in group:
        size, fill = len(member.input_ids), width - len(member.input_ids)
        ids.append(member.input_ids + [pad_id] * fill)
        targets.append(_shifted(member.labels) + [IGNORE_INDEX] * fill)
        if isinstance(member, PackedRow):
            layout.append(member.position_ids + list(range(fill)))
        else:
            layout.append([1] * size + [0] * fill)
    return Batch(
        input_ids=torch.tensor(ids),
        targets=torch.tensor(targets),
        attention_mask=None if packed else torch.tensor(layout),
        position_ids=torch.tensor(layout) if packed else None,
        tokens=sum(len(member.input_ids) for member in group),
        answer_tokens=sum(label != IGNORE_INDEX for m in group for label in m.labels),
    )


def loss_sum(model: nn.Module, batch: Batch, virtual_tokens: int = 0) -> torch.Tensor:
    """Summed cross-entropy (float32) of ``batch``'s answer tokens.

    ``virtual_tokens``: soft tokens prompt tuning prepends to every row (their logits are skipped).
    """
    import torch
    import torch.nn.functional as F

    keep = batch.targets != IGNORE_INDEX
    if virtual_tokens:
        prefix = torch.zeros(keep.shape[0], virtual_tokens, dtype=torch.bool, device=keep.device)
        keep = torch.cat([prefix, keep], dim=1)
    output = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=keep,
        use_cache=False,
    )
    targets = batch.targets[batch.targets != IGNORE_INDEX]
    return F.cross_entropy(output.logits.float(), targets, reduction="sum")


def mean_loss(
    model: nn.Module,
    batches: Sequence[Batch],
    device: torch.device,
    autocast: Callable[[], AbstractContextManager[object]],
    virtual_tokens: int = 0,
) -> float:
    """Mean answer-token loss over ``batches``, without gradients, in eval mode.

    ``autocast`` makes the precision context for a forward pass (e.g. bf16 autocast).
    """
    total, count = loss_totals(model, batches, device, autocast, virtual_tokens)
    return total / max(count, 1)


def loss_totals(
    model: nn.Module,
    batches: Sequence[Batch],
    device: torch.device,
    autocast: Callable[[], AbstractContextManager[object]],
    virtual_tokens: int = 0,
) -> tuple[float, int]:
    """The summed answer-token loss over ``batches`` and their answer tokens, as
    :func:`mean_loss` computes them (so that several processes can add theirs up)."""
    import torch

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.no_grad(), autocast():
            for batch in batches:
                total += float(loss_sum(model, batch.to(device), virtual_tokens))
                count += batch.answer_tokens
    finally:
        model.train(was_training)
    return total, count
