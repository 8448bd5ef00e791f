"""Traces over OTLP/HTTP to a real receiver on loopback, and nothing at all by default.

The receiver (``tests/fixtures/otlp.py``) keeps every POST. Installing a tracer provider happens
once per process, so the tests of what ``install_tracing`` does run ``lorag`` in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from assistant.core.errors import ConfigError
from assistant.core.settings import Settings, TracingSettings, load_settings
from assistant.core.tracing import build_provider, traces_url
from assistant.runtime import Runtime
from tests.fixtures.otlp import Received, attributes_of, otlp_receiver

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Received]]]:
    """An OTLP/HTTP receiver on loopback: its base URL and what it was sent."""
    with otlp_receiver() as found:
        yield found


def test_traces_url_appends_the_otlp_path_once() -> None:
    assert traces_url("http://localhost:4318") == "http://localhost:4318/v1/traces"
    assert traces_url("http://localhost:4318/") == "http://localhost:4318/v1/traces"
    assert traces_url("https://lf.example/api/public/otel") == (
        "https://lf.example/api/public/otel/v1/traces"
    )
    assert traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"


def test_tracing_settings_come_from_the_environment_and_keep_headers_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LORAG_TRACING__OTLP_ENDPOINT", "http://localhost:4318")
    monkeypatch.setenv("LORAG_TRACING__HEADERS", '{"Authorization": "Basic c2VjcmV0"}')
    monkeypatch.setenv("LORAG_TRACING__SAMPLE_RATIO", "0.25")
    tracing = load_settings(_env_file=None).tracing
    assert tracing.otlp_endpoint == "http://localhost:4318" and tracing.sample_ratio == 0.25
    assert tracing.headers["Authorization"].get_secret_value() == "Basic c2VjcmV0"
    assert "c2VjcmV0" not in repr(tracing)


def test_a_bad_endpoint_names_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAG_TRACING__OTLP_ENDPOINT", "localhost:4318")
    with pytest.raises(ConfigError, match="LORAG_TRACING__OTLP_ENDPOINT"):
        load_settings(_env_file=None)
    monkeypatch.setenv("LORAG_TRACING__OTLP_ENDPOINT", "http://localhost:4318")
    monkeypatch.setenv("LORAG_TRACING__SAMPLE_RATIO", "2")
    with pytest.raises(ConfigError, match="LORAG_TRACING__SAMPLE_RATIO"):
        load_settings(_env_file=None)


def test_the_provider_sends_spans_with_its_headers_and_service_name(
    receiver: tuple[str, list[Received]],
) -> None:
    url, received = receiver
    tracing = TracingSettings(
        otlp_endpoint=url,
        service_name="lorag-test",
        headers={"Authorization": "Basic c2VjcmV0"},  # type: ignore[dict-item]
    )
    provider = build_provider(tracing)
    try:
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner"):
            pass
        assert provider.force_flush()
    finally:
        provider.shutdown()

    assert received and {got.path for got in received} == {"/v1/traces"}
    assert {got.headers["authorization"] for got in received} == {"Basic c2VjcmV0"}
    assert {service for got in received for service in got.services} == {"lorag-test"}
    spans = {span.name: span for got in received for span in got.spans}
    assert set(spans) == {"outer", "inner"}
    assert spans["inner"].parent_span_id == spans["outer"].span_id


def _lorag_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a ``lorag`` child process on ``settings``' tiny models and data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LORAG_", "OTEL_"))}
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "LORAG_DATA_DIR": str(settings.data_dir),
        "LORAG_GENERATOR__MODEL": settings.generator.model,
        "LORAG_EMBEDDER__MODEL": settings.embedder.model,
        "LORAG_GENERATION__MAX_NEW_TOKENS": "8",
        "LORAG_THREADS": "1",
        **extra,
    }


def test_lorag_sends_one_trace_per_question_to_the_otlp_endpoint(
    tiny_settings: Settings, tmp_path: Path, receiver: tuple[str, list[Received]]
) -> None:
    url, received = receiver
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe alpha server runs backups nightly.\n")
    (docs / "b.txt").write_text("Bravo team owns the billing service.\n")
    runtime = Runtime(tiny_settings)
    try:
        assert runtime.ingestor("kb").ingest([docs]).ok
    finally:
        runtime.close()  # the child process opens the store

    env = _lorag_env(
        tiny_settings,
        LORAG_TRACING__OTLP_ENDPOINT=url,
        # every question reaches the model: the tiny one's answers are not on topic
        LORAG_RETRIEVAL__MIN_SIMILARITY="-1",
        LORAG_RETRIEVAL__MIN_QUESTION_COVERAGE="0",
        LORAG_GENERATION__MIN_SUPPORT="0",
    )
    questions = ["Who owns the billing service?", "When does the alpha server run backups?"]
    lorag = Path(sys.executable).with_name("lorag")
    done = subprocess.run(
        [str(lorag), "chat", "-c", "kb"],
        input="\n".join(questions) + "\n\n",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    spans = [span for got in received for span in got.spans]
    traces: dict[bytes, list[ProtoSpan]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    assert len(traces) == len(questions)
    for trace in traces.values():
        [answer] = [span for span in trace if span.name == "answer"]
        assert answer.parent_span_id == b""  # the trace's root
        for name in ("retrieve", "generate"):
            [span] = [span for span in trace if span.name == name]
            assert span.parent_span_id == answer.span_id
        attributes = attributes_of(answer)
        assert attributes["lorag.collection"] == "kb"
        assert "lorag.question" not in attributes
        [generate] = [span for span in trace if span.name == "generate"]
        assert attributes_of(generate)["gen_ai.request.model"] == tiny_settings.generator.model


def test_without_an_endpoint_nothing_is_installed_or_imported(tiny_settings: Settings) -> None:
    probe = (
        "import json, sys\n"
        "from opentelemetry import trace\n"
        "from assistant.core.settings import load_settings\n"
        "from assistant.core.tracing import install_tracing, tracer\n"
        "installed = install_tracing(load_settings())\n"
        "with tracer().start_as_current_span('answer') as span:\n"
        "    recording = span.is_recording()\n"
        "print(json.dumps({'installed': installed, 'recording': recording,\n"
        "    'proxy': isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider),\n"
        "    'sdk': 'opentelemetry.sdk' in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=_lorag_env(tiny_settings),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == {
        "installed": False,
        "recording": False,
        "proxy": True,
        "sdk": False,
    }
