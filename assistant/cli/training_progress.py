"""What ``lorag finetune`` and ``lorag distill`` show while they train: a step bar with the
step's loss, and a line for the dataset made from a collection."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from assistant.cli.common import out

if TYPE_CHECKING:
    from tqdm import tqdm

    from finetune.synth import SynthReport
    from finetune.trainer import StepReport


class StepBar:
    """A tqdm bar over a run's optimiser steps, made at the first step (a run refused before
    training shows none); its postfix names the loss ``loss_name`` with ``digits`` decimals."""

    def __init__(self, desc: str, loss_name: str, digits: int) -> None:
        self.desc, self.loss_name, self.digits = desc, loss_name, digits
        self.bar: tqdm | None = None

    def __call__(self, step: StepReport) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=step.total_steps, unit="step", desc=self.desc)
        self.bar.update(step.step - self.bar.n)
        loss = f"{step.loss:.{self.digits}f}"
        self.bar.set_postfix({self.loss_name: loss, "tok_s": f"{step.tokens_per_second:.0f}"})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def print_dataset(report: SynthReport, path: Path) -> None:
    """The line for a dataset synthesised from a collection's chunks, written to ``path``."""
    out.print(
        f"dataset: {report.examples} examples ({report.abstain_examples} abstain) "
        f"from {report.chunks_used} chunks → {path}"
    )
