"""``auxir encode``: document (or query) embeddings into an :class:`~auxir.retrieval.embeddings.EmbeddingStore`.

    auxir encode --model sentence-transformers/all-MiniLM-L6-v2 --dataset ../shared/data/scifact --out emb/
    auxir encode --model M --dataset D --target queries --split test --out qemb/ --format npy

The encoder flags here are shared with ``auxir index --dense``.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auxir.retrieval.dense import EncoderConfig

logger = logging.getLogger(__name__)


def add_encoder_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of :class:`~auxir.retrieval.dense.EncoderConfig`; unset ones come from the model's own config."""
    group = parser.add_argument_group(
        "encoder (unset options: from the model's sentence-transformers config)"
    )
    group.add_argument("--model", help="Hugging Face name or local path of the encoder")
    group.add_argument(
        "--pooling", choices=["cls", "mean"], default=None, help="default: from the model, else cls"
    )
    group.add_argument(
        "--normalize", action=argparse.BooleanOptionalAction, default=None, help="L2-normalise vectors"
    )
    group.add_argument(
        "--max-length", type=int, default=None, help="tokens per text; default: from the model"
    )
    group.add_argument("--batch-size", type=int, default=32)
    group.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    group.add_argument("--no-bf16", dest="bf16", action="store_false", help="keep float32 on CUDA")
    group.add_argument("--query-prefix", default="", help='prepended to queries, e.g. "query: "')
    group.add_argument("--doc-prefix", default="", help='prepended to documents, e.g. "passage: "')


def encoder_config_from_args(args: argparse.Namespace) -> EncoderConfig:
    """An :class:`EncoderConfig` from the flags of :func:`add_encoder_arguments` (torch is imported here, not at start)."""
    from auxir.retrieval.dense import EncoderConfig

    if not args.model:
        raise ValueError("--model is required for a dense encoder")
    return EncoderConfig(
        model=args.model,
        pooling=args.pooling,
        normalize=args.normalize,
        max_length=args.max_length,
        batch_size=args.batch_size,
        device=args.device,
        bf16=args.bf16,
        query_prefix=args.query_prefix,
        doc_prefix=args.doc_prefix,
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("encode", help="encode documents or queries into an embedding store")
    parser.add_argument("--dataset", required=True, help="BEIR directory or irds:<id>")
    parser.add_argument("--out", required=True, help="output directory (replaced atomically)")
    parser.add_argument("--target", choices=["docs", "queries"], default="docs")
    parser.add_argument("--split", default=None, help="queries: only those judged in this split")
    parser.add_argument("--format", choices=["safetensors", "npy"], default="safetensors")
    parser.add_argument("--no-title", dest="use_title", action="store_false", help="encode doc text only")
    add_encoder_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auxir.data.dataset import load_dataset
    from auxir.retrieval.dense import DenseEncoder
    from auxir.retrieval.embeddings import EmbeddingStore

    encoder = DenseEncoder(encoder_config_from_args(args))
    dataset = load_dataset(args.dataset)
    start = time.perf_counter()
    if args.target == "docs":
        store = encoder.encode_docs(dataset.docs, use_title=args.use_title, show_progress=True)
    else:
        queries = dataset.queries_for(args.split) if args.split else dataset.queries
        vectors = encoder.encode_queries([q.text for q in queries.values()], show_progress=True)
        store = EmbeddingStore(list(queries), vectors, metadata={"encoder": encoder.config.to_dict()})
    seconds = time.perf_counter() - start
    store.save(args.out, format=args.format)
    logger.info(
        "%d %s encoded in %.1f s (%.1f/s) -> %s",
        len(store),
        args.target,
        seconds,
        len(store) / max(seconds, 1e-9),
        args.out,
    )
    return 0
