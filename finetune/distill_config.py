"""What on-policy distillation adds to a training recipe: the teacher and the GKD options.

The adapter itself (rank, learning rate, steps, batch size, packing...) is a
:class:`~finetune.config.TrainConfig` as for ``lorag finetune``; a ``DistillConfig`` says whom the
student learns from and how.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DistillConfig(BaseModel):
    """The teacher, and the GKD options (named as in TRL's ``GKDConfig``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    teacher: str = Field(
        min_length=1,
        description="The teacher: an HF id or folder whose tokenizer is the student's.",
    )
    lmbda: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of optimiser steps on the student's own samples (on-policy); the "
        "others score the dataset's answers (supervised KD).",
    )
    beta: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Generalised JSD: 0 = forward KL, 1 = reverse KL, between = JSD(beta).",
    )
    temperature: float = Field(
        1.0, gt=0.0, le=10.0, description="Sampling and divergence softmax temperature."
    )
    max_new_tokens: int = Field(
        48, ge=1, le=1024, description="Tokens the student samples per answer."
    )
