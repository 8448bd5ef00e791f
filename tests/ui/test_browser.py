"""End to end in a real headless browser: ``lorag ui --serve`` (the API on the real default
models, and the Streamlit UI) on loopback, driven by Debian's chromium through Playwright.

A first-time user is welcomed and sent to upload; creates a collection, uploads a document and
watches it being ingested; asks about it and sees the answer with a citation to that document,
whose passage opens under the answer, highlighted in the document's text, and whose original
file opens from there. Screenshots of the documents and of the answer are saved
in ``$LORAG_TEST_ARTIFACTS`` (default ``test-artifacts/``), and one of the page when a step
fails.

Chromium is the system package (``apt-get install chromium``): the test fails, naming the fix,
when it is missing. Playwright never downloads a browser here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LORAG = Path(sys.executable).parent / "lorag"
GUIDE_QUESTIONS = REPO / "examples" / "guide-questions.jsonl"
CHROMIUM = Path(os.environ.get("LORAG_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("LORAG_TEST_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 600.0
TRAVEL = b"""# Travel policy

Employees travel by train when the trip takes less than four hours.

## Hotels

The hotel limit is 120 euros per night in Amsterdam and 90 euros per night elsewhere.

## Meals

Meals are reimbursed up to 35 euros per day with receipts.
"""
QUESTION = "What is the hotel limit per night in Amsterdam?"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"lorag ui --serve stopped (exit {process.returncode}):\n{tail}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the UI was not up after {START_TIMEOUT_S:.0f} s:\n{log.read_text()[-3000:]}")


@contextmanager
def _ui_server(root: Path, **settings: str) -> Iterator[str]:
    """``lorag ui --serve`` on free loopback ports with its data in ``root/data``, as a service
    runs it: no terminal (stdin closed), no display, no ``--headless`` (Streamlit's first-run
    e-mail prompt once made it exit there)."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"chromium not found at {CHROMIUM}: install Debian's package "
            "(apt-get install -y chromium) or set LORAG_CHROMIUM to its path"
        )
    ui_port, api_port = _free_port(), _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LORAG_") and k not in {"DISPLAY", "WAYLAND_DISPLAY"}
    }
    env.update(
        LORAG_DATA_DIR=str(root / "data"),
        LORAG_API__HOST="127.0.0.1",
        LORAG_API__PORT=str(api_port),
        LORAG_UI__HOST="127.0.0.1",
        LORAG_UI__PORT=str(ui_port),
        **settings,
    )
    log = root / "lorag-ui.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(LORAG), "ui", "--serve"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{ui_port}"
    try:
        _wait_until_up(url, process, log)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # what the UI and the API said (a failed step's cause is often only there)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, ARTIFACTS / f"{root.name}-lorag-ui.log")


