"""Shared test fixtures: tiny models built once per session, and settings that point at them.

Hugging Face downloads are switched off before anything imports transformers, so a test that
would reach the network fails fast instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assistant.core.settings import (
    EmbedderSettings,
    GenerationSettings,
    GeneratorSettings,
    Settings,
)
from tests.fixtures.tiny_models import (
    build_tiny_cross_encoder,
    build_tiny_embedder,
    build_tiny_generator,
)

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_generator_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with a small BPE tokenizer and a ChatML template."""
    return build_tiny_generator(tmp_path_factory.mktemp("tiny-generator"))


@pytest.fixture(scope="session")
def tiny_embedder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT (32 dims) saved as a sentence-transformers folder."""
    return build_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder"))


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT with a one-label head: a folder ``CrossEncoder`` loads."""
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


@pytest.fixture
def tiny_settings(tmp_path: Path, tiny_generator_dir: Path, tiny_embedder_dir: Path) -> Settings:
    """Settings on the tiny models, with data in ``tmp_path / "data"`` and small limits."""
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        generator=GeneratorSettings(model=str(tiny_generator_dir)),
        embedder=EmbedderSettings(model=str(tiny_embedder_dir), batch_size=8),
        generation=GenerationSettings(max_new_tokens=16, context_tokens=512),
    )


@pytest.fixture(scope="session")
def _span_exporter() -> InMemorySpanExporter:
    """The SDK's tracer provider, recording into memory, installed for the rest of the session
    (a process installs one tracer provider, once)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "a tracer provider was installed before"
    return exporter


@pytest.fixture
def spans(_span_exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    """The spans lorag finishes during the test (none from before it), recorded in memory."""
    _span_exporter.clear()
    return _span_exporter


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` skip themselves, saying why, where CUDA is not available."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if not torch.cuda.is_available():
        for item in gpu_tests:
            item.add_marker(pytest.mark.skip(reason="needs CUDA (marked gpu); none here"))
