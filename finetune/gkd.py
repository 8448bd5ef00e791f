"""The GKD divergence between the student's and the teacher's next-token distributions.

GKD (Agarwal et al., 2024, "On-Policy Distillation of Language Models: Learning from
Self-Generated Mistakes") trains the student on a generalised Jensen-Shannon divergence to the
teacher, token by token: ``beta`` 0 is the forward KL(teacher || student), 1 the reverse KL
(student || teacher, mode seeking), in between the JSD to the ``beta`` mixture. The formula is
TRL's (``GKDTrainer.generalized_jsd_loss``, trl 1.16): lorag calls it rather than copying it, in
its own loop (see :mod:`finetune.distill` for why not TRL's trainer).

Both models must share one tokenizer: :func:`check_same_tokenizer` refuses a teacher whose
vocabulary differs, before anything is trained.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from assistant.core.errors import LoragError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase


class TokenizerMismatchError(LoragError):
    """The teacher does not share the student's tokenizer: their token-level distributions cannot
    be compared."""


def divergence_sum(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    beta: float,
    temperature: float,
) -> torch.Tensor:
    """The generalised JSD summed over positions: logits of shape ``(positions, vocabulary)``.

    Computed in float32 over the vocabulary both share (the first ``min`` columns: models pad
    their embedding matrices to different multiples past the tokenizer's last id).
    """
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.gkd.gkd_trainer import GKDTrainer

    width = min(student_logits.shape[-1], teacher_logits.shape[-1])
    loss = GKDTrainer.generalized_jsd_loss(
        student_logits[..., :width].float(),
        teacher_logits[..., :width].float(),
        beta=beta,
        temperature=temperature,
        reduction="sum",
    )
    return loss


def check_same_tokenizer(
    student: PreTrainedTokenizerBase, teacher: PreTrainedTokenizerBase, teacher_name: str
) -> None:
    """Refuse (:class:`TokenizerMismatchError`) a teacher whose tokens or special ids differ."""
    student_vocab, teacher_vocab = student.get_vocab(), teacher.get_vocab()
    if student_vocab != teacher_vocab:
        differing = sorted(set(student_vocab.items()) ^ set(teacher_vocab.items()))
        example = ", ".join(repr(token) for token, _ in differing[:3])
        raise TokenizerMismatchError(
            f"teacher {teacher_name!r} does not share the student's tokenizer "
            f"({len(student_vocab)} vs {len(teacher_vocab)} tokens; differing: {example}): name "
            "a teacher of the same model family (e.g. a larger Qwen2.5 for a Qwen2.5 student)"
        )
    for special in ("eos_token_id", "pad_token_id"):
        if getattr(student, special) != getattr(teacher, special):
            raise TokenizerMismatchError(
                f"teacher {teacher_name!r} has another {special} than the student's "
                f"({getattr(teacher, special)} vs {getattr(student, special)})"
            )
