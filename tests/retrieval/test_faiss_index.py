from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auxir.retrieval.embeddings import EmbeddingStore
from auxir.retrieval.faiss_index import DenseIndex, DenseIndexConfig


def random_unit(n: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, list[str]]:
    return random_unit(2000, 32, seed=1), [f"d{i}" for i in range(2000)]


@pytest.fixture(scope="module")
def queries() -> tuple[np.ndarray, list[str]]:
    return random_unit(50, 32, seed=2), [f"q{i}" for i in range(50)]


def brute_force(docs: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ docs.T  # (n_queries, n_docs)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_flat_equals_brute_force(corpus, queries) -> None:
    docs, doc_ids = corpus
    vectors, query_ids = queries
    rows = DenseIndex.build(docs, doc_ids).search(vectors, query_ids, k=10)
    expected = brute_force(docs, vectors, 10)
    for q, query_id in enumerate(query_ids):
        got = [r for r in rows if r.query_id == query_id]
        assert [r.doc_id for r in got] == [doc_ids[i] for i in expected[q]]
        np.testing.assert_allclose([r.score for r in got], vectors[q] @ docs[expected[q]].T, rtol=1e-5)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_recall_against_flat(corpus, queries, kind: str) -> None:
    docs, doc_ids = corpus
    vectors, query_ids = queries
    exact = {(r.query_id, r.doc_id) for r in DenseIndex.build(docs, doc_ids).search(vectors, query_ids, k=10)}
    config = DenseIndexConfig(kind=kind, nlist=16, nprobe=12, ef_search=64)  # isotropic data: hard for IVF
    approx = {
        (r.query_id, r.doc_id)
        for r in DenseIndex.build(docs, doc_ids, config).search(vectors, query_ids, k=10)
    }
    assert len(exact & approx) / len(exact) >= 0.9


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_identical(corpus, queries, kind: str, tmp_path: Path) -> None:
    docs, doc_ids = corpus
    vectors, query_ids = queries
    index = DenseIndex.build(docs[:500], doc_ids[:500], DenseIndexConfig(kind=kind, nprobe=3, ef_search=40))
    index.save(tmp_path / "faiss")
    loaded = DenseIndex.load(tmp_path / "faiss")
    assert loaded.config == index.config and loaded.doc_ids == index.doc_ids
    assert loaded.search(vectors, query_ids, k=5) == index.search(vectors, query_ids, k=5)


def test_k_larger_than_corpus_and_bad_input() -> None:
    index = DenseIndex.build(np.eye(3, dtype=np.float32), ["a", "b", "c"])
    assert len(index.search(np.ones((1, 3)), ["q"], k=100)) == 3
    with pytest.raises(ValueError, match="dimension 3"):
        index.search(np.ones((1, 4)), ["q"], k=1)
    with pytest.raises(ValueError, match="empty corpus"):
        DenseIndex.build(np.zeros((0, 3), dtype=np.float32), [])
    with pytest.raises(ValueError, match="DenseIndexConfig.kind"):
        DenseIndexConfig(kind="lsh")


@pytest.mark.parametrize("fmt", ["safetensors", "npy"])
def test_embedding_store_round_trip(tmp_path: Path, fmt: str) -> None:
    store = EmbeddingStore(["a", "b", "c"], random_unit(3, 8, seed=3), metadata={"encoder": {"model": "m"}})
    store.save(tmp_path / "store", format=fmt)
    loaded = EmbeddingStore.load(tmp_path / "store")
    assert loaded.ids == store.ids and loaded.metadata == store.metadata
    np.testing.assert_array_equal(loaded.embeddings, store.embeddings)
    if fmt == "npy":
        assert isinstance(loaded.embeddings, np.memmap) and not loaded.embeddings.flags.writeable
    np.testing.assert_array_equal(loaded.get(["c", "a"]), store.embeddings[[2, 0]])
    with pytest.raises(KeyError, match="'zz'"):
        loaded.get(["zz"])


def test_embedding_store_checks_shape() -> None:
    with pytest.raises(ValueError, match="one id per row"):
        EmbeddingStore(["a"], np.zeros((2, 4), dtype=np.float32))
