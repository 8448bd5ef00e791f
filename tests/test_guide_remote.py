"""The bundled guide's questions answered through a remote model server: a second `lorag serve`
on loopback runs the default model (its ``/generate/v1``), and the lorag a user types to
(``generator.backend = "remote"``) retrieves, prompts and checks, as a team with a GPU server
would run it. An adapter is pushed to the server and chosen by model name, and the base model
answers again as before once no adapter is asked for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.core.models.remote_generator import adapter_digest
from tests.api.conftest import start_lorag_serve
from tests.core.test_models import make_lora
from tests.test_guide_questions import right_guide_answers

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO / "examples" / "guide-questions.jsonl"
LORAG = Path(sys.executable).parent / "lorag"
KEY = "model-server-key-0123456789"
DELETE = "How do I delete a document from a collection?"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LORAG_")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The model server's ``/generate/v1`` URL: `lorag serve` on the default models."""
    env = clean_env()
    env["LORAG_DATA_DIR"] = str(tmp_path_factory.mktemp("model-server") / "data")
    env["LORAG_API__KEYS"] = json.dumps(
        [{"id": "client", "key": KEY, "permissions": {"*": "admin"}}]
    )
    process, base = start_lorag_serve(env)
    try:
        yield f"{base}/generate/v1"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)


@pytest.fixture(scope="module")
def client_env(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The user's lorag: the guide ingested, the model on the server."""
    env = clean_env()
    env["LORAG_DATA_DIR"] = str(tmp_path_factory.mktemp("client") / "data")
    env["LORAG_GENERATOR__BACKEND"] = "remote"
    env["LORAG_GENERATOR__REMOTE__URL"] = server
    env["LORAG_GENERATOR__REMOTE__SERVER"] = "lorag"
    env["LORAG_GENERATOR__REMOTE__API_KEY"] = KEY
    lorag("ingest", str(REPO / "examples" / "docs"), "--collection", "guide", env=env)
    return env


def lorag(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(LORAG), *args], env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    assert done.returncode == 0, f"lorag {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done


def test_the_guide_questions_through_a_remote_model_server(
    client_env: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "guide-eval.json"
    lorag(
        "eval", str(QUESTIONS), "--collection", "guide", "--output", str(report),
        "--no-progress", env=client_env,
    )  # fmt: skip
    right = right_guide_answers(report)
    assert len(right) >= 9, f"right: {right}"


def ask(env: dict[str, str], *extra: str) -> dict[str, object]:
    done = lorag("ask", DELETE, "--collection", "guide", "--json", *extra, env=env)
    found: dict[str, object] = json.loads(done.stdout)
    return found


def test_an_adapter_is_pushed_to_the_server_and_chosen_by_model_name(
    client_env: dict[str, str], server: str, tmp_path: Path
) -> None:
    base = ask(client_env)
    assert "lorag documents delete" in str(base["text"]), base
    converted = Path(client_env["LORAG_DATA_DIR"]) / "cache" / "models"
    model_dir = next(p for p in converted.iterdir() if (p / "config.json").is_file())
    adapter = make_lora(model_dir, tmp_path / "noise", seed=7)  # noise: unlike the base
    adapted = ask(client_env, "--adapter", str(adapter))
    served = httpx.get(f"{server}/models", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert f"noise.{adapter_digest(adapter)}" in {m["id"] for m in served["data"]}
    assert adapted["text"] != base["text"], adapted
    again = ask(client_env)  # no adapter asked for: the base answers as before
    assert (again["text"], again["citations"]) == (base["text"], base["citations"])
