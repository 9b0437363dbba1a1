"""EmbeddingStore on disk: float16 stores."""

from __future__ import annotations

import numpy as np
import pytest

from auxir.retrieval.embeddings import EmbeddingStore


def test_a_float16_store_is_half_the_size_and_reads_back_as_float32(tmp_path) -> None:
    rng = np.random.default_rng(0)
    store = EmbeddingStore([f"d{i}" for i in range(64)], rng.standard_normal((64, 16)).astype(np.float32))
    store.save(tmp_path / "full", format="npy")
    store.save(tmp_path / "half", format="npy", dtype="float16")
    full, half = (
        (tmp_path / "full" / "embeddings.npy").stat().st_size,
        (tmp_path / "half" / "embeddings.npy").stat().st_size,
    )
    assert half < 0.6 * full
    again = EmbeddingStore.load(tmp_path / "half")
    assert again.embeddings.dtype == np.float16
    assert again.get(["d3"]).dtype == np.float32
    np.testing.assert_allclose(again.get(["d3"]), store.get(["d3"]), atol=1e-2)
    with pytest.raises(ValueError, match="expected dtype 'float32' or 'float16', found 'int8'"):
        store.save(tmp_path / "bad", dtype="int8")
