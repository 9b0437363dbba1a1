"""``auxir index``: build a first-stage index of a dataset's documents.

auxir index --dataset ../shared/data/scifact --out idx/bm25                    # BM25 (Anserini defaults)
auxir index --dataset D --out idx/bm25 --k1 1.2 --b 0.75 --stemmer none
auxir index --dense --model sentence-transformers/all-MiniLM-L6-v2 --dataset D --out idx/minilm
auxir index --dense --model M --embeddings emb/ --out idx/hnsw --index hnsw   # from ``auxir encode`` output
"""

from __future__ import annotations

import argparse
import logging
import time

from auxir.cli.encode import add_encoder_arguments, encoder_config_from_args

logger = logging.getLogger(__name__)


def _optional_name(value: str) -> str | None:
    return None if value.lower() in ("none", "off", "") else value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index", help="build a BM25 or dense (FAISS) index of a dataset's documents"
    )
    parser.add_argument("--dataset", help="BEIR directory or irds:<id>")
    parser.add_argument("--out", required=True, help="index directory (replaced atomically)")
    parser.add_argument("--no-title", dest="use_title", action="store_false", help="index doc text only")
    parser.add_argument(
        "--expansions", help="append these generated queries to the documents (auxir generate-queries)"
    )

    bm25 = parser.add_argument_group("BM25 (default)")
    bm25.add_argument("--k1", type=float, default=0.9, help="default 0.9 (Anserini); Okapi/Lucene: 1.2")
    bm25.add_argument("--b", type=float, default=0.4, help="default 0.4 (Anserini); Okapi/Lucene: 0.75")
    bm25.add_argument(
        "--method", default="lucene", choices=["lucene", "robertson", "atire", "bm25l", "bm25+"]
    )
    bm25.add_argument("--stemmer", type=_optional_name, default="english", help="PyStemmer algorithm or none")
    bm25.add_argument("--stopwords", type=_optional_name, default="en", help="bm25s stop-word list or none")
    bm25.add_argument(
        "--token-pattern", default=r"(?u)\b\w\w+\b", help=r"token regex; (?u)\b\w+\b keeps 1-char tokens"
    )

    dense = parser.add_argument_group("dense")
    dense.add_argument("--dense", action="store_true", help="build a dense index (needs --model)")
    dense.add_argument("--embeddings", help="index this embedding store instead of encoding the dataset")
    dense.add_argument("--index", dest="index_kind", choices=["flat", "hnsw", "ivf"], default="flat")
    dense.add_argument("--hnsw-m", type=int, default=32)
    dense.add_argument("--ef-construction", type=int, default=200)
    dense.add_argument("--ef-search", type=int, default=128)
    dense.add_argument("--nlist", type=int, default=None, help="ivf cells; default 4*sqrt(n)")
    dense.add_argument("--nprobe", type=int, default=16)
    add_encoder_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    index = _build_dense(args) if args.dense else _build_bm25(args)
    index.save(args.out)
    logger.info("indexed %d documents in %.1f s -> %s", len(index), time.perf_counter() - start, args.out)
    return 0


def _build_bm25(args: argparse.Namespace):
    from auxir.retrieval.bm25 import BM25Config, BM25Index

    if not args.dataset:
        raise ValueError("--dataset is required")
    config = BM25Config(
        k1=args.k1,
        b=args.b,
        method=args.method,
        stemmer=args.stemmer,
        stopwords=args.stopwords,
        use_title=args.use_title,
        token_pattern=args.token_pattern,
    )
    return BM25Index.build(_docs(args), config, show_progress=True)


def _docs(args: argparse.Namespace):
    """The dataset's documents, with ``--expansions`` appended to their text."""
    from auxir.data.dataset import load_dataset

    docs = load_dataset(args.dataset).docs
    if not args.expansions:
        return docs
    from auxir.generation import expanded, read_expansions

    return list(expanded(docs, read_expansions(args.expansions)))


def _build_dense(args: argparse.Namespace):
    from auxir.retrieval.dense import DenseEncoder, EncoderConfig
    from auxir.retrieval.dense_retriever import DenseRetriever
    from auxir.retrieval.embeddings import EmbeddingStore
    from auxir.retrieval.faiss_index import DenseIndexConfig

    index_config = DenseIndexConfig(
        kind=args.index_kind,
        hnsw_m=args.hnsw_m,
        ef_construction=args.ef_construction,
        ef_search=args.ef_search,
        nlist=args.nlist,
        nprobe=args.nprobe,
    )
    if args.embeddings:
        store = EmbeddingStore.load(args.embeddings)
        saved = store.metadata.get("encoder")
        # The store knows which encoder made it: --model is needed only for stores written elsewhere.
        config = encoder_config_from_args(args) if args.model or not saved else EncoderConfig.from_dict(saved)
        return DenseRetriever.from_embeddings(store, DenseEncoder(config), index_config)
    encoder = DenseEncoder(encoder_config_from_args(args))
    if not args.dataset:
        raise ValueError("--dataset (or --embeddings) is required")
    docs = _docs(args)
    if not args.use_title:
        docs = (doc._replace(title="") for doc in docs)
    return DenseRetriever.build(docs, encoder, index_config, show_progress=True)
