"""Damaged inputs give one line naming the file, the line, what was expected and what was found."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import auxir.cli
from auxir.data import DataFormatError
from auxir.data.beir import read_queries_jsonl
from auxir.data.docstore import JsonlDocStore
from auxir.data.trec import read_qrels
from auxir.evaluation.folds import load_folds

CORPUS = "".join(json.dumps({"_id": f"d{i}", "text": f"document number {i} " * 20}) + "\n" for i in range(50))


def cli(*argv: str | Path) -> int:
    return auxir.cli.main([str(a) for a in argv])


def beir_dir(root: Path, corpus: str) -> Path:
    root.mkdir()
    (root / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "cat"}\n', encoding="utf-8")
    return root


# -- damaged .gz ----------------------------------------------------------------------------------------
def truncated_gz(path: Path) -> Path:
    data = gzip.compress(CORPUS.encode("utf-8"))
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("use", ["iterate", "index"])
def test_truncated_gzip_corpus(tmp_path: Path, use: str) -> None:
    store = JsonlDocStore(truncated_gz(tmp_path / "corpus.jsonl.gz"), cache=tmp_path / "cache")
    with pytest.raises(DataFormatError) as info:
        list(store) if use == "iterate" else len(store)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'corpus.jsonl.gz'}, line ")
    assert "expected a complete gzip file, found the compressed data ending early (truncated?)" in message
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # no half-written decompressed copy is left


@pytest.mark.parametrize("use", ["iterate", "index"])
def test_a_plain_file_named_gz(tmp_path: Path, use: str) -> None:
    path = tmp_path / "corpus.jsonl.gz"
    path.write_text(CORPUS, encoding="utf-8")
    store = JsonlDocStore(path, cache=tmp_path / "cache")
    with pytest.raises(DataFormatError) as info:
        list(store) if use == "iterate" else len(store)
    assert str(info.value) == (
        f"{path}, line 1: expected gzip-compressed data (the name ends in .gz), "
        "found bytes that are not gzip (b'{\"')"
    )


def test_corrupt_gzip_qrels(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b"q1 0 d1 1\n" * 1000))
    data[20:40] = b"\xff" * 20  # damage the deflate stream
    path = tmp_path / "qrels.txt.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"qrels\.txt\.gz, line 1: expected valid gzip data, found "):
        read_qrels(path)


# -- duplicate and missing documents ----------------------------------------------------------------
def test_index_names_both_lines_of_a_duplicate_doc_id(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corpus = '{"_id": "d1", "text": "cat"}\n{"_id": "d2", "text": "dog"}\n\n{"_id": "d1", "text": "cow"}\n'
    root = beir_dir(tmp_path / "ds", corpus)
    assert cli("index", "--dataset", root, "--out", tmp_path / "idx") != 0
    err = capsys.readouterr().err.strip()
    assert err == (
        f"auxir index: error: {root / 'corpus.jsonl'}, line 4: expected unique doc ids, "
        "found 'd1' again (first on line 1)"
    )
    assert not (tmp_path / "idx").exists()


def test_index_of_an_empty_corpus_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = beir_dir(tmp_path / "ds", "\n")
    assert cli("index", "--dataset", root, "--out", tmp_path / "idx") != 0
    err = capsys.readouterr().err.strip()
    assert err == f"auxir index: error: {root / 'corpus.jsonl'}: expected at least one document, found none"


def test_empty_corpus_lookup_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"^{path}: expected at least one document, found none$"):
        len(JsonlDocStore(path, cache=tmp_path / "cache"))


# -- JSON wording ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "found"),
    [
        ('{"_id": "q1", "text": "a\tb"}', "found Invalid control character at column 25 near"),
        ('{"_id": "q1", "text": "ab', "found Unterminated string starting at column 23 near"),
        ('{"_id": "q1" "text": 1}', "found Expecting ',' delimiter at column 14 near"),
    ],
)
def test_json_errors_say_at_column_once(tmp_path: Path, line: str, found: str) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_text('{"_id": "q0", "text": "ok"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        read_queries_jsonl(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 2: expected a JSON object, {found}")
    assert "at at" not in message


def test_folds_json_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "folds.json"
    path.write_text('{"format": "auxir.folds/1",\n "folds": ["unterminated', encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_folds(path)
    assert str(info.value) == (
        f"{path}, line 2: expected JSON folds, found Unterminated string starting at column 12"
    )
