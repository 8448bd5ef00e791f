"""Eval-gated promotion: a new adapter version replaces the promoted one only when it is at least
as good on the collection's evaluation set.

:func:`gate_version` evaluates the candidate and the version its name means now (the promoted
one; the base model where none is, or where the promoted one is tainted) on the evaluation set
of a collection (:mod:`assistant.evalset`), both through the whole engine, hybrid retrieval from
the collection included, in one :func:`~assistant.batch.evaluation.evaluate` run (the same
retrieved chunks, the same settings). It passes when, for each of answer F1
(:data:`FIGURES`), citation precision and abstention accuracy, the candidate's figure is at least
the current one's less ``gate.tolerance``, and its forgetting check passes: its general-text
perplexity is at most ``gate.max_forgetting_ratio`` times the base model's (``metrics.json``,
:mod:`finetune.evaluate`). A figure neither side has (no row it applies to) is not compared; one
only the current side has fails.

It fails, without evaluating, a tainted candidate (it is never promoted) and one whose training
rows reach into the evaluation set (:func:`~assistant.evalset.leaks`); training rows of the
current version that do are noted in the report, as they favour the current version, not the
candidate. A candidate that passes is promoted (the one before is archived, so rollback gives
it back); one that fails stays a candidate. Either way the report (:class:`GateReport`) is kept
with the version (:meth:`~assistant.core.registry.AdapterRegistry.record_gate`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.batch.evaluation import Configuration, evaluate
from assistant.core.errors import AdapterError, AdapterTaintedError, ConfigError
from assistant.core.registry import BASE, TRAINING_DATA, AdapterRecord
from assistant.evalset import eval_set_path, leaks, read_eval_set

if TYPE_CHECKING:
    from assistant.runtime import Runtime

FIGURES = (
    ("answer_f1", "f1"),
    ("citation_precision", "citation_precision"),
    ("abstention_accuracy", "abstention_accuracy"),
)
"""The gate's figures, each with the evaluation metric it is (:data:`~assistant.batch.
evaluation.METRICS`): higher is better."""
FORGETTING = "forgetting_ratio"
TAINTED = "tainted"
HELD_OUT = "held_out"


@dataclass(frozen=True)
class Check:
    """One figure of the gate: the candidate's value, what it is held against (the current
    version's value, or the forgetting limit), whether it passed, and why in words."""

    figure: str
    candidate: float | None
    against: float | None
    passed: bool
    reason: str


@dataclass(frozen=True)
class GateReport:
    """What the gate decided on ``candidate`` and why."""

    candidate: str
    current: str
    """The version it was compared with: ``NAME@VERSION``, or ``base``."""
    collection: str
    eval_set: str
    eval_set_sha256: str | None
    questions: int
    tolerance: float
    max_forgetting_ratio: float
    checks: list[Check]
    promoted: bool
    decided_at: str
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[str]:
        """The figures that failed, in order."""
        return [check.figure for check in self.checks if not check.passed]

    def summary(self) -> str:
        """One line: the decision and, when it failed, which figures."""
        if self.promoted:
            return f"{self.candidate} passed the gate against {self.current} and is promoted"
        if self.passed:
            return f"{self.candidate} passed the gate against {self.current} but stays a candidate"
        return (
            f"{self.candidate} stays a candidate: {', '.join(self.failed)} failed against "
            f"{self.current}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON (``gate.json``, the manifest's ``gate``, the API's ``gate``)."""
        return {
            **asdict(self),
            "passed": self.passed,
            "failed": self.failed,
            "summary": self.summary(),
        }


def gate_version(runtime: Runtime, ref: str, collection: str) -> GateReport:
    """Gate the version ``ref`` names on the evaluation set of ``collection``: promote it when
    it passes; the report, kept with the version.

    Refused (nothing evaluated or written): a version that is the promoted one already, and a
    collection with no evaluation set (:class:`ConfigError`, saying how to make one).
    """
    registry = runtime.registry
    record = registry.get(ref)
    if record.status == "promoted":
        raise AdapterError(
            f"{record.ref} is the promoted version of {record.name!r} already: gate a candidate"
        )
    path = eval_set_path(runtime.settings, collection)
    if not path.is_file():
        raise ConfigError(
            f"collection {collection!r} has no evaluation set ({path}) to gate {record.ref} on: "
            "train once with `lorag finetune --from-collection` (it holds some questions out), "
            "or give one with `lorag finetune --eval-set FILE`"
        )
    questions = read_eval_set(path)
    current, notes = _current(runtime, record)

    def decided(checks: list[Check], promoted: bool) -> GateReport:
        return GateReport(
            candidate=record.ref,
            current=current.ref if current else BASE,
            collection=collection,
            eval_set=str(path),
            eval_set_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            questions=len(questions.questions),
            tolerance=runtime.settings.gate.tolerance,
            max_forgetting_ratio=runtime.settings.gate.max_forgetting_ratio,
            checks=checks,
            promoted=promoted,
            decided_at=_now(),
            notes=notes,
        )

    refusal = _refusal(record, path)
    if refusal is not None:
        report = decided([refusal], promoted=False)
        registry.record_gate(record.ref, report.to_dict())
        return report

    if current is not None:
        leak = leaks(path, current.adapter_dir / TRAINING_DATA)
        if leak.found:
            notes.append(f"{current.ref}'s {leak.describe()}: the comparison favours it")
    evaluated = evaluate(
        runtime,
        questions,
        [Configuration(current.ref if current else None), Configuration(record.ref)],
        collection=collection,
    )
    now, new = (result.metrics for result in evaluated.results)
    tolerance = runtime.settings.gate.tolerance
    checks = [_compare(figure, new[metric], now[metric], tolerance) for figure, metric in FIGURES]
    checks.append(_forgetting(record, runtime.settings.gate.max_forgetting_ratio))
    promoted = False
    if all(check.passed for check in checks):
        try:
            registry.promote(record.ref)
            promoted = True
        except AdapterTaintedError as error:  # an erasure reached it while it was evaluated
            checks.append(Check(TAINTED, None, None, False, str(error)))
    report = decided(checks, promoted)
    registry.record_gate(record.ref, report.to_dict())
    return report


def _current(runtime: Runtime, record: AdapterRecord) -> tuple[AdapterRecord | None, list[str]]:
    """The version ``record``'s name means now (``None``: the base model), with a note when
    the promoted version is passed over because it is tainted."""
    promoted = runtime.registry.get(record.name)
    if promoted.status != "promoted":
        return None, []
    if promoted.tainted:
        return None, [f"{promoted.ref} is promoted but tainted (not served): compared with base"]
    return promoted, []


def _refusal(record: AdapterRecord, eval_set: Path) -> Check | None:
    """The check that fails ``record`` before any evaluation: it is tainted, or its training
    rows reach into the evaluation set (``None``: neither)."""
    if record.tainted:
        erased = "; ".join(taint.describe() for taint in record.tainted_by)
        return Check(TAINTED, None, None, False, f"trained on {erased}: never promoted")
    leak = leaks(eval_set, record.adapter_dir / TRAINING_DATA)
    if leak.found:
        return Check(HELD_OUT, None, None, False, f"its {leak.describe()}")
    return None


def _compare(
    figure: str, candidate: float | None, current: float | None, tolerance: float
) -> Check:
    """``figure`` passes when the candidate's value is at least the current one's less
    ``tolerance``; when neither has one it is not compared, when only the current has one it
    fails."""
    if candidate is None and current is None:
        return Check(figure, None, None, True, "not measured: no evaluation row it applies to")
    if candidate is None:
        return Check(figure, None, current, False, f"not measured on the candidate ({current:.4f})")
    if current is None:
        return Check(figure, candidate, None, True, "not measured on the current version")
    passed = candidate >= current - tolerance
    sign = ">=" if passed else "<"
    reason = f"{candidate:.4f} {sign} {current:.4f} - tolerance {tolerance:g}"
    return Check(figure, candidate, current, passed, reason)


def _forgetting(record: AdapterRecord, limit: float) -> Check:
    """The candidate's forgetting check: its general-text perplexity over the base model's, at
    most ``limit``; a version whose run measured none fails it."""
    ratio = (record.metrics.get("evaluation") or {}).get(FORGETTING)
    if not isinstance(ratio, int | float):
        return Check(FORGETTING, None, limit, False, "not measured: its metrics.json has none")
    passed = ratio <= limit
    reason = f"{ratio:.4f} {'<=' if passed else '>'} {limit:g}"
    return Check(FORGETTING, float(ratio), limit, passed, reason)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
