"""An ingest run's trace, recorded in memory: one ``ingest`` span with a span per file found and
per batch embedded, naming files by document id only."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assistant.core.settings import Settings
from assistant.runtime import Runtime
from ingestion.chunking import document_id
from tests.fixtures.traces import attribute_values, by_trace, named, root, shape


def test_an_ingest_run_is_one_trace_with_a_span_per_file(
    tiny_settings: Settings, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe alpha server runs backups nightly.\n")
    (docs / "b.txt").write_text("Bravo team owns the billing service.\n")
    (docs / "empty.txt").write_text("")
    runtime = Runtime(tiny_settings)
    try:
        first = runtime.ingestor("kb").ingest([docs])
        again = runtime.ingestor("kb").ingest([docs])
    finally:
        runtime.close()

    traces = by_trace(spans.get_finished_spans())
    assert len(traces) == 2
    files = [("ingest", "ingest.file")] * 3
    assert shape(traces[0]) == sorted([("", "ingest"), ("ingest", "ingest.embed"), *files])
    assert shape(traces[1]) == sorted([("", "ingest"), *files])  # nothing new to embed

    run = root(traces[0]).attributes
    assert run is not None and run["lorag.collection"] == "kb"
    assert run["lorag.ingest.added"] == len(first.added) == 2
    assert run["lorag.ingest.failed"] == 1
    assert run["lorag.ingest.chunks_written"] == first.chunks_written
    outcomes = {
        span.attributes["lorag.document.id"]: span.attributes["lorag.ingest.outcome"]
        for span in named(traces[0], "ingest.file")
        if span.attributes is not None
    }
    assert outcomes == {
        document_id(str(docs / "a.md")): "added",
        document_id(str(docs / "b.txt")): "added",
        document_id(str(docs / "empty.txt")): "failed",
    }
    [alpha] = [
        span
        for span in named(traces[0], "ingest.file")
        if span.attributes and span.attributes["lorag.document.type"] == ".md"
    ]
    assert alpha.attributes is not None
    assert alpha.attributes["lorag.document.bytes"] == (docs / "a.md").stat().st_size
    assert alpha.attributes["lorag.document.chunks"] == 1
    assert {
        span.attributes["lorag.ingest.outcome"]
        for span in named(traces[1], "ingest.file")
        if span.attributes is not None
    } == {"unchanged", "failed"}
    assert len(again.unchanged) == 2
    # files are named by document id: no path or text of theirs is on the traces
    values = [value for trace in traces for value in attribute_values(trace)]
    assert not [v for v in values if str(docs) in v or "backups" in v]
