"""An evaluation's comparison shown three ways: a rich table, a JSON file, a bar chart (PNG).

The chart groups bars by metric, one bar per configuration (0 to 1); a metric no configuration
has (no expected sources, say) is left out. It is drawn with matplotlib's Agg canvas, without
pyplot, so it needs no display and touches no global state.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from assistant.batch.evaluation import METRICS, EvalReport
from assistant.core import files

if TYPE_CHECKING:
    from rich.table import Table


def metric_label(metric: str, top_k: int) -> str:
    labels = {
        "recall_at_k": f"recall@{top_k}",
        "mrr": "MRR",
        "ndcg_at_10": "nDCG@10",
        "exact_match": "EM",
        "f1": "F1",
        "contains": "holds answer",
        "source_cited": "source cited",
        "citation_precision": "cit. precision",
        "abstention_accuracy": "abstention acc.",
        "unanswerable_abstained": "unanswerable abst.",
        "false_abstention": "false abstention",
        "abstain_rate": "abstained",
    }
    return labels[metric]


def metric_table(report: EvalReport) -> Table:
    """One row per metric, one column per configuration (``—`` where a metric does not apply)."""
    from rich.table import Table

    reranked = f" · reranked by {report.reranker}" if report.reranker else ""
    table = Table(title=f"{report.questions} · {report.collection} · top {report.top_k}{reranked}")
    table.add_column("metric")
    for result in report.results:
        table.add_column(result.configuration.name, justify="right")
    for metric in METRICS:
        cells = [_cell(result.metrics[metric]) for result in report.results]
        table.add_row(metric_label(metric, report.top_k), *cells)
    table.add_row("questions/min", *(f"{r.questions_per_min:.1f}" for r in report.results))
    return table


def write_json(report: EvalReport, path: Path) -> None:
    """The report as JSON at ``path`` (written whole or not at all)."""
    files.write_json(path, report.to_dict())


def write_chart(report: EvalReport, path: Path) -> None:
    """Grouped bars: per metric, one bar per configuration."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = [m for m in METRICS if any(r.metrics[m] is not None for r in report.results)]
    figure = Figure(figsize=(max(6.0, 1.3 * len(shown) + 2), 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    width = 0.8 / max(len(report.results), 1)
    for i, result in enumerate(report.results):
        values = [result.metrics[m] for m in shown]
        bars = axes.bar(
            [x + (i - (len(report.results) - 1) / 2) * width for x in range(len(shown))],
            [float("nan") if v is None else v for v in values],
            width,
            label=result.configuration.name,
        )
        axes.bar_label(bars, ["" if v is None else f"{v:.2f}" for v in values], fontsize=6)
    axes.set_xticks(range(len(shown)), [metric_label(m, report.top_k) for m in shown])
    axes.set_ylim(0, 1.05)
    axes.set_title(f"{Path(report.questions).name} · top {report.top_k}")
    axes.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
