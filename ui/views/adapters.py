"""Adapters: every version with its figures, the evaluation of one (base model vs adapter) and
its training loss as charts, the promotion gate's figures of every version of its name as a
chart and its decision on the shown one, promote or roll back, and fine-tune a new version from
the chosen collection or an uploaded dataset while its loss curve draws itself. A version
tainted by an erasure (trained on a document since deleted) says so, by which document, and how
to rebuild it; it cannot be promoted.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ui import session
from ui.client import ApiError, LoragClient
from ui.components.errors import show_error
from ui.components.jobs import finished_job, follow, show_job_problems, show_losses
from ui.schemas import Adapter, Gate, LossPoint
from ui.wording import count

RECIPES = ["lora-cpu", "qlora"]
FINETUNE_JOB = "finetune_job"
FROM_COLLECTION = "The documents of the chosen collection"
FROM_FILE = "A dataset file (JSONL)"
GATE_FIGURES = {
    "answer_f1": "Answer F1",
    "citation_precision": "Citation precision",
    "abstention_accuracy": "Abstention accuracy",
}
"""The promotion gate's evaluation figures (higher is better), as the chart names them."""


def _evaluation(adapter: Adapter) -> dict[str, Any]:
    evaluation: dict[str, Any] = adapter["metrics"].get("evaluation") or {}
    return evaluation


