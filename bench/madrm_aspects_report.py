"""Aspect Accuracy@1 and AUC of the madrm suite's runs, beside a majority-value floor.

Reads the ``family_facts.aspects`` that every madrm run writes into metrics.json (test queries and their
judged documents; ``bench/baselines.py --suite madrm`` keeps them in its results file) and prints, per
variant, the mean over seeds of each aspect's Accuracy@1 and per-text AUC on the document side and the
query side. The floor is the share of the same labelled test texts whose gold values include the aspect's
most frequent value among the training queries and the corpus (what always predicting that value scores).

    python bench/madrm_aspects_report.py docs/results/madrm/madrm.json.gz docs/results/madrm/madrm2.json.gz \
        --dataset ../shared/data/pubmedqa
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from baselines_report import load, merge  # noqa: E402

from auxir.data.aspects import AspectLabeler, AspectLabelsConfig  # noqa: E402
from auxir.data.dataset import load_dataset  # noqa: E402


def majority_floor(dataset: str, mapping: str) -> dict[str, dict[str, float]]:
    """side -> aspect -> accuracy of always predicting the most frequent training/corpus value."""
    ds = load_dataset(dataset)
    labeler = AspectLabeler(AspectLabelsConfig(mapping=mapping))
    train = {q.query_id for q in ds.qrels("train")}
    test = ds.qrels("test")
    counts: dict[str, Counter] = defaultdict(Counter)
    for doc in ds.docs:
        for aspect, values in labeler.labels(doc.metadata).items():
            counts[aspect].update(values)
    for qid in train:
        for aspect, values in labeler.labels(ds.queries[qid].metadata).items():
            counts[aspect].update(values)
    top = {aspect: c.most_common(1)[0][0] for aspect, c in counts.items()}
    texts = {
        "query": [ds.queries[q.query_id].metadata for q in test],
        "document": [
            d.metadata for d in ds.docs.get_many(sorted({q.doc_id for q in test if q.relevance > 0}))
        ],
    }
    out: dict[str, dict[str, float]] = {}
    for side, metadatas in texts.items():
        hits: dict[str, list[bool]] = defaultdict(list)
        for metadata in metadatas:
            for aspect, values in labeler.labels(metadata).items():
                if values:
                    hits[aspect].append(top[aspect] in values)
        out[side] = {a: statistics.fmean(h) for a, h in hits.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", nargs="+")
    parser.add_argument(
        "--dataset", required=True, help="the collection the runs were scored on (for the floor)"
    )
    parser.add_argument("--mapping", default="pubmedqa_mesh")
    parser.add_argument("--collection", default="pubmedqa")
    args = parser.parse_args()
    data = merge([load(p) for p in args.results])
    facts: dict[str, list[dict]] = defaultdict(list)
    for job in data["jobs"]:
        aspects = (job.get("metrics") or {}).get("family_facts", {}).get("aspects")
        if job["status"] == "done" and job["collection"] == args.collection and aspects:
            facts[job["variant"]].append(aspects)
    floor = majority_floor(args.dataset, args.mapping)
    for side in ("document", "query"):
        names = sorted(floor[side])
        print(f"\n### {side} side: Accuracy@1 (AUC), mean over seeds\n")
        print("| variant | seeds | " + " | ".join(names) + " |")
        print("|---|---:|" + "---:|" * len(names))
        print("| majority value (floor) | | " + " | ".join(f"{floor[side][a]:.3f}" for a in names) + " |")
        for variant, runs in sorted(facts.items()):
            cells = []
            for a in names:
                acc = [r[side]["accuracy@1"].get(a) for r in runs if r.get(side, {}).get("accuracy@1")]
                auc = [r[side]["auc"].get(a) for r in runs if r.get(side, {}).get("auc")]
                acc, auc = [x for x in acc if x is not None], [x for x in auc if x is not None]
                cells.append(f"{statistics.fmean(acc):.3f} ({statistics.fmean(auc):.3f})" if acc else "—")
            print(f"| {variant} | {len(runs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
