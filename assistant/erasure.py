"""Erasure (GDPR Art. 17): deleting documents, and everything lorag made from them.

:func:`erase_documents` is the one way documents leave lorag (``lorag documents delete``,
``DELETE /v1/collections/{name}/documents/{doc_id}``, and deleting a whole collection). In order:

1. every adapter version trained on one of the documents is tainted (a fact in its manifest:
   it is no longer served, promoted or bound) and its kept training rows of those documents
   are removed (:meth:`~assistant.core.registry.AdapterRegistry.taint`);
2. the rows of those documents are removed from the datasets of the training runs under
   ``data_dir/runs`` (RAFT and feedback datasets name their documents per row) and from the
   evaluation sets (:mod:`assistant.evalset`; a deleted collection's goes whole);
3. the feedback on answers that rested on them is removed (it holds the answers' text);
4. their chunks are deleted and the store's files rewritten without them, with the kept copies
   of their files (or the whole collection goes);
5. the report of what the erasure reached is written to ``data_dir/erasures/<id>.json``.

Adapters are tainted first: an erasure that fails half-way has tainted too much, never served a
model trained on a deleted document. The report holds ids, content hashes, counts and paths
under the data dir, not the documents' text; :func:`erasure_reports` finds the reports of a
document, and the audit log's line for the erasure carries its id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.core.files import write_json
from assistant.core.registry import TRAINING_DATA
from assistant.core.training_rows import drop_rows_of
from assistant.evalset import EVALSETS_DIR, eval_set_path

if TYPE_CHECKING:
    from assistant.runtime import Runtime

ERASURES_DIR = "erasures"
"""Under ``data_dir``: one JSON report per erasure."""
RUNS_DIR = "runs"
RUN_DATASET = "dataset.jsonl"


@dataclass(frozen=True)
class ErasedDocument:
    """A document an erasure deleted: its id, where it was ingested from, the content hash the
    store knew it by, and how many chunks went."""

    doc_id: str
    source: str
    content_hash: str
    chunks_removed: int


@dataclass(frozen=True)
class ErasureReport:
    """What one erasure reached (see the module docstring)."""

    erasure_id: str
    erased_at: str
    collection: str
    requested_by: str
    request_id: str | None
    documents: list[ErasedDocument]
    collection_deleted: bool
    adapters_tainted: list[str]
    training_rows_removed: dict[str, int] = field(default_factory=dict)
    """Rows removed, by dataset file (its path under the data dir)."""
    feedback_removed: int = 0
    files_erased: list[str] = field(default_factory=list)
    """Files removed or rewritten (paths under the data dir): the kept originals, the
    datasets; the store's own files are rewritten too (``store_rewritten``)."""
    store_rewritten: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON (what ``erasures/<id>.json`` holds and the API returns)."""
        return asdict(self)

    @property
    def doc_ids(self) -> list[str]:
        return [document.doc_id for document in self.documents]

    def audit_target(self) -> dict[str, Any]:
        """What the erasure's audit line says it deleted and reached (ids and counts)."""
        return {
            "collection": self.collection,
            "request_id": self.request_id,
            "erasure_id": self.erasure_id,
            "doc_ids": self.doc_ids,
            "adapters_tainted": self.adapters_tainted,
            "training_rows_removed": sum(self.training_rows_removed.values()),
            "feedback_removed": self.feedback_removed,
        }


def erase_documents(
    runtime: Runtime,
    collection: str,
    doc_ids: Sequence[str],
    *,
    requested_by: str,
    request_id: str | None = None,
    whole_collection: bool = False,
) -> ErasureReport:
    """Erase ``doc_ids`` of ``collection`` and what was made from them (with
    ``whole_collection``: every document, and the collection itself); the report, also written
    under ``data_dir/erasures``. The documents must be in the collection (the callers check)."""
    store, data_dir = runtime.store, runtime.settings.data_dir
    known = {info.doc_id: info for info in store.documents(collection)}
    wanted = list(known) if whole_collection else list(dict.fromkeys(doc_ids))
    documents = [
        ErasedDocument(
            doc_id=doc_id,
            source=known[doc_id].source,
            content_hash=known[doc_id].file_hash,
            chunks_removed=store.count(collection, doc_id),
        )
        for doc_id in wanted
    ]
    erasure_id = uuid.uuid4().hex[:16]
    erased_at = datetime.now(UTC).isoformat(timespec="seconds")

    reached = runtime.registry.taint(
        wanted, collection=collection, erasure_id=erasure_id, erased_at=erased_at
    )
    rows: dict[str, int] = {}
    for version in reached:
        if version.rows_removed:
            rows[_under(data_dir, version.record.adapter_dir / TRAINING_DATA)] = (
                version.rows_removed
            )
    datasets = [
        *sorted((data_dir / RUNS_DIR).glob(f"*/{RUN_DATASET}")),
        *sorted((data_dir / EVALSETS_DIR).glob("*.jsonl")),
    ]
    for dataset in datasets:
        if removed := drop_rows_of(dataset, wanted):
            rows[_under(data_dir, dataset)] = removed
    evalset = eval_set_path(runtime.settings, collection)
    sets_deleted = [_under(data_dir, evalset)] if whole_collection and evalset.is_file() else []
    if sets_deleted:
        evalset.unlink()
    feedback_removed = runtime.feedback.drop_documents(wanted)

    originals = [
        _under(data_dir, copy)
        for doc_id in wanted
        if (copy := runtime.originals.find(collection, doc_id)) is not None
    ]
    if whole_collection:
        store.delete_collection(collection)
        runtime.originals.forget_collection(collection)
        if runtime.registry.binding(collection) is not None:
            runtime.registry.bind(collection, None)
    else:
        for doc_id in wanted:
            store.delete_document(collection, doc_id)
            runtime.originals.forget(collection, doc_id)
        store.erase(collection)

    report = ErasureReport(
        erasure_id=erasure_id,
        erased_at=erased_at,
        collection=collection,
        requested_by=requested_by,
        request_id=request_id,
        documents=documents,
        collection_deleted=whole_collection,
        adapters_tainted=[version.record.ref for version in reached],
        training_rows_removed=rows,
        feedback_removed=feedback_removed,
        files_erased=sorted({*originals, *rows, *sets_deleted}),
    )
    write_json(data_dir / ERASURES_DIR / f"{erasure_id}.json", report.to_dict())
    return report


def erasure_reports(
    data_dir: Path, doc_id: str, collection: str | None = None
) -> list[dict[str, Any]]:
    """The reports of the erasures that deleted ``doc_id`` (from ``collection``, when given),
    oldest first."""
    return [
        report
        for report in _reports(data_dir)
        if any(document["doc_id"] == doc_id for document in report["documents"])
        and (collection is None or report["collection"] == collection)
    ]


def erasures_since(data_dir: Path, since: str) -> list[dict[str, Any]]:
    """The reports of the erasures at or after ``since`` (an ISO time as reports write it),
    oldest first."""
    return [report for report in _reports(data_dir) if report["erased_at"] >= since]


def _reports(data_dir: Path) -> list[dict[str, Any]]:
    """Every erasure report, oldest first."""
    reports = [json.loads(path.read_text()) for path in (data_dir / ERASURES_DIR).glob("*.json")]
    return sorted(reports, key=lambda report: (report["erased_at"], report["erasure_id"]))


def _under(data_dir: Path, path: Path) -> str:
    """``path`` relative to the data dir (as it is shown in a report)."""
    return str(path.relative_to(data_dir))