@contextmanager
def _browser_page(failure_shot: Path) -> Iterator[Page]:
    """A page in headless chromium; a screenshot of it at ``failure_shot`` if a step fails, and
    the browser console beside it (the page's own warnings and errors)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        try:
            yield page
        except Exception:
            page.screenshot(path=failure_shot, full_page=True)
            failure_shot.with_suffix(".console.log").write_text("\n".join(console) + "\n")
            raise
        finally:
            browser.close()


@pytest.fixture
def ui_url(tmp_path: Path) -> Iterator[str]:
    """The UI in an empty data folder, as on a first start."""
    with _ui_server(tmp_path) as url:
        yield url


@pytest.fixture
def guide_ui_url(tmp_path: Path) -> Iterator[str]:
    """The UI on the ingested user guide, as ``make run`` starts it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LORAG_") and k not in {"DISPLAY", "WAYLAND_DISPLAY"}
    }
    env["LORAG_DATA_DIR"] = str(tmp_path / "data")
    ingest = [str(LORAG), "ingest", str(REPO / "examples" / "docs"), "--collection", "guide"]
    done = subprocess.run(ingest, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    with _ui_server(tmp_path, LORAG_COLLECTION="guide") as url:
        yield url


def test_upload_a_document_ask_about_it_and_see_the_source(ui_url: str) -> None:
    from playwright.sync_api import expect

    with _browser_page(ARTIFACTS / "ui-failure.png") as page:
        page.goto(ui_url)
        expect(page.get_by_text("Welcome to lorag")).to_be_visible()
        page.get_by_test_id("stPageLink-NavLink").filter(has_text="Upload documents").click()

        expect(page.get_by_text("No collection yet")).to_be_visible()
        page.get_by_role("button", name=re.compile("Create collection")).click()
        expect(page.get_by_text("Add documents to documents")).to_be_visible()
        page.locator("input[type=file]").set_input_files(
            {"name": "travel-policy.md", "mimeType": "text/markdown", "buffer": TRAVEL}
        )
        expect(page.get_by_text("travel-policy.md")).to_be_visible()
        page.get_by_role("button", name=re.compile("Upload and ingest")).click()
        expect(page.get_by_text("Ingested 1 file into")).to_be_visible(timeout=180_000)
        expect(page.get_by_text("1 document in documents")).to_be_visible()
        expect(page.get_by_text(re.compile(r"^1 document · \d+ chunks"))).to_be_visible()
        expect(page.get_by_test_id("stDataFrame")).to_be_visible()
        page.wait_for_timeout(800)  # the table's canvas
        page.screenshot(path=ARTIFACTS / "ui-documents.png", full_page=True)

        page.get_by_test_id("stPageLink-NavLink").filter(has_text="Ask about them").click()
        chat = page.get_by_test_id("stChatInputTextArea")
        expect(chat).to_be_enabled()
        chat.fill(QUESTION)
        chat.press("Enter")
        source = page.get_by_test_id("stExpander").filter(
            has_text=re.compile(r"\[\d+\] travel-policy\.md")
        )
        expect(source.first).to_be_visible(timeout=180_000)
        source.first.get_by_text(re.compile(r"\[\d+\] travel-policy\.md")).click()
        expect(source.first.locator("mark")).to_contain_text("The hotel limit is 120 euros")
        with page.expect_download() as opened:
            source.first.get_by_role("button", name=re.compile("Open travel-policy.md")).click()
        assert opened.value.suggested_filename == "travel-policy.md"
        assert Path(opened.value.path()).read_bytes() == TRAVEL
        assistant = page.get_by_test_id("stChatMessage").last
        expect(assistant).to_contain_text("120")
        expect(assistant).to_contain_text("Answered by the base model from documents")
        expect(page.get_by_text("Traceback")).to_have_count(0)
        page.wait_for_timeout(800)  # the expander's opening animation
        page.screenshot(path=ARTIFACTS / "ui-answer-with-source.png", full_page=True)

        page.goto(f"{ui_url}/documents")  # a page's own address runs the whole app
        expect(page.get_by_role("heading", name="Documents", level=1)).to_be_visible()
        expect(page.get_by_role("link", name="Batch questions")).to_be_visible()


def test_the_guide_questions_in_the_browser(guide_ui_url: str) -> None:
    """Each of the guide's 10 questions typed into the chat as ``make run`` opens it: the answer
    must hold the expected command or setting and cite an expected page (at least 9 of 10)."""
    from playwright.sync_api import expect

    from assistant.batch.metrics import answer_contains

    rows = [json.loads(line) for line in GUIDE_QUESTIONS.read_text().splitlines()]
    outcomes: list[str] = []
    with _browser_page(ARTIFACTS / "ui-failure.png") as page:
        page.goto(guide_ui_url)
        for n, row in enumerate(rows, start=1):
            chat = page.get_by_test_id("stChatInputTextArea")
            expect(chat).to_be_enabled(timeout=180_000)
            chat.fill(row["question"])
            chat.press("Enter")
            done = page.get_by_text(re.compile(r"^Answered by .* from guide in"))
            expect(done).to_have_count(n, timeout=180_000)
            assistant = page.get_by_test_id("stChatMessage").last
            text = assistant.get_by_test_id("stMarkdown").first.inner_text()
            cited = assistant.get_by_test_id("stExpander").all_inner_texts()
            holds = answer_contains(text, [row["answer"]]) == 1.0
            on_page = any(name in label for label in cited for name in row["source"])
            verdict = "right" if holds and on_page else "WRONG"
            outcomes.append(f"{row['id']}: {verdict} {text!r}")
        expect(page.get_by_text("Traceback")).to_have_count(0)
        page.screenshot(path=ARTIFACTS / "ui-guide-questions.png", full_page=True)
    print("\n".join(outcomes))
    assert sum(" right " in outcome for outcome in outcomes) >= 9, outcomes
