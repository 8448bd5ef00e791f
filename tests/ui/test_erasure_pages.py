"""An erasure seen in the UI against the real API: deleting a document on the Documents page
says which adapter it tainted, and the Adapters page shows that version as tainted, by which
document, how to rebuild it, and does not offer to promote it."""

from __future__ import annotations

from pathlib import Path

from assistant.core.registry import AdapterRegistry, TrainingOrigin
from tests.core.test_models import make_lora
from tests.core.test_registry import make_run
from tests.ui.conftest import LiveApi, open_page

COLLECTION = "erase-ui"
ADAPTER = "erased-ui"  # sorts before the other adapters: the page shows the last one first


def test_a_deleted_document_taints_its_adapter_on_both_pages(
    api: LiveApi, tmp_path: Path, tiny_generator_dir: Path
) -> None:
    memo = tmp_path / "memo.txt"
    memo.write_text("The staff party is on the 14th of June at the harbour.\n")
    assert api.runtime.ingestor(COLLECTION).ingest([memo]).ok
    [doc] = api.runtime.store.documents(COLLECTION)
    origin = TrainingOrigin.of(
        api.settings,
        method="lora",
        dataset_fingerprint="e" * 16,
        source_doc_hashes={doc.doc_id: doc.file_hash},
    )
    run = make_run(tmp_path / "run", make_lora(tiny_generator_dir, tmp_path / "lora", 3))
    AdapterRegistry.for_settings(api.settings).register(ADAPTER, run, origin)

    app = open_page("documents")
    app.sidebar.selectbox[0].set_value(COLLECTION).run()
    delete = next(s for s in app.selectbox if s.label == "Delete a document")
    delete.select(next(d for d in delete.options if d.startswith("memo.txt"))).run()
    next(b for b in app.button if b.label == "Delete").click().run()
    assert not app.exception, [e.value for e in app.exception]
    toasts = [t.value for t in app.toast]
    assert f"Tainted (trained on it, no longer served): {ADAPTER}@1. See the Adapters page." in (
        toasts
    )

    app.switch_page("views/adapters.py").run()
    table = app.dataframe[0].value.set_index("Adapter")
    assert table.loc[f"{ADAPTER}@1", "Tainted"] == f"erased {doc.doc_id[:8]}"
    assert table.loc["ops@1", "Tainted"] == ""
    app.selectbox[0].set_value(f"{ADAPTER}@1").run()
    [error] = app.error
    assert f"{ADAPTER}@1 is tainted" in error.value and doc.doc_id in error.value
    assert f"lorag adapters retrain {ADAPTER}@1" in error.value
    promote = next(b for b in app.button if b.label == f"Promote {ADAPTER}@1")
    assert promote.disabled