def _figure(scores: dict[str, Any] | None, key: str) -> float | None:
    value = (scores or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def _versions_table(adapters: list[Adapter]) -> None:
    rows = []
    for adapter in adapters:
        evaluation = _evaluation(adapter)
        rows.append(
            {
                "Adapter": adapter["ref"],
                "Status": adapter["status"],
                "Tainted": _taint_summary(adapter),
                "Method": adapter["method"],
                "Created": adapter["created_at"][:16].replace("T", " "),
                "Held-out loss": _figure(adapter["metrics"], "eval_loss"),
                "Base perplexity": _figure(evaluation.get("base"), "eval_perplexity"),
                "Adapter perplexity": _figure(evaluation.get("adapter"), "eval_perplexity"),
                "Base answer F1": _figure(evaluation.get("answer_f1"), "base"),
                "Adapter answer F1": _figure(evaluation.get("answer_f1"), "adapter"),
                "Forgetting ratio": _figure(evaluation, "forgetting_ratio"),
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _taint_summary(adapter: Adapter) -> str:
    """``""``, or which erased documents taint the version."""
    return ", ".join(f"erased {t['doc_id'][:8]}" for t in adapter["tainted_by"])


def _taint_warning(adapter: Adapter) -> None:
    """What taints the shown version, and what to do."""
    if not adapter["tainted"]:
        return
    erased = "\n".join(
        f"- document `{t['doc_id']}`, erased from *{t['collection']}* at {t['erased_at']} "
        f"(erasure `{t['erasure_id']}`)"
        for t in adapter["tainted_by"]
    )
    st.error(
        f"**{adapter['ref']} is tainted:** it was trained on\n{erased}\n\nIt is not served, "
        f"promoted or bound. Rebuild it without the erased data with `lorag adapters retrain "
        f"{adapter['ref']}`, then promote the new version.",
        icon=":material/gpp_bad:",
    )


def _comparison(title: str, rows: dict[str, dict[str, float | None]]) -> None:
    """A horizontal bar chart of base vs adapter, one group of bars per measure."""
    st.markdown(f"**{title}**")
    st.bar_chart(pd.DataFrame(rows).T, stack=False, horizontal=True, height=180)


def _evaluation_charts(adapter: Adapter) -> None:
    """Base vs adapter (perplexities; answer F1 when the run scored answers), and the training
    loss, of one version."""
    evaluation = _evaluation(adapter)
    base, tuned = evaluation.get("base"), evaluation.get("adapter")
    measures = {
        "Held-out": "eval_perplexity",
        "General text": "general_perplexity",
    }
    perplexities = {
        label: {"Base model": _figure(base, key), adapter["ref"]: _figure(tuned, key)}
        for label, key in measures.items()
        if _figure(base, key) is not None and _figure(tuned, key) is not None
    }
    f1 = evaluation.get("answer_f1") or {}
    left, right = st.columns(2)
    with left:
        if perplexities:
            title = "Perplexity, held-out and general text (forgetting): lower is better"
            _comparison(title, perplexities)
        else:
            st.markdown("**Evaluation**")
            st.caption("This version has no base-vs-adapter evaluation.")
        if _figure(f1, "base") is not None and _figure(f1, "adapter") is not None:
            questions = count(int(f1.get("questions", 0)), "held-out question")
            _comparison(
                f"Answers to {questions}: token F1, higher is better",
                {"Answer F1": {"Base model": f1["base"], adapter["ref"]: f1["adapter"]}},
            )
    with right:
        history = adapter["metrics"].get("history") or []
        points = [LossPoint(step=p["step"], loss=p["loss"]) for p in history if "loss" in p]
        if points:
            show_losses(points, "Training loss")
        else:
            st.markdown("**Training loss**")
            st.caption("This version has no recorded training loss.")


def _gate_chart(adapters: list[Adapter], name: str) -> None:
    """The gate's figures of each gated version of ``name``, one line per figure."""
    rows: dict[int, dict[str, float | None]] = {}
    for adapter in adapters:
        gate = adapter["gate"]
        if adapter["name"] == name and gate is not None:
            values = {check["figure"]: check["candidate"] for check in gate["checks"]}
            rows[adapter["version"]] = {
                label: values.get(key) for key, label in GATE_FIGURES.items()
            }
    if not rows:
        st.caption(f"No version of '{name}' has been through the promotion gate.")
        return
    st.markdown(f"**'{name}' on its evaluation set, per version: higher is better**")
    frame = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    frame.index.name = "version"
    st.line_chart(frame, x_label="version", y_label="score", height=220)


def _gate_decision(adapter: Adapter) -> None:
    """What the gate decided on the shown version, each figure against the current one's."""
    gate: Gate | None = adapter["gate"]
    if gate is None:
        st.caption(f"{adapter['ref']} has not been through the promotion gate.")
        return
    lines = "\n".join(
        f"- {'pass' if check['passed'] else '**fail**'} {check['figure']}: {check['reason']}"
        for check in gate["checks"]
    )
    notes = "".join(f"\n\n{note}" for note in gate["notes"])
    text = f"**Gate:** {gate['summary']} (on {gate['questions']} questions)\n\n{lines}{notes}"
    if gate["passed"]:
        st.success(text, icon=":material/verified:")
    else:
        st.warning(text, icon=":material/rule:")


def _promote_or_roll_back(client: LoragClient, adapters: list[Adapter], shown: Adapter) -> None:
    """Promote the shown version, or roll its adapter back to the version promoted before."""
    name = shown["name"]
    promoted = next(
        (a["ref"] for a in adapters if a["name"] == name and a["status"] == "promoted"), None
    )
    st.caption(
        f"'{name}' means **{promoted}** now."
        if promoted
        else f"No version of '{name}' is promoted."
    )
    left, right = st.columns(2)
    try:
        if left.button(
            f"Promote {shown['ref']}",
            icon=":material/upgrade:",
            type="primary",
            disabled=shown["status"] == "promoted" or shown["tainted"],
            width="stretch",
        ):
            done = client.promote(name, shown["version"])
            st.toast(f"{done['ref']} is promoted: '{name}' means it now")
            st.rerun()
        if right.button(f"Roll back {name}", icon=":material/undo:", width="stretch"):
            done = client.rollback(name)
            st.toast(f"Rolled back: '{name}' means {done['ref']} again")
            st.rerun()
    except ApiError as error:
        show_error(error)


def _finetune_form(client: LoragClient, collection: str | None) -> None:
    with st.form("finetune"):
        st.subheader("Fine-tune a new version")
        name = st.text_input(
            "Adapter name", placeholder="e.g. legal", help="A new name starts at version 1."
        )
        source = st.radio("Train on", [FROM_COLLECTION, FROM_FILE], horizontal=True)
        dataset = st.file_uploader(
            "Dataset (for a dataset file)",
            type=["jsonl"],
            help="JSONL records: alpaca (instruction/output), chat (messages), "
            "prompt/completion, or lorag RAG records.",
        )
        left, right = st.columns(2)
        recipe = left.selectbox("Recipe", RECIPES, help="lora-cpu suits a CPU; qlora a GPU.")
        steps = right.number_input(
            "Steps", min_value=0, value=0, help="Optimiser steps; 0 = the recipe's own."
        )
        if not st.form_submit_button("Start fine-tuning", icon=":material/model_training:"):
            return
    if source == FROM_COLLECTION and collection is None:
        st.warning("Create a collection with documents first (Documents page).")
        return
    if source == FROM_FILE and dataset is None:
        st.warning("Choose a JSONL dataset file first.")
        return
    try:
        job_id = client.finetune(
            name.strip(),
            collection=collection if source == FROM_COLLECTION else None,
            dataset=(dataset.name, dataset.getvalue()) if source == FROM_FILE and dataset else None,
            recipe=recipe,
            max_steps=int(steps) or None,
        )
    except ApiError as error:
        show_error(error)
        return
    follow(FINETUNE_JOB, job_id)


def _finetune_outcome(client: LoragClient) -> None:
    job_id = st.session_state.get(FINETUNE_JOB)
    if job_id is None:
        return
    job = finished_job(client, job_id, losses=True)
    result = job["result"]
    if job["status"] == "succeeded" and result is not None:
        name = str(result["adapter"]).split("@")[0]
        gate = result.get("gate")
        if gate is None:
            decided = f"It is a candidate: promote it above to make '{name}' mean it."
        elif gate["promoted"]:
            decided = f"{gate['summary']}: '{name}' means it now."
        else:
            decided = f"{gate['summary']}; promote it above to serve it anyway."
        st.success(f"Trained **{result['adapter']}**. {decided}", icon=":material/check_circle:")
    if job["losses"]:
        show_losses(job["losses"], "Training loss of the last run")
    show_job_problems(job)


def main() -> None:
    """The adapters page."""
    space = session.workspace()
    client = space.client
    adapters = client.adapters()
    st.title("Adapters")
    st.caption(
        "An adapter specialises the base model to your domain. Each training run adds a "
        "version; promoting a version makes the adapter's name mean it."
    )
    if adapters:
        _versions_table(adapters)
        refs = [a["ref"] for a in adapters]
        chosen = st.selectbox("Version", refs, index=len(refs) - 1)
        shown = next(a for a in adapters if a["ref"] == chosen)
        _taint_warning(shown)
        _evaluation_charts(shown)
        _gate_chart(adapters, shown["name"])
        _gate_decision(shown)
        _promote_or_roll_back(client, adapters, shown)
    else:
        st.info("No adapter yet: fine-tune one below.", icon=":material/tune:")
    st.divider()
    _finetune_form(client, space.collection["name"] if space.collection else None)
    _finetune_outcome(client)


main()
