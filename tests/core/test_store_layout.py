"""The collection a Qdrant server is asked to create: shards, replicas, write consistency and
on-disk storage from the settings, as qdrant-client's own request model (no server runs here;
the server half of tests/core/test_store.py reads them back from one)."""

from __future__ import annotations

import pytest
from qdrant_client import models

from assistant.core.errors import ConfigError
from assistant.core.settings import StoreSettings, load_settings
from assistant.core.store.client import collection_request
from assistant.core.store.schema import HNSW_EF_CONSTRUCT, HNSW_M


def test_a_server_collection_gets_the_layout_of_the_settings() -> None:
    layout = StoreSettings(
        url="http://qdrant:6333",
        shard_number=6,
        replication_factor=3,
        write_consistency_factor=2,
        on_disk=True,
        on_disk_payload=False,
    )
    assert collection_request(384, layout) == models.CreateCollection(
        vectors={
            "dense": models.VectorParams(size=384, distance=models.Distance.COSINE, on_disk=True)
        },
        sparse_vectors={
            "sparse": models.SparseVectorParams(
                index=models.SparseIndexParams(on_disk=True), modifier=models.Modifier.IDF
            )
        },
        shard_number=6,
        replication_factor=3,
        write_consistency_factor=2,
        on_disk_payload=False,
        hnsw_config=models.HnswConfigDiff(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT),
    )


def test_unset_cluster_settings_are_left_to_the_server() -> None:
    request = collection_request(8, StoreSettings(url="http://qdrant:6333"))
    assert request.model_fields_set == {
        "vectors",
        "sparse_vectors",
        "on_disk_payload",
        "hnsw_config",
    }
    assert request.on_disk_payload is True
    assert request.vectors == {
        "dense": models.VectorParams(size=8, distance=models.Distance.COSINE, on_disk=False)
    }


def test_local_mode_is_asked_for_the_vectors_only() -> None:
    request = collection_request(8, None)
    assert request.model_fields_set == {"vectors", "sparse_vectors"}
    assert request.sparse_vectors == {
        "sparse": models.SparseVectorParams(modifier=models.Modifier.IDF)
    }


def test_the_layout_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAG_STORE__SHARD_NUMBER", "4")
    monkeypatch.setenv("LORAG_STORE__REPLICATION_FACTOR", "2")
    monkeypatch.setenv("LORAG_STORE__ON_DISK", "true")
    store = load_settings().store
    assert (store.shard_number, store.replication_factor, store.on_disk) == (4, 2, True)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"LORAG_STORE__WRITE_CONSISTENCY_FACTOR": "3", "LORAG_STORE__REPLICATION_FACTOR": "2"},
            "store.write_consistency_factor cannot exceed store.replication_factor (got 3 > 2)",
        ),
        (
            {"LORAG_STORE__WRITE_CONSISTENCY_FACTOR": "2"},
            "store.write_consistency_factor cannot exceed store.replication_factor (got 2 > 1)",
        ),
        ({"LORAG_STORE__SHARD_NUMBER": "0"}, "invalid setting store.shard_number"),
    ],
)
def test_an_impossible_layout_is_a_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert message in str(caught.value)
