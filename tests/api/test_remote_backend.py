"""The remote generator back end against a real server on loopback: a second lorag whose
``/generate/v1`` is a plain OpenAI-compatible model server, on the tiny model.

The remote back end must give the answers the local one gives (same prompt, same greedy
tokens), push adapters with the server's API and switch them by model name, and name the URL
when the server is down or refuses.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

from assistant.api import create_app
from assistant.api.generating import pushed_name
from assistant.core.errors import AdapterError, GeneratorUnavailableError
from assistant.core.models.remote_generator import RemoteGenerator, load_remote_generator
from assistant.core.settings import (
    ApiSettings,
    GeneratorSettings,
    RemoteGeneratorSettings,
    Settings,
)
from assistant.core.types import Citation
from assistant.runtime import Runtime
from tests.api.conftest import DOCS, KEYS, QUESTION, live_server, seeded_app

MESSAGES = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is the hotel limit per night in Amsterdam?"},
]


@dataclass
class Server:
    """The serving lorag: its runtime (to ask its model directly) and its model server URL."""

    runtime: Runtime
    url: str


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_generator_dir: Path,
    tiny_embedder_dir: Path,
    loras: list[Path],
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("model-server")
    with (
        seeded_app(root, tiny_generator_dir, tiny_embedder_dir, loras) as (app, _, runtime),
        live_server(app) as url,
    ):
        yield Server(runtime, f"{url}/generate/v1")


def remote_settings(base: Settings, url: str, key: str = "admin", **remote: object) -> Settings:
    """``base`` with the remote back end at ``url`` (a lorag server), with one of the test keys."""
    generator = GeneratorSettings(
        model=base.generator.model,
        backend="remote",
        remote=RemoteGeneratorSettings(
            url=url, api_key=KEYS[key][0], server="lorag", max_retries=0, **remote
        ),
    )
    return base.model_copy(update={"generator": generator})


@pytest.fixture
def asking(tiny_settings: Settings, server: Server, tmp_path: Path) -> Iterator[Runtime]:
    """A lorag whose collection ``kb`` holds the server's documents and whose model is the
    server's."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    runtime = Runtime(remote_settings(tiny_settings, server.url))
    try:
        assert runtime.ingestor("kb").ingest([docs]).ok
        yield runtime
    finally:
        runtime.close()


def local(server: Server, messages: list[dict[str, str]], adapter: str | None = None) -> str:
    return "".join(server.runtime.generator.stream(messages, 16, adapter=adapter))


def test_the_remote_model_streams_what_the_server_model_generates(
    asking: Runtime, server: Server
) -> None:
    remote = asking.generator
    assert isinstance(remote, RemoteGenerator)
    assert remote.problem() is None  # what /readyz reports as "ok"
    pieces = list(remote.stream(MESSAGES, 16))
    assert len(pieces) > 1  # streamed, not one block
    assert "".join(pieces) == local(server, MESSAGES)
    other = [{"role": "user", "content": "Where do unused leave days go?"}]
    assert remote.generate_batch([MESSAGES, other], 16) == [
        local(server, MESSAGES),
        local(server, other),
    ]
    assert remote.count_tokens("hotel limit") == server.runtime.generator.count_tokens(
        "hotel limit"
    )


def test_an_answer_through_the_remote_model_is_the_servers_own_answer(
    asking: Runtime, server: Server
) -> None:
    """The same documents and embedder on both sides: the same sources, prompt and answer."""
    here = asking.engine.ask(QUESTION, "kb")
    there = server.runtime.engine.ask(QUESTION, "kb")
    assert here.text == there.text
    assert seen(here.sources) == seen(there.sources)
    assert seen(here.citations) == seen(there.citations)


def seen(citations: Sequence[Citation]) -> list[tuple[int, str, str]]:
    """What a reader sees of each citation (the folders of the two sides differ)."""
    return [(c.n, Path(c.source).name, c.snippet) for c in citations]


