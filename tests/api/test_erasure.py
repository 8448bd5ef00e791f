"""Erasure that reaches adapters, over HTTP: deleting a document taints the adapter versions
trained on it (not served, promoted or bound; shown as tainted), leaves an adapter that never
saw it untouched, removes its rows from their kept training data, is audited, and has a report;
the tainted version is retrained without the document into a new, servable version; a version
whose document is erased while it trains is tainted once registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.core.errors import AdapterTaintedError
from assistant.core.registry import TRAINING_DATA, AdapterRegistry, TrainingOrigin
from assistant.core.types import DocumentInfo
from assistant.training import FinetunePlan, retrain_adapter, train_adapter
from finetune.trainer import StepReport
from tests.api.conftest import QUESTION, Served, auth
from tests.core.test_registry import make_run

ADMIN = auth("admin")
TRAVEL_TEXT = "120 euros per night"
"""Text of ``travel.md`` (the document erased here) that its training rows quote."""


def rows_of(doc: DocumentInfo, text: str, count: int) -> list[dict[str, Any]]:
    """``count`` RAFT-shaped training rows whose one source is ``text`` from ``doc``."""
    return [
        {
            "question": f"Question {n} about {Path(doc.source).name}?",
            "sources": [f"Source [1]: {text}"],
            "answer": f"{text} [1]",
            "doc_ids": [doc.doc_id],
        }
        for n in range(count)
    ]


def register(
    served: Served, name: str, lora: Path, rows: list[dict[str, Any]], folder: Path
) -> None:
    """Register ``name@1`` from ``lora`` as a training run on ``rows`` would: the rows kept
    with it, their documents (with the store's content hashes) in its origin."""
    dataset = folder / f"{name}.jsonl"
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    hashes = {info.doc_id: info.file_hash for info in served.runtime.store.documents("kb")}
    used = {doc for row in rows for doc in row["doc_ids"]}
    origin = TrainingOrigin.of(
        served.settings,
        method="lora",
        dataset_fingerprint=name * 4,
        source_doc_hashes={doc: hashes[doc] for doc in used},
    )
    registry = AdapterRegistry.for_settings(served.settings)
    registry.register(name, make_run(folder / f"run-{name}", lora), origin, dataset=dataset)


@pytest.fixture(scope="module")
def documents(served: Served) -> dict[str, DocumentInfo]:
    """The documents of ``kb`` by file name."""
    return {Path(d.source).name: d for d in served.runtime.store.documents("kb")}


@pytest.fixture(scope="module")
def erased(
    served: Served,
    documents: dict[str, DocumentInfo],
    loras: list[Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """``travel@1`` trained on rows of travel.md (and one of leave.txt), ``leave@1`` on rows of
    leave.txt only, ``kb`` bound to ``travel``; then travel.md deleted over HTTP. The delete
    response and what was checked before it."""
    folder = tmp_path_factory.mktemp("erasure-runs")
    travel, leave = documents["travel.md"], documents["leave.txt"]
    leave_text = "25 days of paid leave per year"
    register(
        served,
        "travel",
        loras[0],
        rows_of(travel, TRAVEL_TEXT, 2) + rows_of(leave, leave_text, 1),
        folder,
    )
    register(served, "leave", loras[1], rows_of(leave, leave_text, 2), folder)
    client = served.client
    assert client.post("/v1/adapters/travel/promote", json={"version": 1}, headers=ADMIN).is_success
    served.runtime.registry.bind("kb", "travel")
    before = {
        ref: client.post("/v1/ask", json={"question": QUESTION, "adapter": ref}, headers=ADMIN)
        for ref in ("travel", "leave")
    }
    chunks = served.runtime.store.count("kb", travel.doc_id)
    deleted = client.delete(f"/v1/collections/kb/documents/{travel.doc_id}", headers=ADMIN)
    return {"before": before, "deleted": deleted, "chunks": chunks, "doc": travel}


def test_deleting_a_document_taints_the_adapter_trained_on_it_only(
    served: Served, erased: dict[str, Any]
) -> None:
    assert {ref: r.status_code for ref, r in erased["before"].items()} == {
        "travel": 200,
        "leave": 200,
    }
    assert erased["deleted"].status_code == 204
    doc = erased["doc"]
    listed = {a["ref"]: a for a in served.client.get("/v1/adapters", headers=ADMIN).json()}
    travel, leave = listed["travel@1"], listed["leave@1"]
    assert travel["tainted"] is True and travel["status"] == "promoted"
    [taint] = travel["tainted_by"]
    assert (taint["doc_id"], taint["collection"]) == (doc.doc_id, "kb")
    assert taint["trained_hash"] == doc.file_hash
    assert taint["erasure_id"] == erased["deleted"].headers["x-erasure-id"]
    assert (leave["tainted"], leave["tainted_by"]) == (False, [])
    assert not listed["ops@1"]["tainted"] and not listed["ops@2"]["tainted"]
    models = {m["id"] for m in served.client.get("/v1/models", headers=ADMIN).json()["data"]}
    assert "leave@1" in models and "travel@1" not in models


@pytest.mark.parametrize(
    "body",
    [
        {"question": QUESTION, "adapter": "travel"},
        {"question": QUESTION, "adapter": "travel@1"},
        {"question": QUESTION},  # kb is bound to travel
    ],
)
def test_a_tainted_adapter_is_not_served(
    served: Served, erased: dict[str, Any], body: dict[str, str]
) -> None:
    refused = served.client.post("/v1/ask", json=body, headers=ADMIN)
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert "travel@1 is tainted" in detail and erased["doc"].doc_id in detail
    assert "lorag adapters retrain travel@1" in detail


def test_the_untouched_adapter_still_answers(served: Served, erased: dict[str, Any]) -> None:
    answered = served.client.post(
        "/v1/ask", json={"question": QUESTION, "adapter": "leave"}, headers=ADMIN
    )
    assert answered.status_code == 200, answered.text
    assert (answered.json()["adapter"], answered.json()["adapter_version"]) == ("leave", 1)


def test_a_tainted_version_is_not_promoted_or_bound(served: Served, erased: dict[str, Any]) -> None:
    again = served.client.post("/v1/adapters/travel/promote", json={"version": 1}, headers=ADMIN)
    assert again.status_code == 200  # already the promoted one: nothing changes
    registry = served.runtime.registry
    with pytest.raises(AdapterTaintedError, match="travel@1 is tainted"):
        registry.bind("other", "travel@1")
    assert registry.binding("other") is None


def test_the_erasure_is_audited_and_reported(served: Served, erased: dict[str, Any]) -> None:
    doc = erased["doc"]
    erasure_id = erased["deleted"].headers["x-erasure-id"]
    lines = (served.settings.data_dir / "audit.jsonl").read_text().splitlines()
    [line] = [json.loads(x) for x in lines if erasure_id in x]
    assert line["action"] == "documents.delete" and line["doc_ids"] == [doc.doc_id]
    assert line["adapters_tainted"] == ["travel@1"] and line["training_rows_removed"] == 2
    assert line["request_id"] == erased["deleted"].headers["x-request-id"]

    path = f"/v1/collections/kb/documents/{doc.doc_id}/erasure"
    report = served.client.get(path, headers=ADMIN)
    assert report.status_code == 200, report.text
    [erasure] = report.json()["erasures"]
    assert erasure["erasure_id"] == erasure_id and erasure["requested_by"] == "admin"
    assert erasure["request_id"] == line["request_id"]
    assert erasure["documents"] == [
        {
            "doc_id": doc.doc_id,
            "source": doc.source,
            "content_hash": doc.file_hash,
            "chunks_removed": erased["chunks"],
        }
    ]
    kept = f"adapters/travel/1/{TRAINING_DATA}"
    assert erasure["adapters_tainted"] == ["travel@1"]
    assert erasure["training_rows_removed"] == {kept: 2}
    assert kept in erasure["files_erased"] and erasure["collection_deleted"] is False
    reader = served.client.get(path, headers=auth("reader"))
    assert reader.status_code == 403
    never = served.client.get(
        "/v1/collections/kb/documents/" + "0" * 32 + "/erasure", headers=ADMIN
    )
    assert never.status_code == 404 and "never erased" in never.json()["detail"]


def test_no_file_under_the_data_dir_holds_the_erased_text(
    served: Served, erased: dict[str, Any]
) -> None:
    data = served.settings.data_dir
    held = [p for p in data.rglob("*") if p.is_file() and TRAVEL_TEXT.encode() in p.read_bytes()]
    assert held == []
    kept = (data / "adapters" / "leave" / "1" / TRAINING_DATA).read_text()
    assert kept.count("\n") == 2  # the untouched adapter keeps its rows


def test_retraining_builds_a_new_version_without_the_document(
    served: Served, erased: dict[str, Any]
) -> None:
    trained = retrain_adapter(served.runtime, "travel@1", {"max_steps": "1"})
    record = trained.record
    assert (record.ref, record.status, record.tainted) == ("travel@2", "candidate", False)
    assert erased["doc"].doc_id not in record.source_doc_ids and record.source_doc_ids
    assert (record.adapter_dir / TRAINING_DATA).read_text().count("\n") == 1
    answered = served.client.post(
        "/v1/ask", json={"question": QUESTION, "adapter": "travel@2"}, headers=ADMIN
    )
    assert answered.status_code == 200, answered.text
    promoted = served.client.post("/v1/adapters/travel/promote", json={"version": 2}, headers=ADMIN)
    assert promoted.json()["ref"] == "travel@2" and not promoted.json()["tainted"]
    rolled = served.client.post("/v1/adapters/travel/rollback", headers=ADMIN)
    assert rolled.status_code == 409 and "travel@1 is tainted" in rolled.json()["detail"]


def test_a_document_erased_while_an_adapter_trains_on_it_taints_it_once_registered(
    served: Served, tmp_path: Path
) -> None:
    memo = tmp_path / "memo.txt"
    memo.write_text("The staff party is on the 14th of June at the harbour.\n")
    assert served.runtime.ingestor("racy").ingest([memo]).ok
    [doc] = served.runtime.store.documents("racy")
    dataset = tmp_path / "racy.jsonl"
    rows = rows_of(doc, "the 14th of June", 2)
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    erasures: list[str] = []

    def erase_once(step: StepReport) -> None:  # the erasure runs between two training steps
        if not erasures:
            erasures.append(served.runtime.delete_documents("racy", [doc.doc_id]).erasure_id)

    plan = FinetunePlan(name="racy", data=dataset, overrides={"max_steps": "2"})
    record = train_adapter(served.runtime, plan, progress=erase_once).record
    assert [(t.doc_id, t.erasure_id) for t in record.tainted_by] == [(doc.doc_id, erasures[0])]
    assert served.runtime.registry.get("racy").tainted
