"""docker-compose.yml: valid for Docker Compose (checked offline by Debian's docker-compose,
which `make test` installs), with and without the ``gpu`` profile, and the ``gpu`` profile
wires the API to vLLM the way the remote back end needs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]], ids=["default", "gpu"])
def test_the_compose_file_is_valid(profile: list[str]) -> None:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is not installed: `make test` installs it (apt docker-compose)"
    env = {**os.environ, "LORAG_API_KEY": "compose-check-key-0123"}
    done = subprocess.run(
        [tool, "-f", str(COMPOSE), *profile, "config", "-q"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_gpu_profile_serves_the_model_on_vllm_for_the_api() -> None:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    vllm = services["vllm"]
    assert vllm["profiles"] == ["gpu"]
    assert "--enable-lora" in vllm["command"]
    assert vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    api = services["api"]["environment"]
    assert api["LORAG_GENERATOR__REMOTE__URL"] == "http://vllm:8000/v1"
    assert api["LORAG_GENERATOR__REMOTE__SERVER"] == "vllm"
    # vLLM reads the adapters where the API writes them: the same volume, another mount.
    data_volume = next(v for v in services["api"]["volumes"] if v.endswith(":/data"))
    shared = data_volume.split(":")[0]
    assert f"{shared}:/lorag:ro" in vllm["volumes"]
    assert api["LORAG_GENERATOR__REMOTE__ADAPTER_DIR"] == "/lorag/adapters"
    assert all("profiles" not in services[name] for name in ("qdrant", "api", "ui"))


def test_the_installed_qdrant_client_accepts_the_compose_server() -> None:
    """qdrant-client warns on every connection to a server more than one minor version away:
    the pin in pyproject.toml and the image in docker-compose.yml move together."""
    from importlib.metadata import version

    from qdrant_client.common.version_check import is_compatible

    image = yaml.safe_load(COMPOSE.read_text())["services"]["qdrant"]["image"]
    server = image.rsplit(":v", 1)[1]
    client = version("qdrant-client")
    assert is_compatible(client, server), f"qdrant-client {client} against the server {server}"
