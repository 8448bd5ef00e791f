"""Feedback over HTTP: an answer rated up or down (with a correction) by its answer id, kept with
the question, the sources and the adapter version, audited; refused for an unknown or another
key's answer. The round trip: thumbs-down + correction -> dataset -> a registered candidate
adapter -> the promotion gate's decision on the collection's evaluation set; and an erasure
reaches the feedback and that adapter."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from assistant.core.registry import TRAINING_DATA
from assistant.feedback import Feedback
from tests.api.conftest import QUESTION, Served, auth

ADMIN = auth("admin")
CORRECTION = "The hotel limit is 120 euros per night in Amsterdam [1]."
EVAL_SET = (
    "question,expected_answer,expected_source,unanswerable\n"
    "How many days of paid leave do employees get?,25 days,leave.txt,no\n"
    "In which class are train tickets reimbursed?,second class,travel.md,no\n"
    "What is the warranty of the Quillvane 9 hoverboard?,,,yes\n"
)
"""The evaluation set the feedback-trained version is gated on: none of its questions is the
rated one."""
FIGURES = ["answer_f1", "citation_precision", "abstention_accuracy", "forgetting_ratio"]


def ask(served: Served, **body: Any) -> dict[str, Any]:
    response = served.client.post("/v1/ask", json={"question": QUESTION, **body}, headers=ADMIN)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["answer_id"] == response.headers["x-request-id"]
    return answer


def rate(served: Served, key: str = "admin", **body: Any) -> Any:
    return served.client.post("/v1/feedback", json=body, headers=auth(key))


@pytest.fixture(scope="module")
def rated(served: Served) -> dict[str, Any]:
    """A base-model answer rated down with a correction, and an ``ops@2`` answer rated up."""
    base, tuned = ask(served), ask(served, adapter="ops@2")
    down = rate(served, answer_id=base["answer_id"], rating="down", correction=CORRECTION)
    up = rate(served, answer_id=tuned["answer_id"], rating="up")
    return {"base": base, "tuned": tuned, "down": down, "up": up}


def test_a_rating_is_kept_with_the_question_sources_and_adapter(
    served: Served, rated: dict[str, Any]
) -> None:
    assert rated["down"].status_code == 201, rated["down"].text
    assert rated["down"].json() == {
        "feedback_id": rated["down"].json()["feedback_id"],
        "answer_id": rated["base"]["answer_id"],
        "rating": "down",
        "corrected": True,
        "collection": "kb",
        "adapter": None,
    }
    assert rated["up"].json()["adapter"] == "ops@2" and not rated["up"].json()["corrected"]
    lines = (served.settings.data_dir / "feedback.jsonl").read_text().splitlines()
    down, up = (Feedback.from_json(line) for line in lines[:2])
    assert (down.rating, down.correction, down.question) == ("down", CORRECTION, QUESTION)
    assert down.answer == rated["base"]["answer"] and down.key_id == "admin"
    assert [(s.n, s.chunk_id) for s in down.sources] == [
        (s["n"], s["chunk_id"]) for s in rated["base"]["sources"]
    ]
    assert {s.doc_id for s in down.sources} == {s["doc_id"] for s in rated["base"]["sources"]}
    assert (up.rating, up.adapter, up.correction) == ("up", "ops@2", None)


def test_a_rating_is_audited_without_its_text(served: Served, rated: dict[str, Any]) -> None:
    audit = (served.settings.data_dir / "audit.jsonl").read_text().splitlines()
    lines = [json.loads(line) for line in audit if '"action": "feedback"' in line]
    answer_lines = {json.loads(line)["request_id"] for line in audit if '"answer"' in line}
    assert [line["request_id"] for line in lines[:2]] == [
        rated["base"]["answer_id"],
        rated["tuned"]["answer_id"],
    ]
    assert lines[0]["rating"] == "down" and lines[0]["corrected"] is True
    assert {line["request_id"] for line in lines} <= answer_lines  # tied to answers' lines
    assert CORRECTION not in "\n".join(audit)


@pytest.mark.parametrize(
    ("key", "body", "status", "named"),
    [
        ("admin", {"answer_id": "nope", "rating": "up"}, 404, "no recent answer 'nope'"),
        ("admin", {"answer_id": "x", "rating": "meh"}, 422, "rating"),
        ("admin", {"rating": "up"}, 422, "answer_id"),
        ("admin", {"answer_id": "x", "rating": "up", "extra": 1}, 422, "extra"),
    ],
)
def test_bad_feedback_is_refused(
    served: Served, key: str, body: dict[str, Any], status: int, named: str
) -> None:
    response = rate(served, key, **body)
    assert response.status_code == status and named in response.json()["detail"]


def test_only_the_key_that_asked_rates_an_answer(served: Served, rated: dict[str, Any]) -> None:
    lines = (served.settings.data_dir / "feedback.jsonl").read_text()
    refused = rate(served, "reader", answer_id=rated["base"]["answer_id"], rating="up")
    assert refused.status_code == 403 and "another key" in refused.json()["detail"]
    assert (served.settings.data_dir / "feedback.jsonl").read_text() == lines


def test_feedback_becomes_an_adapter_version_and_a_gate_decision(
    served: Served, rated: dict[str, Any]
) -> None:
    accepted = served.client.post(
        "/v1/finetune",
        data={"name": "fromfb", "feedback": "kb", "max_steps": "1", "gate": "true"},
        files={"eval_set": ("kb-questions.csv", EVAL_SET.encode())},
        headers=ADMIN,
    )
    assert accepted.status_code == 202, accepted.text
    job = served.wait(accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["adapter"] == "fromfb@1" and job["collection"] == "kb"
    gate = job["result"]["gate"]
    assert (gate["candidate"], gate["current"], gate["collection"]) == ("fromfb@1", "base", "kb")
    assert gate["questions"] == 3 and [c["figure"] for c in gate["checks"]] == FIGURES
    assert gate["failed"] == [c["figure"] for c in gate["checks"] if not c["passed"]]
    assert gate["promoted"] == gate["passed"] == (not gate["failed"])
    [adapter] = [
        a for a in served.client.get("/v1/adapters", headers=ADMIN).json() if a["name"] == "fromfb"
    ]
    assert adapter["gate"] == gate and not adapter["tainted"]
    assert (
        adapter["status"]
        == job["result"]["status"]
        == ("promoted" if gate["passed"] else "candidate")
    )
    shown = served.client.get("/v1/adapters/fromfb", headers=ADMIN).json()
    assert shown["versions"][0]["gate"] == gate
    sources = {s["doc_id"] for r in (rated["base"], rated["tuned"]) for s in r["sources"]}
    assert set(adapter["source_doc_ids"]) == sources
    rows = [
        json.loads(line)
        for line in (served.settings.data_dir / "adapters/fromfb/1" / TRAINING_DATA)
        .read_text()
        .splitlines()
    ]
    assert len(rows) == 2 and {row["origin"] for row in rows} == {"feedback"}
    corrected = next(row for row in rows if row["answer"] == CORRECTION)
    assert corrected["question"] == QUESTION
    assert corrected["doc_ids"] == [s["doc_id"] for s in rated["base"]["sources"]]
    assert corrected["chunk_ids"] == [s["chunk_id"] for s in rated["base"]["sources"]]
    numbers = [re.findall(r"^Source (\d+)", row) for row in corrected["sources"]]
    assert numbers == [[str(n)] for n in range(1, len(rated["base"]["sources"]) + 1)]


def test_erasing_a_document_reaches_its_feedback_and_the_adapter_made_from_it(
    served: Served, rated: dict[str, Any]
) -> None:
    doc_id = rated["base"]["sources"][0]["doc_id"]
    deleted = served.client.delete(f"/v1/collections/kb/documents/{doc_id}", headers=ADMIN)
    assert deleted.status_code == 204
    report = served.client.get(f"/v1/collections/kb/documents/{doc_id}/erasure", headers=ADMIN)
    [erasure] = report.json()["erasures"]
    assert erasure["feedback_removed"] >= 1 and "fromfb@1" in erasure["adapters_tainted"]
    remaining = (served.settings.data_dir / "feedback.jsonl").read_text().splitlines()
    assert all(doc_id not in {s.doc_id for s in Feedback.from_json(x).sources} for x in remaining)
    assert CORRECTION.encode() not in b"".join(
        p.read_bytes() for p in Path(served.settings.data_dir).rglob("*") if p.is_file()
    )
