"""``auxir index | retrieve | encode`` end to end on a tiny BEIR directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import auxir.cli
from auxir.data.trec import read_run
from auxir.retrieval.dense_retriever import DenseRetriever
from auxir.retrieval.embeddings import EmbeddingStore


def main(*argv: str | Path) -> int:
    return auxir.cli.main([str(a) for a in argv])


def test_bm25_index_and_retrieve(tiny_beir: Path, tmp_path: Path) -> None:
    assert (
        main("index", "--dataset", tiny_beir, "--out", tmp_path / "bm25", "--k1", "1.2", "--b", "0.75") == 0
    )
    run_file = tmp_path / "run.trec"
    assert main("retrieve", "--index", tmp_path / "bm25", "--dataset", tiny_beir, "--split", "test",
                "--k", "3", "--out", run_file) == 0  # fmt: skip
    run = read_run(run_file)
    assert {r.query_id for r in run} == {"q1", "q2"}  # only the queries judged in the split
    assert [r.doc_id for r in run if r.query_id == "q1"][0] == "d1"
    assert [r.doc_id for r in run if r.query_id == "q2"][0] == "d3"
    assert run_file.read_text().split("\n")[0].endswith("auxir-bm25")


def test_retrieve_from_a_queries_file(tiny_beir: Path, tmp_path: Path) -> None:
    main("index", "--dataset", tiny_beir, "--out", tmp_path / "bm25", "--stemmer", "none")
    (tmp_path / "topics.tsv").write_text("x1\tphotosynthesis light\n", encoding="utf-8")
    assert main("retrieve", "--index", tmp_path / "bm25", "--queries", tmp_path / "topics.tsv",
                "--out", tmp_path / "run.trec") == 0  # fmt: skip
    assert [(r.query_id, r.doc_id) for r in read_run(tmp_path / "run.trec")] == [("x1", "d4")]


def test_dense_index_and_retrieve(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "dense"
    assert main("index", "--dense", "--model", tiny_model_dir, "--dataset", tiny_beir, "--out", out,
                "--pooling", "mean", "--normalize", "--device", "cpu") == 0  # fmt: skip
    retriever = DenseRetriever.load(out)
    assert retriever.encoder.config.pooling == "mean" and retriever.encoder.config.normalize
    assert len(retriever.index) == 6
    assert (
        main("retrieve", "--index", out, "--dataset", tiny_beir, "--k", "4", "--out", tmp_path / "run.trec")
        == 0
    )
    run = read_run(tmp_path / "run.trec")
    assert sorted({r.query_id for r in run}) == ["q1", "q2", "q3"] and len(run) == 12
    # The run is what the API gives: same model, same documents, same queries.
    expected = retriever.search({"q1": "cat on a mat"}, k=4)
    assert [r.doc_id for r in run if r.query_id == "q1"] == [r.doc_id for r in expected]


def test_encode_then_index_from_embeddings(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    assert main("encode", "--model", tiny_model_dir, "--dataset", tiny_beir, "--out", tmp_path / "emb",
                "--format", "npy", "--pooling", "cls") == 0  # fmt: skip
    store = EmbeddingStore.load(tmp_path / "emb")
    assert store.ids == ["d1", "d2", "d3", "d4", "d5", "d6"] and store.embeddings.shape == (6, 32)
    # --model is taken from the store's metadata
    assert main("index", "--dense", "--embeddings", tmp_path / "emb", "--out", tmp_path / "idx",
                "--index", "hnsw") == 0  # fmt: skip
    retriever = DenseRetriever.load(tmp_path / "idx")
    assert retriever.index.config.kind == "hnsw" and retriever.encoder.config.pooling == "cls"
    np.testing.assert_allclose(retriever.index.index.reconstruct(0), store.embeddings[0], atol=1e-6)


def test_unloadable_model_is_a_clean_cli_error(tiny_beir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "not-a-model").mkdir()
    code = main("index", "--dense", "--model", tmp_path / "not-a-model", "--dataset", tiny_beir,
                "--out", tmp_path / "x")  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot load model" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_cli_choices_match_the_configs() -> None:
    # The parser is built without importing torch / FAISS, so its choices are literals: keep them in sync.
    import argparse
    from typing import get_args

    from auxir.cli import index
    from auxir.retrieval.bm25 import BM25Method
    from auxir.retrieval.dense import Pooling
    from auxir.retrieval.faiss_index import IndexKind

    parser = argparse.ArgumentParser()
    index.add_parser(parser.add_subparsers())
    actions = {a.dest: a for a in parser._subparsers._group_actions[0].choices["index"]._actions}
    assert tuple(actions["method"].choices) == get_args(BM25Method)
    assert tuple(actions["index_kind"].choices) == get_args(IndexKind)
    assert tuple(actions["pooling"].choices) == get_args(Pooling)
