"""Stateful property tests (schemathesis) against a live server: sequences of requests that
follow the links of ``/openapi.json`` (create a collection → upload to it → follow the job →
ask it → open a source, give feedback → list, erase and delete), generated from a fixed seed
with an admin key; no 5xx, and every response matches the schema.

So that a sequence behaves the same each time Hypothesis draws it, the server's state is
deterministic: each scenario starts from the seeded collection ``kb`` alone (the teardown
deletes the collections a scenario created and re-ingests ``kb``'s documents), and a job a
step starts is followed to its end before the next step. Only the declared links are followed
(schemathesis's own link inference is off), and the fuzzer's uploaded files are named
``note.md`` (declared in the test's copy of the schema, as OpenAPI's multipart ``encoding``
allows) so that an upload of one file is ingested rather than refused for its type.

Hypothesis also draws constants from the local modules a session has imported, so which
sequences run depends on the session (not on chance): the workflows test asserts only what
holds for any of them, and the chain itself is walked step by step in its own test.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from assistant.api.links import LINKS
from assistant.runtime import Runtime
from tests.api.conftest import auth, live_server, seeded_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
UPLOAD = "/v1/collections/{name}/documents"
CONFIG = {
    "phases": {"stateful": {"inference": {"algorithms": []}, "generation": {"mode": "positive"}}}
}
ENDED = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Live:
    """The server under test, its schema, and what resets it between scenarios."""

    url: str
    openapi: dict[str, Any]
    runtime: Runtime
    docs: Path

    def wait_for_jobs(self, client: httpx.Client) -> None:
        """Until every job has ended (a job always ends: it succeeds, fails or is cancelled)."""
        while any(job["status"] not in ENDED for job in client.get("/v1/jobs").json()):
            time.sleep(0.05)

    def reset(self) -> None:
        """Back to the seeded state: the collection ``kb`` alone, holding its documents."""
        with httpx.Client(base_url=self.url, headers=auth("admin"), timeout=120) as client:
            self.wait_for_jobs(client)
            for collection in client.get("/v1/collections").json():
                if collection["name"] != "kb":
                    client.delete(f"/v1/collections/{collection['name']}").raise_for_status()
        assert self.runtime.ingestor("kb").ingest([self.docs]).ok


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_generator_dir: Path,
    tiny_embedder_dir: Path,
    loras: list[Path],
) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("schemathesis-stateful")
    with (
        seeded_app(root, tiny_generator_dir, tiny_embedder_dir, loras) as (app, _, runtime),
        live_server(app) as url,
    ):
        yield Live(url, app.openapi(), runtime, root / "docs")


def fuzzed_schema(openapi: dict[str, Any]) -> schemathesis.BaseSchema:
    """The schema schemathesis works from: the app's, with the uploads' file name declared."""
    raw = copy.deepcopy(openapi)
    multipart = raw["paths"][UPLOAD]["post"]["requestBody"]["content"]["multipart/form-data"]
    disposition = {"schema": {"type": "string", "example": 'form-data; filename="note.md"'}}
    multipart["encoding"] = {"files": {"headers": {"Content-Disposition": disposition}}}
    return schemathesis.openapi.from_dict(raw, config=SchemathesisConfig.from_dict(CONFIG))


def test_the_links_name_operations_of_the_schema(live: Live) -> None:
    paths = live.openapi["paths"]
    for link in LINKS:
        response = paths[link.source[1]][link.source[0].lower()]["responses"][str(link.status)]
        assert response["links"][link.name]["operationRef"].startswith("#/paths/~1")
    assert len(LINKS) >= 15


def test_linked_workflows_never_fail_and_match_the_schema(live: Live) -> None:
    calls: Counter[str] = Counter()
    followed: Counter[str] = Counter()

    class Workflow(fuzzed_schema(live.openapi).as_state_machine()):  # type: ignore[misc]
        def step(self, input: StepInput) -> StepOutput:
            calls[input.case.operation.label] += 1
            if input.transition is not None and input.applied_parameters:
                followed[input.transition.id] += 1
            return super().step(input)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": live.url, "headers": auth("admin"), "timeout": 120}

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            if response.status_code == 202:
                with httpx.Client(base_url=live.url, headers=auth("admin")) as client:
                    live.wait_for_jobs(client)

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, *_: Any, **kwargs: Any
        ) -> None:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs=kwargs, recorder=self.recorder
            )

        def teardown(self) -> None:
            live.reset()
            super().teardown()

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=30,
            stateful_step_count=8,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
    print(f"calls: {dict(calls)}\nlinks followed: {dict(followed)}")
    assert followed, "no link was followed"


def test_the_chain_create_upload_ask_delete_matches_the_schema(live: Live) -> None:
    """The workflow the links describe, one step after another, each reply checked as above."""
    schema = fuzzed_schema(live.openapi)

    def step(method: str, path: str, status: int, **case: Any) -> schemathesis.Response:
        operation = schema[path][method].Case(**case)
        response = operation.call(base_url=live.url, headers=auth("admin"), timeout=120)
        assert response.status_code == status, response.text
        operation.validate_response(response, checks=CHECKS)
        return response

    try:
        created = step("POST", "/v1/collections", 201, body={"name": "chain"}).json()
        note = b"# Chain\n\nThe chain note says the parking garage opens at seven.\n"
        path = {"name": created["name"]}
        job = step("POST", UPLOAD, 202, path_parameters=path, body={"files": [note]}).json()
        with httpx.Client(base_url=live.url, headers=auth("admin")) as client:
            live.wait_for_jobs(client)
        ended = step("GET", "/v1/jobs/{job_id}", 200, path_parameters=job).json()
        assert ended["status"] == "succeeded", ended
        question = {"question": "When does the parking garage open?", "collection": "chain"}
        answer = step("POST", "/v1/ask", 200, body=question).json()
        assert answer["sources"][0]["source"].endswith("note.md"), answer
        step("DELETE", "/v1/collections/{name}", 204, path_parameters=path)
    finally:
        live.reset()


def test_an_original_file_comes_in_a_documented_media_type(live: Live) -> None:
    """Found by the workflows: a .txt file served as text/plain, documented as octet-stream."""
    schema = fuzzed_schema(live.openapi)
    listed = httpx.get(f"{live.url}/v1/collections/kb/documents", headers=auth("admin")).json()
    for document in sorted(listed, key=lambda d: d["source"]):
        operation = schema["/v1/collections/{name}/documents/{doc_id}/file"]["GET"]
        case = operation.Case(path_parameters={"name": "kb", "doc_id": document["doc_id"]})
        response = case.call(base_url=live.url, headers=auth("admin"))
        assert response.status_code == 200
        case.validate_response(response, checks=CHECKS)
    assert {Path(d["source"]).suffix for d in listed} == {".md", ".txt"}
