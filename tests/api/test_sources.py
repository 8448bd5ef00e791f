"""Opening what a citation names over HTTP: the passage in its document's text, and the
document's original file (an upload's kept copy, or the file on disk while unchanged), with the
collection's read right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.conftest import QUESTION, Served, auth

ADMIN = auth("admin")
LONG = "\n\n".join(
    f"Paragraph {n} is about harbour number {n}: its crane lifts {n * 10} tonnes and its "
    f"pier is {n * 7} metres long, open from {n % 12 + 1} in the morning."
    for n in range(1, 60)
).encode()


def _source(served: Served, question: str, collection: str) -> dict[str, Any]:
    body = {"question": question, "collection": collection}
    response = served.client.post("/v1/ask", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json()["sources"][0])


def _words(text: str) -> str:
    return " ".join(text.split())


def _document_text(served: Served, collection: str, doc_id: str) -> str:
    """The document's text rebuilt from its chunks' offsets."""
    chunks = served.runtime.store.chunks(collection, doc_id=doc_id)
    text = [" "] * max(c.end for c in chunks)
    for chunk in chunks:
        text[chunk.start : chunk.end] = chunk.text
    return "".join(text)


def test_a_cited_passage_opens_in_its_context_and_its_upload_as_uploaded(served: Served) -> None:
    client = served.client
    assert client.post("/v1/collections", json={"name": "ports"}, headers=ADMIN).is_success
    job = client.post(
        "/v1/collections/ports/documents",
        files=[("files", ("harbours.txt", LONG))],
        headers=ADMIN,
    ).json()["job_id"]
    assert served.wait(job)["status"] == "succeeded"
    doc_id = client.get("/v1/collections/ports/documents", headers=ADMIN).json()[0]["doc_id"]
    chunks = served.runtime.store.chunks("ports", doc_id=doc_id)
    assert len(chunks) >= 3
    middle = chunks[len(chunks) // 2]

    passage = client.get(
        f"/v1/collections/ports/documents/{doc_id}/passages/{middle.id}", headers=ADMIN
    )
    assert passage.status_code == 200, passage.text
    found = passage.json()
    assert found["passage"] == middle.text and found["before"] and found["after"]
    assert found["file_problem"] is None
    before, after = found["before"].lstrip("…"), found["after"].rstrip("…")
    text = _words(_document_text(served, "ports", doc_id))
    assert _words(before + middle.text + after) in text

    original = client.get(found["file"], headers=ADMIN)
    assert original.status_code == 200 and original.content == LONG
    assert original.headers["content-type"].startswith("text/plain")
    assert original.headers["content-disposition"] == "inline; filename*=UTF-8''harbours.txt"
    assert original.headers["content-security-policy"] == "sandbox"

    replaced = LONG.replace(b"crane", b"derrick")
    job = client.post(
        "/v1/collections/ports/documents",
        files=[("files", ("harbours.txt", replaced))],
        headers=ADMIN,
    ).json()["job_id"]
    assert served.wait(job)["result"]["replaced"] == 1
    assert client.get(found["file"], headers=ADMIN).content == replaced

    kept = served.settings.data_dir / "originals" / "ports"
    assert [p.name for p in kept.rglob("*") if p.is_file()] == ["harbours.txt"]
    deleted = client.delete(f"/v1/collections/ports/documents/{doc_id}", headers=ADMIN)
    assert deleted.status_code == 204
    assert client.get(found["file"], headers=ADMIN).status_code == 404
    assert not any(p.is_file() for p in kept.rglob("*"))  # the copy goes with the document
    assert client.delete("/v1/collections/ports", headers=ADMIN).status_code == 204
    assert not kept.exists()


def test_a_file_ingested_from_disk_opens_while_it_is_the_version_ingested(served: Served) -> None:
    source = _source(served, QUESTION, "kb")
    path = Path(source["source"])
    url = f"/v1/collections/kb/documents/{source['doc_id']}/file"
    reader = auth("reader")
    assert served.client.get(url, headers=reader).content == path.read_bytes()
    assert served.client.get(url, headers=auth("outsider")).status_code == 403

    ingested = path.read_bytes()
    try:
        path.write_bytes(ingested + b"\nA line added later.\n")
        changed = served.client.get(url, headers=reader)
        assert changed.status_code == 409
        assert "not the version that was ingested" in changed.json()["detail"]
        assert f"lorag ingest {path} --collection kb" in changed.json()["detail"]
        passage = f"/v1/collections/kb/documents/{source['doc_id']}/passages/{source['chunk_id']}"
        told = served.client.get(passage, headers=reader).json()
        assert told["passage"] and told["file_problem"] == changed.json()["detail"]
        path.unlink()
        gone = served.client.get(url, headers=reader)
        assert gone.status_code == 410 and "moved or removed" in gone.json()["detail"]
    finally:
        path.write_bytes(ingested)
    assert served.client.get(url, headers=reader).status_code == 200


def test_an_unknown_document_or_passage_is_a_404(served: Served) -> None:
    source = _source(served, QUESTION, "kb")
    reader = auth("reader")
    documents = "/v1/collections/kb/documents"
    for url, named in (
        (f"{documents}/not-a-document/file", "no document 'not-a-document'"),
        (f"{documents}/not-a-document/passages/{source['chunk_id']}", "no document"),
        (f"{documents}/{source['doc_id']}/passages/not-a-chunk", "no passage 'not-a-chunk'"),
        ("/v1/collections/nope/documents/x/file", "unknown collection 'nope'"),
    ):
        response = served.client.get(url, headers=reader if "nope" not in url else ADMIN)
        assert response.status_code == 404, (url, response.text)
        assert named in response.json()["detail"]
