"""``auxir generate-queries``: doc2query-style expansions from a model trained with ``query_generation``.

auxir generate-queries --model outputs/gdmtl/best --dataset ../shared/data/scifact --out exp.jsonl --method sample --num 5
auxir index --dataset ../shared/data/scifact --expansions exp.jsonl --out idx/bm25-expanded
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate-queries", help="write queries generated for each document")
    parser.add_argument(
        "--model", required=True, help="a cross-encoder or seq2seq ranker trained with query_generation"
    )
    parser.add_argument("--dataset", required=True, help="BEIR directory or irds:<id>")
    parser.add_argument("--out", required=True, help='JSONL: {"_id": doc id, "queries": [...]} per line')
    parser.add_argument("--method", choices=["greedy", "beam", "sample"], default="sample")
    parser.add_argument("--num", type=int, default=5, help="queries per document (greedy: 1)")
    parser.add_argument("--max-length", type=int, default=32, help="query tokens")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=10, help="sample from the k likeliest tokens (0: all)")
    parser.add_argument("--prefix", action="store_true", help="'sum:' before the document, as in training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents")
    parser.add_argument("--batch-size", type=int, default=32, help="documents decoded together")
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when available)")
    parser.set_defaults(func=run)


def never_learnt_to_stop(model_dir: str) -> bool:
    """True when the folder's provenance shows a cross-encoder trained with ``query_generation`` without
    ``stop: true``: its token head was never taught the [SEP] that ends a query (GDMTL's eq. 5)."""
    from auxir import provenance

    recipe = (provenance.read(model_dir) or {}).get("recipe") or {}
    if recipe.get("family", "cross_encoder") != "cross_encoder":
        return False  # an encoder-decoder's labels end with its end token
    return any(
        o.get("name") == "query_generation" and not (o.get("params") or {}).get("stop", False)
        for o in recipe.get("objectives") or []
    )


def run(args: argparse.Namespace) -> int:
    import itertools
    import logging

    import torch
    from tqdm.auto import tqdm

    from auxir.data.dataset import load_dataset
    from auxir.generation import GenerationConfig, generate_queries, write_expansions
    from auxir.models.cross_encoder import CrossEncoder
    from auxir.models.seq2seq import Seq2SeqRanker, read_config

    config = GenerationConfig(
        method=args.method,
        num_queries=1 if args.method == "greedy" else args.num,
        max_length=args.max_length,
        beam_size=max(args.beam_size, args.num) if args.method == "beam" else args.beam_size,
        temperature=args.temperature,
        top_k=args.top_k,
        prefix=args.prefix,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    loader = Seq2SeqRanker if read_config(args.model) is not None else CrossEncoder  # auxir.json says which
    if loader is CrossEncoder and never_learnt_to_stop(args.model):
        logging.getLogger(__name__).warning(
            "%s was trained with query_generation without stop: true, so it never learnt where a query ends: "
            "every query will run to --max-length %d tokens (retrain with "
            "--set objectives.<i>.params.stop=true to fix)",
            args.model,
            args.max_length,
        )
    model = loader.from_pretrained(args.model).to(device)
    docs = list(itertools.islice(load_dataset(args.dataset).docs, args.limit))
    expansions = {}
    with tqdm(total=len(docs), desc="generate", unit="doc", disable=None) as bar:
        for first in range(0, len(docs), config.batch_size):
            chunk = docs[first : first + config.batch_size]
            queries = generate_queries(model, [doc.full_text() for doc in chunk], config)
            expansions.update((doc.doc_id, generated) for doc, generated in zip(chunk, queries, strict=True))
            bar.update(len(chunk))
    write_expansions(args.out, expansions)
    print(f"{len(expansions)} documents, {sum(map(len, expansions.values()))} queries -> {args.out}")
    return 0
