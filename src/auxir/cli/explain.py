"""``auxir explain``: a multi-aspect model's aspect predictions, presence and fusion weights for a query and a
document, and their score (MADRM's Table 8), as a table, as JSON, or as a plot.

    auxir explain outputs/madral/best --query "breville juicer" --doc "Juicing with the Breville ..." --plot ex.png
    auxir explain outputs/madral/best --query-id 12345 --doc-id ctx-1571683 --dataset ../shared/data/pubmedqa --json

With ids the texts (and their own aspect labels, shown as ``gold``) come from ``--dataset``.
"""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="aspect predictions, presence and fusion weights of a madrm model for a query and a document",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="a model folder saved by the madrm family")
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument("--query", help="the query text")
    query.add_argument("--query-id", help="a query of --dataset")
    doc = parser.add_mutually_exclusive_group(required=True)
    doc.add_argument("--doc", help="the document text")
    doc.add_argument("--doc-id", help="a document of --dataset")
    parser.add_argument("--dataset", help="BEIR directory or irds:<id> holding --query-id / --doc-id")
    parser.add_argument(
        "--top", type=int, default=3, metavar="K", help="predicted values per aspect (default 3)"
    )
    parser.add_argument("--plot", metavar="PNG", help="also write a bar chart of the fusion weights")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from auxir.explain import explain, load_aspect_encoder, plot_explanation

    if args.top < 1:
        raise ValueError(f"--top must be >= 1, found {args.top}")
    if (args.query_id or args.doc_id) and not args.dataset:
        raise ValueError("--query-id and --doc-id read their texts from --dataset, which is missing")
    model = load_aspect_encoder(args.model_dir)  # a wrong folder fails before any data is read
    query, doc, query_metadata, doc_metadata = args.query, args.doc, None, None
    if args.dataset:
        from auxir.data.dataset import load_dataset

        ds = load_dataset(args.dataset)
        if args.query_id is not None:
            if args.query_id not in ds.queries:
                raise ValueError(
                    f"--query-id {args.query_id!r}: not a query of {args.dataset} ({len(ds.queries)} queries)"
                )
            record = ds.queries[args.query_id]
            query, query_metadata = record.text, record.metadata
        if args.doc_id is not None:
            if args.doc_id not in ds.docs:
                raise ValueError(
                    f"--doc-id {args.doc_id!r}: not a document of {args.dataset} ({len(ds.docs)} documents)"
                )
            record = ds.docs[args.doc_id]
            doc, doc_metadata = record.full_text(), record.metadata
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    explanation = explain(
        model.to(device),
        query,
        doc,
        top_k=args.top,
        query_metadata=query_metadata,
        doc_metadata=doc_metadata,
        model_name=str(args.model_dir),
    )
    print(
        json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False)
        if args.json
        else explanation.to_text()
    )
    if args.plot:
        path = plot_explanation(explanation, args.plot)
        log.info("plot: %s", path)
    return 0
