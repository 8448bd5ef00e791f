"""Batch jobs over HTTP: a question file answered in the background, downloaded in its format;
refused files leave nothing behind."""

from __future__ import annotations

import csv
import io
import json
import threading
from typing import Any

import pytest

from tests.api.conftest import Served, auth

ADMIN = auth("admin")
CSV = b"id,question\nq1,What is the hotel limit?\nq2,How many days of leave?\nq3,\n"


def start(served: Served, name: str, content: bytes, **form: str) -> Any:
    return served.client.post(
        "/v1/batch", files={"file": (name, content)}, data=form, headers=ADMIN
    )


def test_a_csv_is_answered_and_downloaded_as_csv(served: Served) -> None:
    accepted = start(served, "answers.csv", CSV)  # the name of the output, on purpose
    assert accepted.status_code == 202, accepted.text
    job = served.wait(accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["kind"] == "batch" and job["collection"] == "kb"
    result = job["result"]
    assert result["rows"] == 3 and result["answered"] + result["abstained"] == 2
    assert result["download"] == f"/v1/batch/{job['id']}/download"
    assert [error["item"] for error in job["errors"]] == ["row 4"]  # the row without a question
    download = served.client.get(result["download"], headers=auth("reader"))
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert f"answers-{job['id'][:8]}.csv" in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [row["id"] for row in rows] == ["q1", "q2"] and all(row["answer"] for row in rows)


def test_a_jsonl_file_with_an_adapter(served: Served) -> None:
    lines = b'{"question": "What is the hotel limit?"}\n'
    job = served.wait(start(served, "q.jsonl", lines, adapter="ops@2").json()["job_id"])
    assert job["status"] == "succeeded", job
    body = served.client.get(f"/v1/batch/{job['id']}/download", headers=ADMIN)
    assert body.headers["content-type"].startswith("application/x-ndjson")
    assert json.loads(body.text.splitlines()[0])["question"] == "What is the hotel limit?"


def test_base_means_the_base_model_on_a_bound_collection_and_every_answer_says_so(
    served: Served,
) -> None:
    registry = served.runtime.registry
    registry.bind("kb", "ops@2")
    try:
        answered: dict[str, dict[str, Any]] = {}
        for adapter in ("base", "", "ops@1"):
            form = {"adapter": adapter} if adapter else {}
            accepted = start(served, "q.jsonl", b'{"question": "Hotel limit?"}\n', **form)
            job = served.wait(accepted.json()["job_id"])
            assert job["status"] == "succeeded", job
            body = served.client.get(f"/v1/batch/{job['id']}/download", headers=ADMIN)
            answered[adapter or "bound"] = {
                "result": job["result"]["adapter"],
                "row": json.loads(body.text.splitlines()[0])["adapter"],
                "job": job["id"],
            }
    finally:
        registry.bind("kb", None)
    assert {k: (v["result"], v["row"]) for k, v in answered.items()} == {
        "base": ("base", "base"),
        "bound": ("ops@2", "ops@2"),
        "ops@1": ("ops@1", "ops@1"),
    }
    audit = served.settings.data_dir / "audit.jsonl"
    lines = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    audited = {
        line["request_id"]: (line["adapter"], line["adapter_version"])
        for line in lines
        if line["action"] == "batch.answer"
    }
    assert audited[answered["base"]["job"]] == (None, None)
    assert audited[answered["bound"]["job"]] == ("ops", 2)
    assert audited[answered["ops@1"]["job"]] == ("ops", 1)


@pytest.mark.parametrize(
    ("name", "content", "form", "status", "named"),
    [
        ("q.txt", b"question\nwhy?\n", {}, 415, "'q.txt': unsupported file type '.txt'"),
        ("q.csv", b"id,text\n1,why?\n", {}, 422, "'q.csv' has no question column"),
        ("q.csv", b"", {}, 422, "'q.csv' is empty"),
        ("q.csv", b"id,question\n1,\n", {}, 422, "holds no question to answer"),
        ("../q.csv", CSV, {}, 400, "unsafe file name '../q.csv'"),
        ("q.csv", CSV, {"collection": "nope"}, 404, "unknown collection 'nope'"),
        ("q.csv", CSV, {"adapter": "ghost"}, 404, "unknown adapter 'ghost'"),
    ],
)
def test_bad_batch_files_are_refused_and_leave_nothing(
    served: Served, name: str, content: bytes, form: dict[str, str], status: int, named: str
) -> None:
    jobs = served.client.get("/v1/jobs", headers=ADMIN).json()
    response = start(served, name, content, **form)
    assert response.status_code == status, response.text
    assert named in response.json()["detail"]
    assert ".staging" not in response.json()["detail"]  # no server path
    assert served.client.get("/v1/jobs", headers=ADMIN).json() == jobs
    work = served.settings.data_dir / "api" / "work"
    assert not [p for p in work.iterdir() if p.name.startswith(".")]


def test_downloads_wait_for_success_and_only_for_batch_jobs(served: Served) -> None:
    ingest = served.client.post(
        "/v1/collections/kb/documents", files=[("files", ("x.txt", b"Text."))], headers=ADMIN
    ).json()["job_id"]
    served.wait(ingest)
    not_batch = served.client.get(f"/v1/batch/{ingest}/download", headers=ADMIN)
    assert not_batch.status_code == 404 and "ingest job" in not_batch.json()["detail"]
    assert served.client.get("/v1/batch/nope/download", headers=ADMIN).status_code == 404
    gate = threading.Event()
    holder = served.services.jobs.submit("batch", "kb", "admin", lambda _: {"held": gate.wait()})
    try:
        queued = start(served, "q.csv", CSV).json()["job_id"]
        early = served.client.get(f"/v1/batch/{queued}/download", headers=ADMIN)
        assert early.status_code == 409
        assert f"job {queued} is queued" in early.json()["detail"]
        cancelled = served.client.post(f"/v1/jobs/{queued}/cancel", headers=ADMIN).json()
        assert cancelled["status"] == "cancelled"
        late = served.client.get(f"/v1/batch/{queued}/download", headers=ADMIN)
        assert late.status_code == 409 and "is cancelled" in late.json()["detail"]
    finally:
        gate.set()
    assert served.wait(holder.id)["status"] == "succeeded"
