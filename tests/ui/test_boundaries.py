"""The UI is a thin HTTP client: it imports no model, engine, store or API code (only the
settings from the kernel), and importing it loads no torch. ``lorag ui`` runs Streamlit on
``ui/app.py`` with the API's address in the UI's settings."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app as cli
from assistant.cli.ui import has_display, serve_environment, streamlit_command
from assistant.core.settings import ApiKey, ApiSettings, Settings

UI = Path(__file__).resolve().parents[2] / "ui"
ALLOWED_FIRST_PARTY = {"ui", "assistant.core.settings"}
FIRST_PARTY = ("ui", "assistant", "ingestion", "finetune")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(UI.rglob("*.py")), ids=lambda p: str(p.relative_to(UI)))
def test_the_ui_imports_only_itself_and_the_settings(path: Path) -> None:
    first_party = {name for name in _imports(path) if name.split(".")[0] in FIRST_PARTY}
    outside = {
        name
        for name in first_party
        if name not in ALLOWED_FIRST_PARTY and not name.startswith("ui.") and name != "ui"
    }
    assert not outside, f"{path.name} imports {outside}: the UI talks to the API over HTTP"
    assert "torch" not in {name.split(".")[0] for name in _imports(path)}


def test_importing_the_ui_loads_no_torch() -> None:
    modules = [f"ui.{path.stem}" for path in UI.glob("[!_]*.py") if path.stem != "app"]
    modules += [f"ui.components.{path.stem}" for path in (UI / "components").glob("[!_]*.py")]
    heavy = ["torch", "transformers", "assistant.engine", "assistant.api", "assistant.runtime"]
    code = f"import sys, {', '.join(modules)}; print(sorted(set({heavy!r}) & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def test_the_streamlit_command_runs_the_ui_app_headless_on_the_address() -> None:
    command = streamlit_command("127.0.0.1", 8555, max_upload_mb=50.0)
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(command[4]) == UI / "app.py"
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options["--server.address"] == "127.0.0.1" and options["--server.port"] == "8555"
    assert options["--server.headless"] == "true"
    assert options["--server.fileWatcherType"] == "none"  # a served UI reruns on no file change
    assert options["--browser.gatherUsageStats"] == "false"
    assert options["--server.maxUploadSize"] == "50"  # the API's limit, not Streamlit's 200 MB


def test_a_browser_window_opens_only_where_a_display_exists() -> None:
    assert has_display("linux", {"DISPLAY": ":0"}) and has_display(
        "linux", {"WAYLAND_DISPLAY": "w"}
    )
    assert not has_display("linux", {})
    assert has_display("darwin", {}) and has_display("win32", {})


def test_serve_is_anonymous_only_on_loopback_without_keys() -> None:
    local = Settings(_env_file=None)
    assert serve_environment(local)["LORAG_API__ALLOW_ANONYMOUS"] == "true"
    keyed = Settings(
        _env_file=None,
        api=ApiSettings(keys=[ApiKey(id="ops", key="k" * 16, permissions={"*": "admin"})]),
    )
    assert "LORAG_API__ALLOW_ANONYMOUS" not in serve_environment(keyed)


def test_serving_beyond_loopback_without_keys_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAG_API__HOST", "0.0.0.0")
    monkeypatch.delenv("LORAG_API__KEYS", raising=False)
    result = CliRunner().invoke(cli, ["ui", "--serve"])
    assert result.exit_code == 1
    assert "configure API keys" in result.output


def test_serve_and_an_api_url_do_not_go_together() -> None:
    result = CliRunner().invoke(cli, ["ui", "--serve", "--api-url", "http://elsewhere:8000"])
    assert result.exit_code == 1 and "leave out --api-url" in result.output
