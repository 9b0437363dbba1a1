"""WikiQA for GDMTL+ (answer generation): a derived BEIR folder in which each question knows its page.

WikiQA (``../shared/data/wikiqa``) is answer-sentence selection: a question's candidates are the sentences
of one Wikipedia summary paragraph, and the correct ones are its answers. Answer generation done literally
(source = the positive document ⊕ the query) would decode the answer from the answer itself. Here each
question carries, in its metadata,

* ``answer``: its first correct sentence (by position on the page), the target of ``answer_generation``;
* ``page``: all its candidate sentences in page order, the passage the answer is decoded from
  (``answer_generation``'s ``passage_field: page``), as GDMTL+ decodes an answer from a passage;

and ranking stays the WikiQA task: rerank the question's own candidates (``runs/pool.trec``: each
question's candidates ordered by BM25 over the whole corpus, so the first stage is a real one and fusion
has a score to use; a candidate sharing no term with the question scores 0). Questions without a correct
sentence are left out, as the usual WikiQA protocol scores only answerable questions (train 873, test 243).
WikiQA has no dev split: validation queries are drawn from train by ``data.valid_fraction``.

    python bench/wikiqa_passages.py --src ../shared/data/wikiqa --out .device_carry_ce/data/wikiqa-pages

The output is derived from third-party data: write it to an ignored folder, never commit it.
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import defaultdict
from pathlib import Path

from auxir.data.dataset import load_dataset
from auxir.data.records import ScoredDoc
from auxir.data.trec import write_run
from auxir.retrieval.bm25 import BM25Index


def page_position(doc_id: str) -> int:
    """A WikiQA sentence id ends with its position on the page: ``D<page>-<position>``."""
    head, _, tail = doc_id.rpartition("-")
    if not head or not tail.isdigit():
        raise ValueError(f"WikiQA sentence id {doc_id!r}: expected <page>-<position>, e.g. D1-0")
    return int(tail)


def build(src: Path, out: Path) -> dict[str, int]:
    ds = load_dataset(str(src))
    pools: dict[str, dict[str, int]] = defaultdict(dict)
    split_of: dict[str, str] = {}
    for split in ("train", "test"):
        for qrel in ds.qrels(split):
            pools[qrel.query_id][qrel.doc_id] = qrel.relevance
            split_of[qrel.query_id] = split
    answerable = {q: pool for q, pool in pools.items() if any(r > 0 for r in pool.values())}
    queries = {}
    for query_id, pool in answerable.items():
        ordered = sorted(pool, key=page_position)
        answer = next(d for d in ordered if pool[d] > 0)
        query = ds.queries[query_id]
        queries[query_id] = {
            "_id": query_id,
            "text": query.text,
            "metadata": {
                **query.metadata,
                "answer": ds.docs[answer].text,
                "page": " ".join(ds.docs[d].text for d in ordered),
            },
        }
    index = BM25Index.build(ds.docs)
    scores: dict[tuple[str, str], float] = {}
    for scored in index.search({q: r["text"] for q, r in queries.items()}, k=len(index)):
        if scored.doc_id in answerable[scored.query_id]:
            scores[scored.query_id, scored.doc_id] = scored.score

    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    used = sorted({d for pool in answerable.values() for d in pool})
    with gzip.open(out / "corpus.jsonl.gz", "wt", encoding="utf-8") as f:
        for doc_id in used:
            doc = ds.docs[doc_id]
            f.write(json.dumps({"_id": doc_id, "title": doc.title, "text": doc.text}) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for query_id in sorted(queries):
            f.write(json.dumps(queries[query_id]) + "\n")
    for split in ("train", "test"):
        with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for query_id in sorted(q for q in answerable if split_of[q] == split):
                for doc_id in sorted(answerable[query_id]):
                    f.write(f"{query_id}\t{doc_id}\t{answerable[query_id][doc_id]}\n")
    pool_run = [  # scores to 4 decimals, as the 2026-12-07 runs read them
        ScoredDoc(query_id, doc_id, round(scores.get((query_id, doc_id), 0.0), 4))
        for query_id in sorted(answerable)
        for doc_id in answerable[query_id]
    ]
    write_run(out / "runs" / "pool.trec", pool_run, tag="bm25-pool")
    counts = {split: sum(1 for q in answerable if split_of[q] == split) for split in ("train", "test")}
    counts["documents"] = len(used)
    (out / "README.md").write_text(
        "Derived from ../shared/data/wikiqa by bench/wikiqa_passages.py (auxir): answerable questions only, "
        "metadata.answer = first correct sentence, metadata.page = the candidate sentences in page order, "
        f"runs/pool.trec = each question's candidates by BM25. Counts: {json.dumps(counts)}. "
        "Licence: as the source (Microsoft Research WikiQA data licence, research use). Do not commit.\n",
        encoding="utf-8",
    )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--src", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/wikiqa"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(build(args.src, args.out)))


if __name__ == "__main__":
    main()
