"""``irds:`` through the real ir_datasets library, over a tiny dataset registered from files in tmp."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from auxir.data import Doc, Qrel, Query, ScoredDoc
from auxir.data.dataset import load_dataset
from auxir.data.docstore import DocStore
from auxir.data.irds import irds_doc, irds_query

ir_datasets = pytest.importorskip("ir_datasets")
from ir_datasets.datasets.base import Dataset as IrdsDataset  # noqa: E402
from ir_datasets.formats import TrecQrels, TrecScoredDocs, TsvDocs, TsvQueries  # noqa: E402
from ir_datasets.util import LocalDownload  # noqa: E402


class TitledDoc(NamedTuple):
    doc_id: str
    title: str
    text: str
    url: str

    def default_text(self) -> str:
        return f"{self.title} {self.text}"


class TopicQuery(NamedTuple):  # shaped like ir_datasets' TrecQuery: no "text" field
    query_id: str
    title: str
    description: str

    def default_text(self) -> str:
        return self.title


@pytest.fixture(scope="module")
def tiny_ids(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("irds")
    (root / "docs.tsv").write_text(
        "d1\tFirst\talpha text\thttp://a\nd2\tSecond\tbeta text\thttp://b\nd3\t\tgamma\thttp://c\n"
    )
    (root / "queries.tsv").write_text("q1\talpha\nq2\tbeta\n")
    (root / "topics.tsv").write_text("q1\talpha\talpha things\n")
    (root / "qrels.txt").write_text("q1 0 d1 2\nq2 0 d2 1\nq2 0 d9 0\n")
    (root / "run.trec").write_text("q1 Q0 d1 1 2.5 bm25\nq1 Q0 d2 2 1.5 bm25\nq2 Q0 d2 1 0.5 bm25\n")
    defs = {0: "not relevant", 1: "relevant", 2: "highly relevant"}
    docs = TsvDocs(LocalDownload(root / "docs.tsv"), doc_cls=TitledDoc)
    train = IrdsDataset(
        docs,
        TsvQueries(LocalDownload(root / "queries.tsv")),
        TrecQrels(LocalDownload(root / "qrels.txt"), defs),
        TrecScoredDocs(LocalDownload(root / "run.trec")),
    )
    topics = IrdsDataset(docs, TsvQueries(LocalDownload(root / "topics.tsv"), query_cls=TopicQuery))
    ids = ("auxir-test/tiny/train", "auxir-test/tiny/topics")
    for name, dataset in zip(ids, (train, topics), strict=True):
        ir_datasets.registry.register(name, dataset)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IR_DATASETS_HOME", str(root / "home"))
        yield ids
    for name in ids:
        ir_datasets.registry._registered.pop(name, None)  # the registry has no public unregister


def test_irds_dataset_maps_records(tiny_ids: tuple[str, str]) -> None:
    ds = load_dataset(f"irds:{tiny_ids[0]}")
    assert ds.name == "irds:auxir-test/tiny/train"
    assert isinstance(ds.docs, DocStore)
    assert [d.doc_id for d in ds.docs] == ["d1", "d2", "d3"]
    assert len(ds.docs) == 3
    assert ds.docs["d1"] == Doc("d1", "alpha text", "First", {"url": "http://a"})
    assert ds.docs.get("nope") is None and "d2" in ds.docs and "nope" not in ds.docs
    assert [d.doc_id for d in ds.docs.get_many(["d3", "d1"])] == ["d3", "d1"]
    with pytest.raises(KeyError, match="'nope' is not in ir_datasets 'auxir-test/tiny/train'"):
        ds.docs["nope"]
    assert ds.queries == {"q1": Query("q1", "alpha"), "q2": Query("q2", "beta")}


def test_irds_split_is_named_after_the_id(
    tiny_ids: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    ds = load_dataset(f"irds:{tiny_ids[0]}")
    assert ds.splits == ["train"]
    assert ds.qrels("train") == [Qrel("q1", "d1", 2), Qrel("q2", "d2", 1), Qrel("q2", "d9", 0)]
    assert "1 lines name a doc id with no document (first: 'd9')" in caplog.text
    assert list(ds.queries_for("train")) == ["q1", "q2"]
    with pytest.raises(ValueError, match="available splits: train"):
        ds.qrels("test")


def test_irds_scoreddocs_become_a_run(tiny_ids: tuple[str, str]) -> None:
    ds = load_dataset(f"irds:{tiny_ids[0]}")
    assert list(ds.runs) == ["scoreddocs"]
    assert ds.runs["scoreddocs"].is_file()
    assert ds.run("scoreddocs") == [
        ScoredDoc("q1", "d1", 2.5),
        ScoredDoc("q1", "d2", 1.5),
        ScoredDoc("q2", "d2", 0.5),
    ]


def test_irds_without_qrels_or_text_field(tiny_ids: tuple[str, str]) -> None:
    ds = load_dataset(f"irds:{tiny_ids[1]}")
    assert ds.splits == [] and dict(ds.runs) == {}
    assert ds.queries["q1"] == Query("q1", "alpha", {"title": "alpha", "description": "alpha things"})


def test_record_mapping_of_body_field() -> None:
    class BodyDoc(NamedTuple):
        doc_id: str
        body: str
        marked_up: str

    assert irds_doc(BodyDoc("x", "b", "<b>")) == Doc("x", "b", "", {"marked_up": "<b>"})
    assert irds_query(TopicQuery("1", "t", "d")).text == "t"


def test_irds_store_returns_paths_under_the_auxir_cache(tiny_ids: tuple[str, str], auxir_cache: Path) -> None:
    path = load_dataset(f"irds:{tiny_ids[0]}").runs["scoreddocs"]
    assert auxir_cache in path.parents
