from __future__ import annotations

import gzip
import json
import logging
import os
import pickle
from pathlib import Path

import pytest

from auxir.data import DataFormatError, Doc
from auxir.data.docstore import DocStore, JsonlDocStore

DOCS = [
    {"_id": "d2", "title": "Second", "text": "beta text", "metadata": {"year": 2020}},
    {"_id": "d1", "title": "", "text": "alpha text", "url": "http://x"},
    {"_id": "d3", "text": "gamma \u00e9t\u00e9"},
]


def write_corpus(path: Path, records: list[dict], gz: bool = False) -> Path:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def test_lookup_iteration_and_protocol(tmp_path: Path) -> None:
    store = JsonlDocStore(write_corpus(tmp_path / "corpus.jsonl", DOCS), cache=tmp_path / "cache")
    assert isinstance(store, DocStore)
    assert [d.doc_id for d in store] == ["d2", "d1", "d3"]  # file order, not sorted
    assert len(store) == 3
    assert store["d2"] == Doc("d2", "beta text", "Second", {"year": 2020})
    assert store["d1"].metadata == {"url": "http://x"}  # extra keys are kept in metadata
    assert store["d3"] == Doc("d3", "gamma \u00e9t\u00e9", "", {})
    assert "d1" in store and "zz" not in store
    assert store.get("zz") is None and store.get("d3") == store["d3"]
    assert [d.doc_id for d in store.get_many(["d3", "d2", "d3"])] == ["d3", "d2", "d3"]


def test_unknown_id_names_id_and_file(tmp_path: Path) -> None:
    path = write_corpus(tmp_path / "corpus.jsonl", DOCS)
    store = JsonlDocStore(path, cache=tmp_path / "cache")
    with pytest.raises(KeyError, match=f"'nope' is not in {path}"):
        store["nope"]
    with pytest.raises(KeyError, match="'nope'"):
        store.get_many(["d1", "nope"])


def test_gzip_corpus_is_decompressed_once_into_the_cache(tmp_path: Path) -> None:
    path = write_corpus(tmp_path / "corpus.jsonl.gz", DOCS, gz=True)
    cache = tmp_path / "cache"
    store = JsonlDocStore(path, cache=cache)
    assert [d.doc_id for d in store] == ["d2", "d1", "d3"]
    assert store["d3"].text == "gamma \u00e9t\u00e9"
    plain = list(cache.rglob("corpus.jsonl"))
    assert len(plain) == 1 and plain[0].read_bytes() == gzip.decompress(path.read_bytes())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cache",
        "corpus.jsonl.gz",
    ]  # nothing beside the data


def test_index_is_reused_from_cache_and_invalidated_on_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_corpus(tmp_path / "corpus.jsonl", DOCS)
    cache = tmp_path / "cache"
    assert len(JsonlDocStore(path, cache=cache)) == 3

    def no_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("index should come from the cache")

    with monkeypatch.context() as patch:
        patch.setattr(JsonlDocStore, "_scan", no_scan)
        assert JsonlDocStore(path, cache=cache)["d1"].text == "alpha text"

    write_corpus(path, [*DOCS, {"_id": "d4", "text": "delta"}])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    store = JsonlDocStore(path, cache=cache)
    assert len(store) == 4 and store["d4"].text == "delta"


def test_unwritable_cache_still_works(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    store = JsonlDocStore(write_corpus(tmp_path / "corpus.jsonl", DOCS), cache=blocker)
    with caplog.at_level(logging.WARNING):
        assert store["d2"].title == "Second"
    assert "could not cache the doc index" in caplog.text


def test_pickles_for_dataloader_workers(tmp_path: Path) -> None:
    store = JsonlDocStore(write_corpus(tmp_path / "corpus.jsonl", DOCS), cache=tmp_path / "cache")
    assert store["d1"].doc_id == "d1"  # opens the descriptor
    clone = pickle.loads(pickle.dumps(store))
    assert clone["d2"] == store["d2"] and len(clone) == 3


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "a", "text": "x"}\n\n{"_id": "b", "text": "y"}\n', encoding="utf-8")
    store = JsonlDocStore(path, cache=tmp_path / "cache")
    assert [d.doc_id for d in store] == ["a", "b"] and store["b"].text == "y" and store["a"].text == "x"


# -- bad input: one test per case -----------------------------------------------------------------------
def bad_corpus(tmp_path: Path, lines: list[bytes]) -> JsonlDocStore:
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return JsonlDocStore(path, cache=tmp_path / "cache")


def test_malformed_json_line(tmp_path: Path) -> None:
    store = bad_corpus(tmp_path, [b'{"_id": "a", "text": "x"}', b'{"_id": "b", "text": "y"'])
    with pytest.raises(
        DataFormatError, match=r"corpus.jsonl, line 2: expected a JSON object, found Expecting ',' delimiter"
    ):
        len(store)


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"line 1: expected a JSON object, found list"):
        len(bad_corpus(tmp_path, [b'["a", "x"]']))


def test_missing_id_field(tmp_path: Path) -> None:
    store = bad_corpus(tmp_path, [b'{"_id": "a", "text": "x"}', b'{"id": "b", "text": "y"}'])
    with pytest.raises(DataFormatError) as info:
        len(store)
    assert info.value.line == 2
    assert info.value.expected == 'fields "_id" and "text"'
    assert info.value.found == "no '_id' (keys: ['id', 'text'])"


def test_missing_text_field(tmp_path: Path) -> None:
    with pytest.raises(
        DataFormatError, match=r"line 1: expected fields \"_id\" and \"text\", found no 'text'"
    ):
        len(bad_corpus(tmp_path, [b'{"_id": "a", "title": "only a title"}']))


def test_non_string_text(tmp_path: Path) -> None:
    with pytest.raises(
        DataFormatError, match=r"line 1: expected a string \"text\" for doc 'a', found NoneType"
    ):
        len(bad_corpus(tmp_path, [b'{"_id": "a", "text": null}']))


def test_duplicate_doc_id(tmp_path: Path) -> None:
    store = bad_corpus(
        tmp_path, [b'{"_id": "a", "text": "x"}', b'{"_id": "b", "text": "y"}', b'{"_id": "a", "text": "z"}']
    )
    with pytest.raises(
        DataFormatError, match=r"line 3: expected unique doc ids, found 'a' again \(first on line 1\)"
    ):
        store["b"]


def test_invalid_utf8_in_corpus(tmp_path: Path) -> None:
    store = bad_corpus(tmp_path, [b'{"_id": "a", "text": "x"}', b'{"_id": "b", "text": "caf\xe9"}'])
    with pytest.raises(DataFormatError, match=r"line 2: expected UTF-8 text, found invalid byte 0xe9"):
        list(store)


def test_empty_text_is_kept_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = bad_corpus(
        tmp_path,
        [
            b'{"_id": "a", "title": "", "text": ""}',
            b'{"_id": "b", "title": "Title only", "text": ""}',  # fine: a title is content
            b'{"_id": "c", "text": "  "}',
            b'{"_id": "d", "text": "x"}',
        ],
    )
    with caplog.at_level(logging.WARNING, logger="auxir.data.docstore"):
        assert len(store) == 4
    assert store["a"].text == "" and store["b"].title == "Title only"
    assert store.empty_doc_ids == ["a", "c"]
    assert "2 documents have neither text nor title; kept (first ids: a, c)" in caplog.text


def test_missing_corpus_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="corpus.jsonl: corpus file not found"):
        JsonlDocStore(tmp_path / "corpus.jsonl")
