"""Pins counts, first and last records of the real collections in ../shared/data (counts from their READMEs)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from auxir.data import DataFormatError, Qrel, ScoredDoc
from auxir.data.dataset import load_dataset
from auxir.data.docstore import JsonlDocStore
from auxir.data.trec import group_by_query, read_run, write_run

pytestmark = pytest.mark.realdata

# name: (documents, queries, {split: (qrels lines, judged queries)}, qrels lines whose doc has no text)
COUNTS = {
    "cisi": (1460, 112, {"test": (3114, 76)}, {}),
    "cranfield": (1400, 225, {"test": (1837, 225)}, {}),
    "fire2017-legal": (2000, 200, {"test": (1000, 200)}, {}),
    "nfcorpus": (3395, 2919, {"dev": (14589, 325), "train": (139350, 2594)}, {"train": 555}),
    "pubmedqa": (1000, 1000, {"test": (500, 500), "train": (500, 500)}, {}),
    "scifact": (5183, 1109, {"test": (339, 300), "train": (919, 809)}, {}),
    "trec-dl-2019": (14581, 43, {"test": (9260, 43)}, {"test": 4923}),
    "vaswani": (11429, 93, {"test": (2083, 93)}, {}),
    "wikiqa": (24075, 2751, {"test": (6165, 633), "train": (20360, 2118)}, {}),
}


def dataset_dir(shared_data: Path, name: str) -> Path:
    path = shared_data / name
    if not path.is_dir():
        pytest.skip(f"{path} not available")
    return path


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_counts_match_the_readme(shared_data: Path, name: str, caplog: pytest.LogCaptureFixture) -> None:
    n_docs, n_queries, splits, unresolved = COUNTS[name]
    ds = load_dataset(dataset_dir(shared_data, name))
    assert len(ds.docs) == n_docs
    assert len(ds.queries) == n_queries
    assert ds.splits == sorted(splits)
    for split, (n_lines, n_judged) in splits.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="auxir.data.dataset"):
            assert len(ds.qrels(split)) == n_lines
        if split in unresolved:
            assert f"{unresolved[split]} lines name a doc id with no document" in caplog.text
        else:
            assert "no document" not in caplog.text and "no query" not in caplog.text
        assert len(ds.queries_for(split)) == n_judged


def test_scifact_first_and_last_records(shared_data: Path) -> None:
    ds = load_dataset(dataset_dir(shared_data, "scifact"))
    ids = ds.docs.ids()
    assert (ids[0], ids[-1]) == ("4983", "198309074")
    first = next(iter(ds.docs))
    assert first == ds.docs["4983"]
    assert first.title.startswith("Microstructural development of human newborn cerebral white matter")
    assert first.text.startswith("Alterations of the architecture of cerebral white matter")
    assert "sentences" in first.metadata
    assert ds.docs["198309074"].title.startswith("Adhesion molecules and chemokines")
    queries = list(ds.queries.values())
    assert (queries[0].query_id, queries[0].text) == (
        "0",
        "0-dimensional biomaterials lack inductive properties.",
    )
    assert queries[0].metadata["cited_doc_ids"] == ["31715818"]
    assert (queries[-1].query_id, queries[-1].text) == ("1407", "\u03b21/Ketel is able to bind microtubules.")
    test, train = ds.qrels("test"), ds.qrels("train")
    assert (test[0], test[-1]) == (Qrel("1", "31715818", 1), Qrel("1395", "17717391", 1))
    assert (train[0], train[-1]) == (Qrel("0", "31715818", 1), Qrel("1407", "29863668", 1))


def test_trec_dl_2019_runs(shared_data: Path, tmp_path: Path) -> None:
    ds = load_dataset(dataset_dir(shared_data, "trec-dl-2019"))
    assert sorted(ds.runs) == [
        "BM25.test",
        "BM25_RM3.test",
        "D_BERT_KD_TASB.test",
        "OPEN_AI_ADA2.test",
        "REP_LLAMA.test",
        "SPLADE_P_P_ENSEMBLE_DISTIL.test",
    ]
    bm25 = ds.run("BM25.test")
    assert len(bm25) == 4300
    assert bm25[0] == ScoredDoc("264014", "5611210", 15.780599594116211)
    assert bm25[-1] == ScoredDoc("1106007", "6255354", 6.47769021987915)
    groups = group_by_query(bm25)
    assert len(groups) == 43 and all(len(items) == 100 for items in groups.values())
    assert ds.docs["5611210"].text  # every BM25 hit has text (README)
    # Rewriting keeps every line and the per-query order by score.
    write_run(tmp_path / "bm25.trec", bm25, tag="BM25")
    again = read_run(tmp_path / "bm25.trec")
    assert sorted(again) == sorted(bm25)
    assert group_by_query(again) == groups


def test_trec_dl_2019_strict_mode_raises(shared_data: Path) -> None:
    ds = load_dataset(dataset_dir(shared_data, "trec-dl-2019"), strict=True)
    with pytest.raises(
        DataFormatError, match=r"4923 lines name a doc id with no document \(first: '109063'\)"
    ):
        ds.qrels("test")
    with pytest.raises(DataFormatError, match=r"31794 lines name a doc id with no document"):
        ds.run("REP_LLAMA.test")


def test_fire2017_gzip_corpus(shared_data: Path, tmp_path: Path) -> None:
    root = dataset_dir(shared_data, "fire2017-legal")
    store = JsonlDocStore(root / "corpus.jsonl.gz", cache=tmp_path)
    assert len(store) == 2000
    ids = store.ids()
    assert (ids[0], ids[-1]) == ("prior_case_0001", "prior_case_2000")
    assert store["prior_case_0001"].text.startswith("551; AIR 1996 SC 463; 1995 (6) SCC 315")
    assert store["prior_case_2000"].text.startswith("[1990] INSC 374; AIR 1991 SC 378")
    assert len(store["prior_case_0002"].text) > 400_000  # the long one, read by offset
    assert store.empty_doc_ids[:5] == [
        "prior_case_0230",
        "prior_case_0614",
        "prior_case_0827",
        "prior_case_1039",
        "prior_case_1236",
    ]
    assert len(store.empty_doc_ids) == 6 and store["prior_case_1789"].text == ""
    assert not (root / "corpus.jsonl").exists()  # decompressed into the cache, not beside the data
    assert list(tmp_path.rglob("corpus.jsonl"))
