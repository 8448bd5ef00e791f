"""What a run leaves for people to read besides its JSON files: the loss curves.

``loss.png`` is drawn with matplotlib's Agg canvas directly (no pyplot, no global backend), so it
works on headless machines and in threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_losses(
    history: Sequence[dict[str, Any]], eval_history: Sequence[dict[str, Any]], path: Path
) -> None:
    """Train loss per step and eval loss where measured, saved as a PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([h["step"] for h in history], [h["loss"] for h in history], label="train")
    if eval_history:
        steps = [h["step"] for h in eval_history]
        axes.plot(steps, [h["loss"] for h in eval_history], marker="o", label="eval")
    axes.set_xlabel("optimiser step")
    axes.set_ylabel("loss (answer tokens)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")
