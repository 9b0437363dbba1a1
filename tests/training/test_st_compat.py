"""A saved auxir cross-encoder, loaded by sentence-transformers' CrossEncoder, scores as auxir does."""

from __future__ import annotations

import json

import pytest
import torch

from .helpers import DOCS, GROUPS, QUERIES, tiny_batch, tiny_cross_encoder

sentence_transformers = pytest.importorskip("sentence_transformers")


def auxir_scores(model) -> list[float]:
    """Scores of every (query, document) pair of GROUPS, row by row."""
    batch = tiny_batch(model)
    with torch.no_grad():
        scores = [
            model.score(batch.query, batch.query_len, batch.docs[:, i], batch.doc_len[:, i])
            for i in range(batch.docs.shape[1])
        ]
    return torch.stack(scores, dim=1).flatten().tolist()  # (n_queries * n_docs,) in GROUPS order


@pytest.mark.parametrize("pooler", ["keep", "identity"])
def test_sentence_transformers_reproduces_auxir_scores(tiny_bert, tmp_path, pooler):
    model = tiny_cross_encoder(tiny_bert, pooler=pooler).eval()
    model.save_pretrained(tmp_path / "m")
    st = sentence_transformers.CrossEncoder(str(tmp_path / "m"), device="cpu", local_files_only=True)
    assert st.max_seq_length == model.config.max_length == 48
    pairs = [(QUERIES[query], DOCS[doc]) for query, docs, _ in GROUPS for doc in docs]
    expected = auxir_scores(model)
    assert st.predict(pairs, convert_to_numpy=True).tolist() == pytest.approx(expected, abs=1e-5)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["auxir_sentence_transformers_compatible"] is True


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({}, "pooler='skip' skips the pooler"),  # tiny_bert's untrained pooler: "auto" resolves to skip
        ({"pooler": "keep", "bi_encoder": "joint"}, "bi_encoder='joint' adds a term"),
        ({"pooler": "keep", "segment_order": "doc_first"}, "puts the document first"),
    ],
)
def test_incompatible_checkpoints_say_so(tiny_bert, tmp_path, settings, reason):
    tiny_cross_encoder(tiny_bert, **settings).save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["auxir_sentence_transformers_compatible"] is False
    assert reason in config["auxir_sentence_transformers_note"]
