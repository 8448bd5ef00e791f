"""The adapters page against the real API: versions with their figures, the base-vs-adapter
evaluation and the loss as charts, the promotion gate's figures per version as a chart and its
decision, promotion and rollback, and a fine-tuning run followed to its new version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from streamlit.testing.v1 import AppTest

from assistant.core.registry import TrainingOrigin
from assistant.evalset import install_eval_set, read_eval_set
from assistant.gating import gate_version
from tests.api.conftest import DOCS
from tests.core.test_models import make_lora
from tests.core.test_registry import make_run
from tests.ui.conftest import LiveApi, open_page, texts

DATASET = "".join(
    json.dumps({"instruction": f"Who maintains service {n}?", "output": f"Team {n} does."}) + "\n"
    for n in range(8)
).encode()


def charts(app: AppTest) -> list[str]:
    """The Vega-Lite specs of the page's charts."""
    return [chart.proto.spec for chart in app.get("vega_lite_chart")]


def chart_data(chart: Any) -> pd.DataFrame:
    """The data a chart element draws (Streamlit sends it beside the spec, as Arrow)."""
    [dataset] = chart.proto.datasets
    return pa.ipc.open_stream(dataset.data.data).read_all().to_pandas()


def button(app: AppTest, label: str) -> None:
    next(b for b in app.button if b.label == label).click().run()
    assert not app.exception, [e.value for e in app.exception]


def test_versions_are_listed_with_their_evaluation_as_charts(api: LiveApi) -> None:
    app = open_page("adapters")
    table = app.dataframe[0].value.set_index("Adapter")
    assert {"ops@1", "ops@2"} <= set(table.index)
    assert table.loc["ops@2", "Base perplexity"] == 8.2
    assert table.loc["ops@2", "Adapter perplexity"] == 3.0
    assert table.loc["ops@2", "Forgetting ratio"] == 1.05
    assert table.loc["ops@2", "Adapter answer F1"] == 0.52
    assert table.loc["ops@2", "Method"] == "lora" and table.loc["ops@1", "Held-out loss"] == 1.25

    app.selectbox[0].set_value("ops@2").run()
    assert len(charts(app)) == 3  # perplexities and answer F1 (base vs adapter), the loss
    assert "Answers to 5 held-out questions: token F1, higher is better" in texts(app, "markdown")

    app.selectbox[0].set_value("ops@1").run()
    assert not charts(app)
    assert "This version has no base-vs-adapter evaluation." in [c.value for c in app.caption]


def test_a_version_is_promoted_then_rolled_back(api: LiveApi) -> None:
    app = open_page("adapters")
    assert "'ops' means **ops@1** now." in [c.value for c in app.caption]
    button(app, "Promote ops@2")
    assert "ops@2 is promoted: 'ops' means it now" in [t.value for t in app.toast]
    assert "'ops' means **ops@2** now." in [c.value for c in app.caption]
    button(app, "Roll back ops")
    assert "'ops' means **ops@1** now." in [c.value for c in app.caption]
    button(app, "Roll back ops")
    assert "Conflict (409)" in app.error[0].value


def test_a_finetuning_run_is_followed_to_its_new_version(api: LiveApi) -> None:
    app = open_page("adapters")
    next(t for t in app.text_input if t.label == "Adapter name").set_value("helpdesk")
    app.radio[0].set_value("A dataset file (JSONL)")
    app.file_uploader[0].set_value(("facts.jsonl", DATASET, "application/jsonl"))
    app.number_input[0].set_value(2)
    button(app, "Start fine-tuning")
    assert "Trained **helpdesk@1**" in app.success[0].value
    assert "helpdesk@1" in list(app.dataframe[0].value["Adapter"])
    assert any("loss" in spec for spec in charts(app))


def test_a_finetuning_request_is_checked(api: LiveApi) -> None:
    app = open_page("adapters")
    app.radio[0].set_value("A dataset file (JSONL)")
    button(app, "Start fine-tuning")
    assert "Choose a JSONL dataset file first." in app.warning[0].value
    next(t for t in app.text_input if t.label == "Adapter name").set_value("ops@3")
    app.radio[0].set_value("The documents of the chosen collection")
    button(app, "Start fine-tuning")
    assert "Invalid request (422)" in app.error[0].value and "ops@3" in app.error[0].value


def test_the_gate_figures_of_every_version_are_charted_with_the_shown_decision(
    api: LiveApi, tiny_generator_dir: Path, tmp_path: Path
) -> None:
    # Two versions of "gated", each gated for real on a collection of its own (its evaluation
    # set is the only one there, so the other tests' runs are not gated).
    runtime = api.runtime
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    assert runtime.ingestor("gatedkb").ingest([docs]).ok
    questions = tmp_path / "eval.csv"
    questions.write_text(
        "question,expected_answer,expected_source,unanswerable\n"
        "How many days of paid leave do employees get?,25 days,leave.txt,no\n"
        "What is the warranty of the Quillvane 9 hoverboard?,,,yes\n",
        encoding="utf-8",
    )
    install_eval_set(runtime.settings, "gatedkb", read_eval_set(questions))
    origin = TrainingOrigin.of(runtime.settings, method="lora", dataset_fingerprint="g" * 16)
    reports = []
    for version in (1, 2):
        lora = make_lora(tiny_generator_dir, tmp_path / f"lora-{version}", 10 + version)
        runtime.registry.register(
            "gated", make_run(tmp_path / f"run-{version}", lora), origin, version=version
        )
        reports.append(gate_version(runtime, f"gated@{version}", "gatedkb"))

    app = open_page("adapters")
    app.selectbox[0].set_value("gated@2").run()
    assert "**'gated' on its evaluation set, per version: higher is better**" in texts(
        app, "markdown"
    )
    [chart] = [
        chart_data(chart)
        for chart in app.get("vega_lite_chart")
        if '"title": "score"' in chart.proto.spec  # the gate chart's y axis
    ]
    drawn = {
        (int(row["version"]), row["color -- streamlit-generated"]): row[
            "value -- streamlit-generated"
        ]
        for _, row in chart.iterrows()
    }
    labels = {"answer_f1": "Answer F1", "citation_precision": "Citation precision"}
    labels["abstention_accuracy"] = "Abstention accuracy"
    expected = {
        (version, labels[check.figure]): check.candidate
        for version, report in enumerate(reports, start=1)
        for check in report.checks
        if check.figure in labels and check.candidate is not None
    }
    assert expected and {k: v for k, v in drawn.items() if v == v} == expected  # NaN: unmeasured
    [decision] = [w.value for w in app.warning if "**Gate:**" in w.value]
    assert reports[1].summary() in decision
    assert "**fail** forgetting_ratio: not measured: its metrics.json has none" in decision