def test_adapters_are_pushed_and_switched_by_model_name(
    asking: Runtime, server: Server, loras: list[Path]
) -> None:
    names = [asking.use_adapter(str(lora)) for lora in loras]
    assert all(names) and names[0] != names[1]
    listed = openai.OpenAI(base_url=server.url, api_key=KEYS["reader"][0]).models.list()
    remote = asking.generator
    assert isinstance(remote, RemoteGenerator)
    assert {m.id for m in listed} >= {remote.served_name(name) for name in names}
    base = "".join(remote.stream(MESSAGES, 16))
    answers = ["".join(remote.stream(MESSAGES, 16, adapter=name)) for name in names]
    pushed = [pushed_name(remote.served_name(name)) for name in names]
    assert answers == [local(server, MESSAGES, adapter) for adapter in pushed]
    assert len({base, *answers}) == 3  # each adapter answers as itself, the base as the base
    assert remote.generate_batch([MESSAGES], 16, adapter=names[1]) == [answers[1]]
    first = remote.served_name(names[0])
    remote.unload_adapter(names[0])
    assert names[0] not in remote.adapters
    listed = openai.OpenAI(base_url=server.url, api_key=KEYS["reader"][0]).models.list()
    assert first not in {m.id for m in listed}
    again = load_remote_generator(asking.settings)  # another client of the same server
    again.load_adapter(str(loras[1]), names[1])  # already there: used as it is
    assert again.served_name(names[1]) == remote.served_name(names[1])
    assert "".join(again.stream(MESSAGES, 16, adapter=names[1])) == answers[1]


def test_unknown_and_refused_adapters_say_what_and_where(
    asking: Runtime, server: Server, tmp_path: Path
) -> None:
    with pytest.raises(AdapterError, match="unknown adapter 'nope'"):
        asking.generator.stream(MESSAGES, 16, adapter="nope")
    missing = tmp_path / "no-such-adapter"
    with pytest.raises(AdapterError, match=f"generator server at {server.url} refused"):
        asking.generator.load_adapter(str(missing), "ghost")
    assert "ghost" not in asking.generator.adapters


def test_a_key_the_server_refuses_is_named_as_the_problem(
    tiny_settings: Settings, server: Server, loras: list[Path]
) -> None:
    runtime = Runtime(remote_settings(tiny_settings, server.url, key="reader"))
    try:
        with pytest.raises(GeneratorUnavailableError, match=r"HTTP 403.*generator.remote.api_key"):
            runtime.generator.load_adapter(str(loras[0]), "by-a-reader")
        wrong = remote_settings(tiny_settings, server.url)
        wrong.generator.remote.api_key = None
        with pytest.raises(GeneratorUnavailableError, match=r"HTTP 401.*generator.remote.api_key"):
            "".join(Runtime(wrong).generator.stream(MESSAGES, 4))
    finally:
        runtime.close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on (its port was bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_a_server_that_is_down_is_named_by_the_cli_engine_and_api(
    tiny_settings: Settings, tmp_path: Path
) -> None:
    url = closed_port_url()
    settings = remote_settings(tiny_settings, url).model_copy(
        update={"api": ApiSettings(allow_anonymous=True)}
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.txt").write_text(DOCS["leave.txt"], encoding="utf-8")
    runtime = Runtime(settings)
    try:
        assert runtime.ingestor("kb").ingest([docs]).ok
        with pytest.raises(GeneratorUnavailableError, match=f"generator server at {url}"):
            runtime.engine.ask("How many days of paid leave per year?", "kb")
        with TestClient(create_app(settings, runtime)) as client:
            response = client.post(
                "/v1/ask",
                json={"question": "How many days of paid leave?", "collection": "kb"},
            )
            assert response.status_code == 502
            assert url in response.json()["detail"]
            ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["generator_server"].startswith(f"{url}: APIConnectionError")
    finally:
        runtime.close()


def test_the_model_server_streams_and_checks_its_requests(server: Server) -> None:
    client = openai.OpenAI(base_url=server.url, api_key=KEYS["reader"][0], max_retries=0)
    model = server.runtime.settings.generator.model
    whole = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=16)  # type: ignore[arg-type]
    streamed = client.chat.completions.create(
        model=model,
        messages=MESSAGES,  # type: ignore[arg-type]
        max_tokens=16,
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == whole.choices[0].message.content == local(server, MESSAGES)
    assert whole.usage is not None and whole.usage.completion_tokens > 0
    with pytest.raises(openai.NotFoundError, match="unknown model 'kb'"):
        client.chat.completions.create(model="kb", messages=MESSAGES)  # type: ignore[arg-type]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url, api_key="x" * 20, max_retries=0).models.list()
