"""``auxir rerank``: rescore a run's top-k with a trained cross-encoder and write a new run.

The documents below the top-k follow the reranked ones in their first-stage order (so recall at depths past
k is kept); ``--drop-tail`` writes the top-k only.

auxir rerank --model outputs/sjtf/best --run bm25.trec --dataset ../shared/data/scifact --top-k 100 --out reranked.trec
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rerank", help="rerank a TREC run with a cross-encoder")
    parser.add_argument("--model", required=True, help="a checkpoint directory or a Hugging Face name")
    parser.add_argument("--run", required=True, help="the first-stage TREC run")
    parser.add_argument("--dataset", required=True, help="BEIR directory or irds:<id> holding the texts")
    parser.add_argument("--top-k", type=int, default=100, help="documents reranked per query")
    parser.add_argument(
        "--drop-tail",
        action="store_true",
        help="write only the reranked top-k (default: the rest follow, in first-stage order)",
    )
    parser.add_argument("--out", required=True, help="the new TREC run (written atomically)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    parser.add_argument("--tag", default="auxir-rerank")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from auxir.data.dataset import load_dataset
    from auxir.data.trec import read_run, write_run
    from auxir.reranking import rerank

    if args.top_k < 1:
        raise ValueError(f"--top-k must be ≥ 1, got {args.top_k}")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = _load_ranker(args.model)  # a wrong model fails before the data are read
    ds = load_dataset(args.dataset)
    run_rows = read_run(args.run)
    queries = ds.queries
    missing = sorted({s.query_id for s in run_rows} - set(queries))
    if missing:
        raise ValueError(f"{args.run}: {len(missing)} query ids not in {args.dataset}, e.g. {missing[:3]}")
    model = model.to(device)
    result = rerank(
        model,
        run_rows,
        lambda q: queries[q].text,
        lambda d: ds.docs[d].full_text(),
        top_k=args.top_k,
        batch_size=args.batch_size,
        device=device,
        keep_tail=not args.drop_tail,
        progress=True,
    )
    write_run(args.out, result.run, tag=args.tag)
    print(f"reranked {result.pairs} pairs in {result.seconds:.1f} s → {args.out}")
    return 0


def _load_ranker(path: str):
    """A cross-encoder, or a bi-encoder, aspect encoder or seq2seq ranker saved by auxir (its auxir.json says
    which); CODER models rerank from their stored embeddings inside ``auxir train`` and are refused here
    rather than misread."""
    import json
    from pathlib import Path

    marker = Path(path) / "auxir.json"
    kind = json.loads(marker.read_text(encoding="utf-8")).get("format") if marker.is_file() else None
    if kind == "auxir-bi-encoder":
        from auxir.models.bi_encoder import BiEncoder

        return BiEncoder.from_pretrained(path)
    if kind == "auxir-aspect-encoder":
        from auxir.models.aspect_encoder import AspectEncoder

        return AspectEncoder.from_pretrained(path)
    if kind == "auxir-seq2seq-ranker":
        from auxir.models.seq2seq import Seq2SeqRanker

        return Seq2SeqRanker.from_pretrained(path)
    if kind not in (None, "auxir-cross-encoder"):
        raise ValueError(
            f"{marker}: expected a cross-encoder, a bi-encoder, an aspect encoder or a seq2seq ranker, "
            f"found a {kind!r} model; a CODER model reranks from its stored document embeddings "
            "(auxir train with family coder)"
        )
    from auxir.models.cross_encoder import CrossEncoder

    return CrossEncoder.from_pretrained(path)
