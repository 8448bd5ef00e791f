"""Collections and documents over HTTP: create, list, upload (an ingest job), delete; refused
uploads name the file and leave nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Served, auth

ADMIN = auth("admin")


def upload(served: Served, collection: str, *files: tuple[str, bytes]) -> Any:
    return served.client.post(
        f"/v1/collections/{collection}/documents",
        files=[("files", file) for file in files],
        headers=ADMIN,
    )


def leftovers(served: Served) -> list[Path]:
    """Files the API holds outside the store: staged uploads, job folders, uploads in flight."""
    data = served.settings.data_dir
    return [p for folder in (data / "api" / "work", data / "uploads") for p in folder.rglob("*")]


def test_a_collection_is_created_filled_listed_and_deleted(served: Served) -> None:
    client = served.client
    assert client.post("/v1/collections", json={"name": "notes"}, headers=ADMIN).json() == {
        "name": "notes"
    }
    again = client.post("/v1/collections", json={"name": "notes"}, headers=ADMIN)
    assert again.status_code == 409 and "'notes' already exists" in again.json()["detail"]

    accepted = upload(
        served,
        "notes",
        ("bread.md", b"# Bread\n\nBread is made from flour, water, salt and yeast.\n"),
        ("moon.txt", b"In 1969 the first people walked on the Moon.\n"),
    )
    assert accepted.status_code == 202
    job = served.wait(accepted.json()["job_id"])
    assert job["status"] == "succeeded" and job["kind"] == "ingest" and job["progress"] == 1.0
    assert job["result"]["added"] == 2 and job["result"]["chunks"] >= 2
    assert job["errors"] == []

    listed = {c["name"]: c for c in client.get("/v1/collections", headers=ADMIN).json()}
    assert listed["notes"]["documents"] == 2 and listed["notes"]["chunks"] >= 2
    documents = client.get("/v1/collections/notes/documents", headers=ADMIN).json()
    assert sorted(Path(d["source"]).name for d in documents) == ["bread.md", "moon.txt"]
    assert leftovers(served) == []  # uploads are removed once ingested

    again = served.wait(
        upload(served, "notes", ("moon.txt", b"In 1969 people walked on the Moon.\n")).json()[
            "job_id"
        ]
    )
    assert again["result"]["replaced"] == 1  # the same name replaces the document
    assert len(client.get("/v1/collections/notes/documents", headers=ADMIN).json()) == 2

    moon = next(d for d in documents if d["source"].endswith("moon.txt"))
    assert (
        client.delete(
            f"/v1/collections/notes/documents/{moon['doc_id']}", headers=ADMIN
        ).status_code
        == 204
    )
    remaining = client.get("/v1/collections/notes/documents", headers=ADMIN).json()
    assert [Path(d["source"]).name for d in remaining] == ["bread.md"]

    assert client.delete("/v1/collections/notes", headers=ADMIN).status_code == 204
    gone = client.get("/v1/collections/notes/documents", headers=ADMIN)
    assert gone.status_code == 404 and "unknown collection 'notes'" in gone.json()["detail"]
    assert client.delete("/v1/collections/notes", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("files", "status", "named"),
    [
        ([("../../etc/evil.txt", b"x")], 400, "unsafe file name '../../etc/evil.txt'"),
        ([("..\\evil.txt", b"x")], 400, "unsafe file name"),
        ([(".hidden.txt", b"x")], 400, "unsafe file name '.hidden.txt'"),
        ([("report.exe", b"MZ")], 415, "'report.exe': unsupported file type '.exe'"),
        ([("notes", b"text")], 415, "'notes': unsupported file type '(no suffix)'"),
        ([("ok.txt", b"fine"), ("empty.md", b"")], 422, "'empty.md' is empty"),
        ([("a.txt", b"one"), ("a.txt", b"two")], 400, "'a.txt' is uploaded twice"),
    ],
)
def test_bad_uploads_are_refused_naming_the_file_and_leave_nothing(
    served: Served, files: list[tuple[str, bytes]], status: int, named: str
) -> None:
    jobs = served.client.get("/v1/jobs", headers=ADMIN).json()
    response = upload(served, "kb", *files)
    assert response.status_code == status, response.text
    assert named in response.json()["detail"]
    assert leftovers(served) == []
    assert served.client.get("/v1/jobs", headers=ADMIN).json() == jobs


def test_uploads_to_an_unknown_collection_are_refused(served: Served) -> None:
    response = upload(served, "nope", ("a.txt", b"text"))
    assert response.status_code == 404 and "'nope'" in response.json()["detail"]


def test_a_file_that_cannot_be_read_is_a_job_error(served: Served) -> None:
    mixed = upload(
        served, "kb", ("broken.pdf", b"%PDF-1.4 not really"), ("fine.txt", b"Fine text.")
    )
    job = served.wait(mixed.json()["job_id"])
    assert job["status"] == "succeeded"
    assert [e["item"] for e in job["errors"]] == ["broken.pdf"]
    assert job["result"]["failed"] == 1 and job["result"]["added"] == 1
    only_broken = served.wait(upload(served, "kb", ("broken.pdf", b"%PDF-1.4 no")).json()["job_id"])
    assert only_broken["status"] == "failed"
    assert "none of the 1 files could be ingested" in only_broken["message"]
    assert leftovers(served) == []


@pytest.mark.parametrize("name", ["bad name", "-dash", "x" * 65, ""])
def test_invalid_collection_names_are_refused(served: Served, name: str) -> None:
    response = served.client.post("/v1/collections", json={"name": name}, headers=ADMIN)
    assert response.status_code == 422
    assert "invalid collection name" in response.json()["detail"]


def test_changes_are_audited(served: Served) -> None:
    audit = (served.settings.data_dir / "audit.jsonl").read_text()
    for action in (
        "collections.create",
        "documents.upload",
        "documents.delete",
        "collections.delete",
    ):
        assert f'"action": "{action}"' in audit


def test_after_a_delete_no_file_under_the_data_dir_holds_the_text(served: Served) -> None:
    client = served.client
    assert client.post("/v1/collections", json={"name": "erase"}, headers=ADMIN).is_success
    text = b"Patient 4711 was seen by Dr. Sorensen for a sprained ankle.\n"
    job = upload(served, "erase", ("visit.txt", text), ("other.txt", b"Opening hours: 9 to 5.\n"))
    assert served.wait(job.json()["job_id"])["status"] == "succeeded"
    data = served.settings.data_dir
    held = [p for p in data.rglob("*") if p.is_file() and b"Sorensen" in p.read_bytes()]
    assert held  # the chunks, and the kept copy of the upload
    visit = next(
        d
        for d in client.get("/v1/collections/erase/documents", headers=ADMIN).json()
        if d["source"].endswith("visit.txt")
    )
    deleted = client.delete(f"/v1/collections/erase/documents/{visit['doc_id']}", headers=ADMIN)
    assert deleted.status_code == 204
    assert [p for p in data.rglob("*") if p.is_file() and b"Sorensen" in p.read_bytes()] == []
    remaining = client.get("/v1/collections/erase/documents", headers=ADMIN).json()
    assert [Path(d["source"]).name for d in remaining] == ["other.txt"]
    assert client.delete("/v1/collections/erase", headers=ADMIN).status_code == 204
