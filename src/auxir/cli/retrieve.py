"""``auxir retrieve``: run queries against a saved index (BM25 or dense) and write a TREC run.

auxir retrieve --index idx/bm25 --dataset ../shared/data/scifact --split test --k 1000 --out run.trec
auxir retrieve --index idx/minilm --queries topics.tsv --k 100 --out run.trec

With --dataset, the index must have been built from that dataset's documents (the fingerprint in its
manifest is checked); queries from a --queries file cannot be checked.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from auxir.data.records import Query

if TYPE_CHECKING:
    from auxir.data.dataset import Dataset

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("retrieve", help="retrieve the top-k documents per query into a TREC run")
    parser.add_argument("--index", required=True, help="directory written by 'auxir index'")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="BEIR directory or irds:<id>: its queries (of --split, if given)")
    source.add_argument(
        "--queries", help="queries file: BEIR queries.jsonl, 'qid<TAB>text' TSV or TREC topics"
    )
    parser.add_argument("--split", default=None, help="with --dataset: only the queries judged in this split")
    parser.add_argument("--field", default="title", help="TREC topics: the field used as query text")
    parser.add_argument("--k", type=int, default=1000, help="documents per query")
    parser.add_argument("--out", required=True, help="TREC run file (written atomically)")
    parser.add_argument("--tag", default=None, help="run tag (default: auxir-<index kind>)")
    parser.add_argument("--device", default=None, help="dense: where the query encoder runs (default: saved)")
    parser.set_defaults(func=run)


def read_queries(args: argparse.Namespace, dataset: Dataset | None = None) -> dict[str, Query]:
    """The queries named on the command line: a dataset's (one split's) or a file's.

    ``dataset`` is ``--dataset`` already opened (it is opened here otherwise)."""
    if args.queries:
        if args.split:
            raise ValueError("--split applies to --dataset, not to --queries")
        if Path(args.queries).suffix == ".jsonl":
            from auxir.data.beir import read_queries_jsonl

            return read_queries_jsonl(args.queries)
        from auxir.data.trec import read_topics

        return read_topics(args.queries, field=args.field)
    if dataset is None:
        from auxir.data.dataset import load_dataset

        dataset = load_dataset(args.dataset)
    return dataset.queries_for(args.split) if args.split else dataset.queries


def run(args: argparse.Namespace) -> int:
    from auxir.data.trec import write_run
    from auxir.retrieval.index_files import read_manifest
    from auxir.retrieval.retriever import check_corpus, load_retriever

    kind = read_manifest(args.index)["kind"]
    dataset = None
    if args.dataset:
        from auxir.data.dataset import load_dataset

        dataset = load_dataset(args.dataset)
        check_corpus(args.index, dataset.docs, args.dataset)
    queries = read_queries(args, dataset)
    if not queries:
        raise ValueError(f"no queries to retrieve for (dataset {args.dataset}, split {args.split})")
    retriever = load_retriever(args.index, device=args.device)
    start = time.perf_counter()
    scored = retriever.search(queries, k=args.k, show_progress=True)
    seconds = time.perf_counter() - start
    write_run(args.out, scored, tag=args.tag or f"auxir-{kind}")
    logger.info(
        "%d queries in %.2f s (%.1f ms/query), %d rows -> %s",
        len(queries),
        seconds,
        1000 * seconds / len(queries),
        len(scored),
        args.out,
    )
    return 0
