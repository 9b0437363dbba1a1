"""An index records which documents it was built from, and ``auxir retrieve --dataset`` checks them."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest

import auxir.cli
from auxir.data.records import Doc
from auxir.data.trec import read_run
from auxir.retrieval.bm25 import BM25Index
from auxir.retrieval.index_files import MANIFEST_NAME, corpus_fingerprint
from auxir.retrieval.retriever import check_corpus


def main(*argv: str | Path) -> int:
    return auxir.cli.main([str(a) for a in argv])


def manifest(directory: Path) -> dict:
    return json.loads((directory / MANIFEST_NAME).read_text())


def other_collection(tiny_beir: Path, tmp_path: Path, corpus_lines: list[str]) -> Path:
    """tiny_beir with another corpus.jsonl (same queries and qrels)."""
    other = tmp_path / "other-beir"
    shutil.copytree(tiny_beir, other)
    (other / "corpus.jsonl").write_text("".join(line + "\n" for line in corpus_lines), encoding="utf-8")
    return other


def test_fingerprint_is_count_and_hash_of_sorted_ids() -> None:
    expected = hashlib.sha256(b"a\nb\nc\n").hexdigest()
    assert corpus_fingerprint(["c", "a", "b"]) == {"num_docs": 3, "doc_ids_sha256": expected}
    assert corpus_fingerprint(["a", "b"]) != corpus_fingerprint(["a", "c"])


def test_bm25_manifest_records_the_corpus(docs: list[Doc], tmp_path: Path) -> None:
    BM25Index.build(docs).save(tmp_path / "bm25")
    assert manifest(tmp_path / "bm25")["corpus"] == corpus_fingerprint(d.doc_id for d in docs)


def test_retrieve_refuses_another_collections_index(tiny_beir: Path, tmp_path: Path, capsys) -> None:
    main("index", "--dataset", tiny_beir, "--out", tmp_path / "bm25")
    lines = (tiny_beir / "corpus.jsonl").read_text().splitlines()
    fewer = other_collection(tiny_beir, tmp_path / "fewer", lines[:-1])
    args = ["retrieve", "--index", tmp_path / "bm25", "--out", tmp_path / "run.trec"]
    assert main(*args, "--dataset", fewer) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path / 'bm25'}: expected an index built from the documents of {fewer}" in error
    assert f"the index holds 6 documents, {fewer} 5" in error
    # Same number of documents, one id different: the hash tells them apart.
    renamed = other_collection(
        tiny_beir, tmp_path / "renamed", [*lines[:-1], lines[-1].replace('"d6"', '"d7"')]
    )
    assert main(*args, "--dataset", renamed) == 2
    assert "both hold 6 documents, but with different ids" in capsys.readouterr().err
    assert not (tmp_path / "run.trec").exists()
    # The right collection, and a queries file (which cannot be checked), are served.
    assert main(*args, "--dataset", tiny_beir) == 0
    assert main(*args, "--queries", fewer / "queries.jsonl") == 0


def test_dense_index_is_checked_too(tiny_beir: Path, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "dense"
    assert main("index", "--dense", "--model", tiny_model_dir, "--dataset", tiny_beir, "--out", out,
                "--device", "cpu") == 0  # fmt: skip
    assert manifest(out)["corpus"] == corpus_fingerprint(f"d{i}" for i in range(1, 7))
    lines = (tiny_beir / "corpus.jsonl").read_text().splitlines()
    fewer = other_collection(tiny_beir, tmp_path, lines[:-1])
    assert main("retrieve", "--index", out, "--dataset", fewer, "--out", tmp_path / "run.trec") == 2
    assert "the index holds 6 documents" in capsys.readouterr().err


def test_index_without_fingerprint_loads_with_a_warning(tiny_beir: Path, tmp_path: Path, caplog) -> None:
    main("index", "--dataset", tiny_beir, "--out", tmp_path / "bm25")
    old = manifest(tmp_path / "bm25")
    del old["corpus"]  # as written before manifests had one
    (tmp_path / "bm25" / MANIFEST_NAME).write_text(json.dumps(old))
    with caplog.at_level(logging.WARNING, logger="auxir.retrieval.retriever"):
        assert main("retrieve", "--index", tmp_path / "bm25", "--dataset", tiny_beir,
                    "--out", tmp_path / "run.trec") == 0  # fmt: skip
    assert "records no fingerprint of its corpus" in caplog.text
    assert {r.query_id for r in read_run(tmp_path / "run.trec")} == {"q1", "q2", "q3"}


def test_check_corpus_accepts_the_same_ids_in_another_order(docs: list[Doc], tmp_path: Path) -> None:
    BM25Index.build(docs).save(tmp_path / "bm25")
    check_corpus(tmp_path / "bm25", list(reversed(docs)), "reversed")
    with pytest.raises(ValueError, match="the index holds 6 documents, first-two 2"):
        check_corpus(tmp_path / "bm25", docs[:2], "first-two")
