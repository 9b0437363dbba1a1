from __future__ import annotations

import math
from pathlib import Path

import pytest

from auxir.data.records import Doc, Query, ScoredDoc
from auxir.retrieval.bm25 import BM25Config, BM25Index


def top(rows: list[ScoredDoc], query_id: str) -> list[str]:
    return [row.doc_id for row in rows if row.query_id == query_id]


def test_obvious_match_ranks_first(docs: list[Doc]) -> None:
    index = BM25Index.build(docs, BM25Config())
    rows = index.search({"q1": "cat mat", "q2": "bank loan interest", "q3": "photosynthesis"}, k=10)
    assert top(rows, "q1")[0] == "d1"
    assert top(rows, "q2")[0] == "d3"
    assert top(rows, "q3") == ["d4"]  # documents sharing no term are left out


def test_score_matches_lucene_bm25_by_hand() -> None:
    # Lucene BM25: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf part = tf / (tf + k1 (1 - b + b dl / avgdl)).
    docs = [Doc("a", "apple banana"), Doc("b", "banana cherry cherry"), Doc("c", "durian")]
    config = BM25Config(k1=1.2, b=0.75, stemmer=None, stopwords=None)
    (row,) = BM25Index.build(docs, config).search({"q": "cherry"}, k=3)
    n, df, tf, dl, avgdl = 3, 1, 2, 3, 2.0
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    expected = idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl))
    assert row.doc_id == "b"
    assert row.score == pytest.approx(expected, rel=1e-5)


def test_query_objects_and_k_cut(docs: list[Doc]) -> None:
    index = BM25Index.build(docs)
    rows = index.search({"q": Query("q", "the cat and the dog swim in the river")}, k=1)
    assert len(rows) == 1 and rows[0].doc_id == "d2"
    assert len(index.search({"q": "cat dog river bank"}, k=1000)) <= len(docs)  # k above corpus size is fine


def test_save_load_identical(docs: list[Doc], tmp_path: Path) -> None:
    config = BM25Config(k1=1.2, b=0.75, stemmer=None)
    index = BM25Index.build(docs, config)
    queries = {"q1": "cats on mats", "q2": "river bank", "q3": "blood pressure drug"}
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded.config == config
    assert loaded.doc_ids == index.doc_ids
    assert loaded.search(queries, k=5) == index.search(queries, k=5)
    index.save(tmp_path / "bm25")  # replacing an existing index works and leaves no temporary files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bm25"]


def test_stemming_changes_matches(docs: list[Doc]) -> None:
    query = {"q": "swimming dog"}  # the docs say "dogs swim"
    stemmed = BM25Index.build(docs, BM25Config(stemmer="english")).search(query, k=5)
    plain = BM25Index.build(docs, BM25Config(stemmer=None)).search(query, k=5)
    assert top(stemmed, "q") == ["d2"]
    assert top(plain, "q") == []


def test_stopwords_are_removed(docs: list[Doc]) -> None:
    with_list = BM25Index.build(docs, BM25Config(stopwords="en")).search({"q": "the on"}, k=5)
    without = BM25Index.build(docs, BM25Config(stopwords=None)).search({"q": "the on"}, k=5)
    assert with_list == []
    assert top(without, "q")[0] in {"d1", "d3"}


def test_title_field_is_indexed(docs: list[Doc]) -> None:
    query = {"q": "trees"}  # only in d4's title
    assert top(BM25Index.build(docs, BM25Config(use_title=True)).search(query, k=5), "q") == ["d4"]
    assert top(BM25Index.build(docs, BM25Config(use_title=False)).search(query, k=5), "q") == []


def test_token_pattern_can_keep_single_characters() -> None:
    docs = [Doc("d1", "vitamin d deficiency"), Doc("d2", "vitamin c intake"), Doc("d3", "a b c")]
    query = {"q": "d"}
    assert top(BM25Index.build(docs).search(query, k=3), "q") == []  # bm25s's default drops 1-char tokens
    single = BM25Config(token_pattern=r"(?u)\b\w+\b")
    assert top(BM25Index.build(docs, single).search(query, k=3), "q") == ["d1"]


def test_empty_corpus_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty corpus"):
        BM25Index.build([], BM25Config())


def test_corpus_without_terms_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one term"):
        BM25Index.build([Doc("a", "x y"), Doc("b", "the of")])  # 1-char tokens and stop words only


def test_bad_k_and_config_are_errors(docs: list[Doc]) -> None:
    index = BM25Index.build(docs)
    with pytest.raises(ValueError, match="k: expected an integer >= 1"):
        index.search({"q": "cat"}, k=0)
    with pytest.raises(ValueError, match="BM25Config.stemmer"):
        BM25Config(stemmer="klingon")
    with pytest.raises(ValueError, match="distinct doc ids"):
        BM25Index.build([Doc("x", "a b"), Doc("x", "c d")])


def test_refuses_to_replace_a_foreign_directory(docs: list[Doc], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not an auxir index"):
        BM25Index.build(docs).save(tmp_path)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"
