"""CODER candidate lists: top-N rows of an embedding store, positives injected, compact, batched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auxir.data.candidates import (
    PAD_ROW,
    CandidateBatch,
    CandidateBatchSource,
    CandidateLists,
    build_candidate_lists,
)
from auxir.data.records import Qrel, ScoredDoc
from auxir.data.token_cache import TokenCache

ROW_OF = {f"d{i}": i for i in range(8)}


def run_of(query_id: str, doc_ids: list[str]) -> list[ScoredDoc]:
    return [ScoredDoc(query_id, d, float(len(doc_ids) - i)) for i, d in enumerate(doc_ids)]


def word_tokenizer(texts, **_):
    """Stands in for a Hugging Face tokenizer: one id per word (its length)."""
    return {"input_ids": [[len(w) for w in t.split()] for t in texts]}


def test_top_n_rows_with_graded_labels_and_padding() -> None:
    run = run_of("a", ["d3", "d1", "d4", "d0"]) + run_of("b", ["d2"])
    qrels = [Qrel("a", "d1", 2), Qrel("a", "d4", 1), Qrel("b", "d2", 1), Qrel("b", "d7", -1)]
    lists = build_candidate_lists(["a", "b"], run, qrels, ROW_OF, num_candidates=3)
    assert lists.query_ids == ["a", "b"]
    assert lists.rows.tolist() == [[3, 1, 4], [2, PAD_ROW, PAD_ROW]]  # best first; short lists padded
    assert lists.labels.tolist() == [[0, 2, 1], [1, 0, 0]]
    assert lists.rows.dtype == np.int32 and lists.labels.dtype == np.int8
    assert (lists.injected, lists.skipped_no_positive) == (0, 0)


def test_missed_positives_replace_the_lowest_negatives_highest_grade_first() -> None:
    run = run_of("a", ["d0", "d1", "d2", "d3", "d4"])
    qrels = [Qrel("a", "d1", 1), Qrel("a", "d6", 1), Qrel("a", "d7", 3), Qrel("a", "d5", 0)]
    lists = build_candidate_lists(["a"], run, qrels, ROW_OF, num_candidates=4)
    # top 4 = d0 d1 d2 d3; d7 (grade 3) takes d3's place, d6 d2's; the positive d1 is kept
    assert lists.rows.tolist() == [[0, 1, 6, 7]]
    assert lists.labels.tolist() == [[0, 1, 1, 3]]
    assert lists.injected == 2


def test_missed_positives_fill_padding_first() -> None:
    lists = build_candidate_lists(["a"], run_of("a", ["d0"]), [Qrel("a", "d5", 1)], ROW_OF, num_candidates=3)
    assert lists.rows.tolist() == [[0, 5, PAD_ROW]] and lists.labels.tolist() == [[0, 1, 0]]


def test_queries_without_a_positive_among_their_candidates_are_skipped() -> None:
    run = run_of("a", ["d0", "d1"]) + run_of("b", ["d2", "d3"]) + run_of("c", ["d4"])
    qrels = [Qrel("a", "d1", 1), Qrel("b", "d6", 1)]  # b's positive is missed; c has none at all
    injected = build_candidate_lists(["a", "b", "c"], run, qrels, ROW_OF, num_candidates=2)
    assert injected.query_ids == ["a", "b"] and injected.skipped_no_positive == 1
    plain = build_candidate_lists(
        ["a", "b", "c"], run, qrels, ROW_OF, num_candidates=2, inject_positives=False
    )
    assert plain.query_ids == ["a"] and plain.skipped_no_positive == 2 and plain.injected == 0


def test_documents_missing_from_the_store_are_left_out(caplog) -> None:
    run = run_of("a", ["d0", "zz", "d1"])
    lists = build_candidate_lists(["a"], run, [Qrel("a", "d1", 1)], ROW_OF, num_candidates=2)
    assert lists.rows.tolist() == [[0, 1]]
    assert "1 first-stage documents are not in the embedding store" in caplog.text


def test_grades_beyond_int8_are_an_error() -> None:
    with pytest.raises(
        ValueError, match=r"relevance grades up to 127.*found 300 for query 'a', document 'd0'"
    ):
        build_candidate_lists(["a"], run_of("a", ["d0"]), [Qrel("a", "d0", 300)], ROW_OF, num_candidates=1)


def test_round_trip_through_one_npz_file(tmp_path) -> None:
    run = run_of("a", ["d3", "d1"]) + run_of("b", ["d2"])
    qrels = [Qrel("a", "d5", 2), Qrel("b", "d2", 1)]
    lists = build_candidate_lists(["a", "b", "c"], run, qrels, ROW_OF, num_candidates=2)
    path = tmp_path / "candidates.npz"
    lists.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["candidates.npz"]
    again = CandidateLists.load(path)
    assert again.query_ids == lists.query_ids == ["a", "b"]
    assert np.array_equal(again.rows, lists.rows) and again.rows.dtype == np.int32
    assert np.array_equal(again.labels, lists.labels) and again.labels.dtype == np.int8
    assert (again.injected, again.skipped_no_positive) == (1, 1)


def make_source(batch_size=2, rank=0, world_size=1, seed=0) -> tuple[CandidateBatchSource, torch.Tensor]:
    query_ids = [f"q{i}" for i in range(5)]
    run = [s for i, q in enumerate(query_ids) for s in run_of(q, [f"d{(i + j) % 8}" for j in range(3)])]
    qrels = [Qrel(q, f"d{i % 8}", 1 + i % 2) for i, q in enumerate(query_ids)]
    lists = build_candidate_lists(query_ids, run, qrels, ROW_OF, num_candidates=4)
    embeddings = torch.arange(8 * 3, dtype=torch.float16).view(8, 3)
    queries = TokenCache(word_tokenizer, max_length=8)
    queries.add(query_ids, lambda q: "word " * (1 + int(q[1:])))
    source = CandidateBatchSource(lists, embeddings, queries, 0, batch_size, seed, rank, world_size)
    return source, embeddings


def test_batches_gather_the_candidate_embeddings() -> None:
    source, embeddings = make_source()
    assert source.num_batches(0) == 3  # 5 queries in batches of 2, the last one short
    batch = source.batch(0, 0)
    assert isinstance(batch, CandidateBatch)
    assert batch.doc_emb.shape == (2, 4, 3) and batch.doc_emb.dtype == torch.float16
    for i, query_id in enumerate(batch.query_ids):
        row = source.lists.query_ids.index(query_id)
        rows = source.lists.rows[row]
        assert batch.mask[i].tolist() == (rows != PAD_ROW).tolist() == [True, True, True, False]
        assert torch.equal(batch.doc_emb[i, :3], embeddings[torch.from_numpy(rows[:3]).long()])
        assert batch.labels[i].tolist() == source.lists.labels[row].astype(float).tolist()
        assert batch.query_len[i] == 1 + int(query_id[1:])
    assert batch.labels.dtype == torch.float32 and batch.query.dtype == torch.int64
    assert source.units(batch) == 8
    moved = batch.to("cpu")
    assert isinstance(moved, CandidateBatch) and moved.query_ids == batch.query_ids


def test_batches_are_deterministic_in_seed_and_epoch_and_sharded() -> None:
    def order(source, epoch):
        return [q for i in range(source.num_batches(epoch)) for q in source.batch(epoch, i).query_ids]

    first, again = make_source()[0], make_source()[0]
    assert order(first, 0) == order(again, 0)
    assert sorted(order(first, 0)) == [f"q{i}" for i in range(5)]
    assert [order(first, e) for e in range(4)] != [order(first, 0)] * 4  # each epoch reshuffles
    shards = [make_source(batch_size=1, rank=r, world_size=2)[0] for r in (0, 1)]
    assert [s.num_batches(0) for s in shards] == [2, 2]  # the same count on every process
    seen = [set(order(s, 0)) for s in shards]
    assert not seen[0] & seen[1]


def test_an_empty_list_set_is_a_clear_error() -> None:
    lists = build_candidate_lists(["a"], run_of("a", ["d0"]), [], ROW_OF, num_candidates=1)
    with pytest.raises(ValueError, match=r"no training query.*1 skipped"):
        CandidateBatchSource(lists, torch.zeros(8, 3), TokenCache(word_tokenizer, 8), 0, 2)
