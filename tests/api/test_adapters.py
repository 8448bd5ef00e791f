"""Adapters over HTTP (list, show, promote, roll back) and fine-tuning jobs: from an uploaded
dataset and from a collection, their losses and result, cancellation, and refused requests."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from tests.api.conftest import Served, auth

ADMIN = auth("admin")


def dataset(rows: int = 8) -> bytes:
    records = [
        {"instruction": f"Who maintains service {n}?", "output": f"Team {n} maintains it."}
        for n in range(rows)
    ]
    return "".join(json.dumps(record) + "\n" for record in records).encode()


def finetune(served: Served, *, files: dict[str, Any] | None = None, **form: Any) -> Any:
    return served.client.post("/v1/finetune", data=form, files=files, headers=ADMIN)


def test_adapters_are_listed_shown_promoted_and_rolled_back(served: Served) -> None:
    client = served.client
    listed = client.get("/v1/adapters", headers=auth("reader")).json()
    assert [(a["ref"], a["status"]) for a in listed] == [
        ("ops@1", "promoted"),
        ("ops@2", "candidate"),
    ]
    assert listed[0]["metrics"] == {"eval_loss": 1.25} and listed[0]["method"] == "lora"
    assert listed[0]["lora_gguf_sha256"] is None  # its run kept no GGUF LoRA

    shown = client.get("/v1/adapters/ops", headers=auth("reader")).json()
    assert shown["active_version"] == 1 and [v["version"] for v in shown["versions"]] == [1, 2]

    promoted = client.post("/v1/adapters/ops/promote", json={"version": 2}, headers=ADMIN)
    assert promoted.status_code == 200 and promoted.json()["status"] == "promoted"
    assert client.get("/v1/adapters/ops", headers=ADMIN).json()["active_version"] == 2
    rolled = client.post("/v1/adapters/ops/rollback", headers=ADMIN)
    assert rolled.json()["ref"] == "ops@1" and rolled.json()["status"] == "promoted"
    again = client.post("/v1/adapters/ops/rollback", headers=ADMIN)
    assert again.status_code == 409 and "no earlier promoted version" in again.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "named"),
    [
        ("GET", "/v1/adapters/ghost", None, "unknown adapter 'ghost'"),
        ("POST", "/v1/adapters/ops/promote", {"version": 7}, "no version 7"),
        ("POST", "/v1/adapters/ghost/rollback", None, "unknown adapter 'ghost'"),
    ],
)
def test_unknown_adapters_are_a_404(
    served: Served, method: str, path: str, body: dict[str, int] | None, named: str
) -> None:
    response = served.client.request(method, path, json=body, headers=ADMIN)
    assert response.status_code == 404 and named in response.json()["detail"]


def test_a_finetune_job_trains_and_registers_the_next_version(served: Served) -> None:
    accepted = finetune(
        served, name="ops", max_steps="2", files={"file": ("facts.jsonl", dataset())}
    )
    assert accepted.status_code == 202, accepted.text
    job = served.wait(accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["kind"] == "finetune" and job["collection"] is None and job["progress"] == 1.0
    assert [point["step"] for point in job["losses"]] == [1, 2]
    assert job["result"]["adapter"] == "ops@3" and "eval_loss" in job["result"]["metrics"]
    shown = served.client.get("/v1/adapters/ops@3", headers=ADMIN).json()
    assert shown["versions"][-1]["status"] == "candidate"
    assert not (served.settings.data_dir / "api" / "work" / job["id"]).exists()
    answer = served.client.post(
        "/v1/ask", json={"question": "Who maintains service 3?", "adapter": "ops@3"}, headers=ADMIN
    ).json()
    assert (answer["adapter"], answer["adapter_version"]) == ("ops", 3)


def test_a_finetune_job_from_a_collection(served: Served) -> None:
    accepted = finetune(served, name="kbtuned", collection="kb", max_steps="1")
    job = served.wait(accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["collection"] == "kb" and job["result"]["adapter"] == "kbtuned@1"
    listed = served.client.get("/v1/models", headers=ADMIN).json()["data"]
    assert {"kbtuned", "kbtuned@1"} <= {model["id"] for model in listed}
    # kb's first RAFT dataset held questions out as its evaluation set: the version was gated
    gate = job["result"]["gate"]
    assert gate["candidate"] == "kbtuned@1" and gate["eval_set"].endswith("evalsets/kb.jsonl")


def test_a_queued_finetune_job_is_cancelled_at_once(served: Served) -> None:
    gate = threading.Event()
    holder = served.services.jobs.submit("finetune", None, "admin", lambda _: {"ok": gate.wait()})
    try:
        queued = finetune(served, name="late", files={"file": ("b.jsonl", dataset())})
        job_id = queued.json()["job_id"]
        cancelled = served.client.post(f"/v1/jobs/{job_id}/cancel", headers=ADMIN).json()
    finally:
        gate.set()
    assert (cancelled["status"], cancelled["message"]) == (
        "cancelled",
        "cancelled before it started",
    )
    assert not (served.settings.data_dir / "api" / "work" / job_id).exists()
    served.wait(holder.id)


def test_a_running_finetune_job_stops_at_its_next_step_and_leaves_nothing(served: Served) -> None:
    job_id = finetune(
        served, name="slow", max_steps="200", files={"file": ("a.jsonl", dataset())}
    ).json()["job_id"]
    deadline = time.monotonic() + 60
    while not served.client.get(f"/v1/jobs/{job_id}", headers=ADMIN).json()["losses"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert served.client.post(f"/v1/jobs/{job_id}/cancel", headers=ADMIN).status_code == 200
    job = served.wait(job_id)
    assert job["status"] == "cancelled" and 1 <= len(job["losses"]) < 200
    assert not (served.settings.data_dir / "runs" / "slow").exists()
    assert not (served.settings.data_dir / "api" / "work" / job_id).exists()
    refs = [a["ref"] for a in served.client.get("/v1/adapters", headers=ADMIN).json()]
    assert not [ref for ref in refs if ref.startswith("slow")]


@pytest.mark.parametrize(
    ("form", "files", "status", "named"),
    [
        ({"name": "x"}, None, 422, "exactly one of 'collection', 'feedback' or 'file'"),
        ({"name": "x", "collection": "kb"}, {"file": ("d.jsonl", b"{}\n")}, 422, "exactly one"),
        ({"name": "x@2", "collection": "kb"}, None, 422, "the adapter name alone"),
        ({"name": "bad name", "collection": "kb"}, None, 422, "invalid adapter reference"),
        ({"name": "x", "collection": "nope"}, None, 404, "unknown collection 'nope'"),
        ({"name": "x", "collection": "kb", "recipe": "../../etc/passwd"}, None, 422, "recipe"),
        ({"name": "x", "collection": "kb", "recipe": "huge"}, None, 422, "unknown recipe 'huge'"),
        ({"name": "x"}, {"file": ("d.jsonl", b"not json\n")}, 422, "line 1"),
        ({"name": "x"}, {"file": ("d.csv", b"a,b\n")}, 415, "'d.csv': unsupported file type"),
        ({"name": "x", "max_steps": "0", "collection": "kb"}, None, 422, "max_steps"),
        (
            {"name": "x", "collection": "kb"},
            {"eval_set": ("q.csv", b"question\nWhat?\n")},
            422,
            "evaluation set 'q.csv' has nothing to score against",
        ),
        ({"name": "x", "collection": "kb"}, {"eval_set": ("q.txt", b"x")}, 415, "'q.txt'"),
        (
            {"name": "x"},
            {"file": ("d.jsonl", dataset()), "eval_set": ("d.jsonl", dataset())},
            400,
            "uploaded as both the dataset and the eval set",
        ),
    ],
)
def test_bad_finetune_requests_are_refused_and_leave_nothing(
    served: Served, form: dict[str, str], files: Any, status: int, named: str
) -> None:
    jobs = served.client.get("/v1/jobs", headers=ADMIN).json()
    response = finetune(served, files=files, **form)
    assert response.status_code == status, response.text
    assert named in response.json()["detail"]
    assert served.client.get("/v1/jobs", headers=ADMIN).json() == jobs
    assert not list((served.settings.data_dir / "api" / "work").iterdir())
