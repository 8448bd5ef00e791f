"""Property-based tests of every operation in ``/openapi.json`` (schemathesis) against a live
server: generated requests, valid and not, with an admin key; no 5xx, and responses that match
the schema (status codes, content types, bodies). Examples are bounded to keep the run short."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import auth, live_server, seeded_app


@dataclass(frozen=True)
class Live:
    url: str
    schema: schemathesis.BaseSchema


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_generator_dir: Path,
    tiny_embedder_dir: Path,
    loras: list[Path],
) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("schemathesis")
    with (
        seeded_app(root, tiny_generator_dir, tiny_embedder_dir, loras) as (app, _, _),
        live_server(app) as url,
    ):
        yield Live(url, schemathesis.openapi.from_dict(app.openapi()))


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_every_operation_matches_the_schema(live: Live) -> None:
    operations = [result.ok() for result in live.schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: schemathesis.Case) -> None:
            response = case.call(base_url=live.url, headers=auth("admin"), timeout=60)
            case.validate_response(response, checks=CHECKS)

        try:
            conforms()
        except Exception as error:
            error.add_note(f"operation: {operation.label}")
            raise
