"""Fixtures for the UI tests: the real API app on the tiny models, served by uvicorn on a
loopback port for the whole session, and the UI pointed at it through its settings.

The API holds the collection ``kb`` (the API tests' documents) and the adapter ``ops`` in two
versions (``ops@1`` promoted; ``ops@2`` with a base-vs-adapter evaluation and a loss history, as
a fine-tuning run writes them), and the API tests' keys. Its upload limit is 1 MiB, so a 413 is
cheap to provoke. Tests that change things work in collections of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from assistant.core.settings import Settings
from assistant.runtime import Runtime
from tests.api.conftest import KEYS, live_server, seeded_app
from tests.core.test_models import make_lora

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "ui" / "app.py"
ADMIN_KEY = KEYS["admin"][0]
EVALUATED = {
    "eval_loss": 1.1,
    "final_loss": 1.3,
    "history": [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.6}, {"step": 3, "loss": 1.3}],
    "evaluation": {
        "eval_examples": 4,
        "base": {"eval_loss": 2.1, "eval_perplexity": 8.2, "general_perplexity": 30.0},
        "adapter": {"eval_loss": 1.1, "eval_perplexity": 3.0, "general_perplexity": 31.5},
        "forgetting_ratio": 1.05,
        "answer_f1": {"questions": 5, "collection": "kb", "base": 0.31, "adapter": 0.52},
    },
}


@dataclass(frozen=True)
class LiveApi:
    """The API the UI talks to: its base URL, settings and runtime."""

    url: str
    settings: Settings
    runtime: Runtime


@pytest.fixture(scope="session")
def live_api(
    tmp_path_factory: pytest.TempPathFactory, tiny_generator_dir: Path, tiny_embedder_dir: Path
) -> Iterator[LiveApi]:
    """The API app (tiny models, seeded ``kb`` and ``ops``) on a free loopback port."""
    root = tmp_path_factory.mktemp("ui-api")
    loras = [make_lora(tiny_generator_dir, root / f"lora-{v}", v) for v in (1, 2)]
    with (
        seeded_app(
            root,
            tiny_generator_dir,
            tiny_embedder_dir,
            loras,
            run_metrics={2: EVALUATED},
            max_upload_mb=1,
        ) as (app, settings, runtime),
        live_server(app) as url,
    ):
        yield LiveApi(url, settings, runtime)


@pytest.fixture
def api(live_api: LiveApi, monkeypatch: pytest.MonkeyPatch) -> LiveApi:
    """The live API, with the UI's settings (environment) pointing at it with the admin key."""
    monkeypatch.setenv("LORAG_UI__API_URL", live_api.url)
    monkeypatch.setenv("LORAG_UI__API_KEY", ADMIN_KEY)
    monkeypatch.setenv("LORAG_COLLECTION", "kb")
    return live_api


def open_page(page: str | None = None, timeout_s: float = 60.0) -> AppTest:
    """The UI (``ui/app.py``) run once, on ``page`` (``"documents"``…) or the default page."""
    app = AppTest.from_file(str(APP), default_timeout=timeout_s)
    app.run()
    if page is not None:
        app.switch_page(f"views/{page}.py").run()
    return app


def texts(app: AppTest, *kinds: str) -> str:
    """Every text of the elements of ``kinds`` (``"markdown"``, ``"info"``…), joined."""
    return "\n".join(str(element.value) for kind in kinds for element in getattr(app, kind))
