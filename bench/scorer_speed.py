"""Speed of the interaction scorers (CEDR-KNRM, PACRR, PARADE) against the CLS scorer, measured in one run.

Each scorer as its recipe configures it (src/auxir/recipes/<scorer>.yaml: MiniLM, 256-token pairs with a
32-token query; PARADE: passages of 225 tokens every 200, at most 16, 260 tokens a pair), on SciFact:

* training pairs/s: auxir's Trainer, groups of 1 positive + 7 corpus documents, 16 groups a step, listwise
  softmax with and without MQP (α 0.2), bf16, ``--steps`` steps after the same steps untimed (the batches
  are the same in both passes, so no batch shape is new when it is timed);
* reranking 1,000 candidates (one test query, the first 1,000 corpus documents): median of 7 timed runs.

The ratio to CLS in the same run is the result; absolute numbers depend on the GPU and what shares it.

    python bench/scorer_speed.py --data .device_carry/data/scifact --model .device_carry/minilm --out $OUT
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reranker_speed import timed, train_throughput  # noqa: E402

SCORERS = {  # name -> (scorer, scorer_params, max_length, bi_encoder), as in the recipes
    "cls": ("cls", {}, 256, "joint"),
    "cedr_knrm": ("cedr_knrm", {}, 256, "joint"),
    "pacrr": ("pacrr", {"query_length": 32, "k_max": 2, "filters": 32}, 256, "joint"),
    "parade": (
        "parade",
        {"aggregation": "transformer", "passage_length": 225, "stride": 200, "max_passages": 16},
        260,
        "none",
    ),
}


LABELS = {"cls": "CLS", "cedr_knrm": "CEDR-KNRM", "pacrr": "PACRR", "parade": "PARADE"}
MEASURES = {
    "train_pairs_per_s": "train pairs/s",
    "train_mqp_pairs_per_s": "+ MQP pairs/s",
    "rerank_ms": "rerank (ms)",
}


def report(paths: list) -> str:
    """Markdown table of several runs' results: per scorer and measure, each run's ratio to CLS in that run
    and (with several runs) their geometric mean; CLS's own row gives its absolute numbers."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    head = "| scorer | " + " | ".join(f"{m} × CLS" for m in MEASURES.values()) + " |"
    lines = [head, "|---|" + "---:|" * len(MEASURES)]
    for name, label in LABELS.items():
        if not all(name in r for r in runs):
            continue
        cells = []
        for key in MEASURES:
            if name == "cls":
                cells.append(
                    " / ".join(
                        f"{r['cls'][key]:.0f}" if key != "rerank_ms" else f"{r['cls'][key]:.1f}" for r in runs
                    )
                )
                continue
            ratios = [r[name][key] / r["cls"][key] for r in runs]
            text = " / ".join(f"{x:.2f}" for x in ratios)
            if len(ratios) > 1:
                text += f" (**{math.prod(ratios) ** (1 / len(ratios)):.2f}**)"
            cells.append(text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--report", nargs="+", metavar="JSON", help="only print the table of these results")
    parser.add_argument("--data")
    parser.add_argument("--model")
    parser.add_argument("--out")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--scorers", nargs="+", default=list(SCORERS))
    parser.add_argument("--docs", type=int, default=1000, help="candidates to rerank (fewer: a CPU check)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-groups", type=int, default=16, help="groups (1 + 7 documents) a step")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed training steps first (default: --steps, the timed steps' own batches: every batch shape "
        "is then seen once before it is timed; a 20-step warm-up left CLS timed first slower than CLS "
        "timed last by 26 %%)",
    )
    args = parser.parse_args()
    if args.report:
        print(report(args.report))
        return
    if not (args.data and args.model and args.out):
        parser.error("--data, --model and --out are required unless --report is given")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from auxir.data.dataset import load_dataset
    from auxir.data.records import ScoredDoc
    from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig
    from auxir.reranking import rerank, token_caches

    ds = load_dataset(args.data)
    query_id = next(iter(ds.queries_for("test")))
    doc_ids = list(ds.docs.ids())[: args.docs]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    run = [ScoredDoc(query_id, d, -i) for i, d in enumerate(doc_ids)]
    texts = {d: ds.docs[d].full_text() for d in doc_ids}
    query = {query_id: ds.queries[query_id].text}
    results = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "steps": args.steps,
        "candidates": len(doc_ids),
    }
    for name in args.scorers:
        scorer, params, max_length, bi_encoder = SCORERS[name]
        config = CrossEncoderConfig(
            scorer=scorer,
            scorer_params=params,
            max_length=max_length,
            max_query_length=32,
            bi_encoder=bi_encoder,
            token_head="tied",
        )
        row = {}
        for label, objectives in (
            ("train_pairs_per_s", {"listwise_softmax": 1.0}),
            ("train_mqp_pairs_per_s", {"listwise_softmax": 1.0, "mqp": 0.2}),
        ):
            row[label] = train_throughput(
                args.model,
                ds,
                objectives,
                args.steps,
                args.batch_groups,
                out / name / label,
                config,
                num_negatives=7,
                warmup=args.steps if args.warmup is None else args.warmup,
            )
        torch.manual_seed(0)
        model = CrossEncoder.from_pretrained(args.model, config).to(device).eval()
        caches = token_caches(model)
        rerank(model, run, query, texts.__getitem__, top_k=1000, caches=caches)  # tokenise once
        row["rerank_ms"] = timed(
            lambda m=model, c=caches: rerank(
                m, run, query, texts.__getitem__, top_k=1000, batch_size=128, caches=c
            ),
            args.repeats,
        )
        if model.passage_split is not None:  # PARADE: how many passages it encodes per document
            lengths = torch.tensor([len(caches[1][d]) for d in doc_ids])
            row["passages_per_doc"] = float(model.passage_split.count(lengths).float().mean())
        results[name] = row
        print(name, {k: round(v, 1) for k, v in row.items()}, flush=True)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    (out / "scorer_speed.json").write_text(json.dumps(results, indent=1))
    if "cls" in results:
        print("\n" + report([out / "scorer_speed.json"]))


if __name__ == "__main__":
    main()
