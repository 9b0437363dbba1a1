"""Reranker speed next to the sentence-transformers anchors of DESIGN.md, measured in one run.

* training throughput: auxir's Trainer on SciFact training groups (1 positive + 1 corpus document as
  negative), sequences truncated to 128 tokens, bf16, pairwise hinge with and without MQP; pairs/s of
  a run of ``--steps`` steps after a 20-step warm-up run;
* reranking 1,000 candidates of 128 tokens: auxir ``rerank`` vs sentence-transformers
  ``CrossEncoder.predict`` on the same saved checkpoint, vs a plain bf16 forward of the backbone.

    python bench/reranker_speed.py --data .device_carry/data/scifact --model .device_carry/minilm --out $OUT
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

ANCHORS_MINILM = {  # DESIGN.md, H200, bf16, 128 tokens
    "st_trainer_pairs_per_s": 2358,
    "plain_train_pairs_per_s": 7905,
    "st_predict_1000_ms": 205,
    "plain_forward_1000_ms": 17,
    "flop_limit_1000_ms": 3.6,
}


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats=7):
    fn()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def train_throughput(
    model_path, ds, objectives, steps, batch_groups, out, config=None, num_negatives=1, warmup=20
):
    """Training pairs/s of ``steps`` steps after a ``warmup``-step warm-up; ``config``: the cross-encoder's
    (default: the CLS scorer, 128 tokens), groups of 1 positive + ``num_negatives`` corpus documents."""
    from auxir.data.collate import GroupCollator
    from auxir.data.group_source import GroupBatchSource
    from auxir.data.samples import SampleConfig, TrainGroup, TrainingSamples
    from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig
    from auxir.objectives import build_objective
    from auxir.reranking import token_caches
    from auxir.training.config import TrainingConfig
    from auxir.training.trainer import Trainer
    from auxir.training.weighting import ComponentSchedule

    torch.manual_seed(0)
    config = config or CrossEncoderConfig(max_length=128, max_query_length=32)
    model = CrossEncoder.from_pretrained(model_path, config)
    qrels = ds.qrels("train")
    doc_ids = list(ds.docs.ids())
    groups = [
        TrainGroup(q.query_id, q.doc_id, 1, doc_ids[i * 7 % len(doc_ids) : i * 7 % len(doc_ids) + 8])
        for i, q in enumerate(qrels)
    ]
    samples = TrainingSamples(groups)
    queries, docs = token_caches(model)
    queries.add((g.query_id for g in groups), lambda q: ds.queries[q].text)
    docs.add({d for g in groups for d in [g.positive_id, *g.negative_pool]}, lambda d: ds.docs[d].full_text())
    source = GroupBatchSource(
        samples,
        SampleConfig(num_negatives=num_negatives),
        GroupCollator(queries, docs, model.template.pad_id),
        batch_groups,
    )
    objs = {n: build_objective(n) for n in objectives}
    sched = {n: ComponentSchedule(w) for n, w in objectives.items()}

    def run(n_steps, directory):
        cfg = TrainingConfig(
            output_dir=str(directory),
            max_steps=n_steps,
            progress=False,
            log_every=10**6,
            save_every=10**6,
            learning_rate=1e-5,
        )
        return Trainer(model, objs, sched, source, cfg).train()

    run(warmup, out / "warm")  # warm-up: cuBLAS handles, autotuning, allocator
    result = run(steps, out / "timed")
    return result.pairs_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from auxir.data.dataset import load_dataset
    from auxir.data.records import ScoredDoc
    from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig
    from auxir.reranking import rerank

    ds = load_dataset(args.data)
    results = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    for batch in (32, 128):
        for name, objectives in (
            ("hinge", {"pairwise_hinge": 1.0}),
            ("hinge+mqp", {"pairwise_hinge": 1.0, "mqp": 0.2}),
        ):
            key = f"train_{name}_b{batch * 2}"
            results[key] = train_throughput(args.model, ds, objectives, args.steps, batch, out / key)
            print(key, f"{results[key]:.0f} pairs/s", flush=True)

    # Reranking 1,000 candidates of 128 tokens with one query.
    torch.manual_seed(0)
    model = (
        CrossEncoder.from_pretrained(args.model, CrossEncoderConfig(max_length=128, max_query_length=32))
        .cuda()
        .eval()
    )
    model.save_pretrained(out / "ce")
    query_id = next(iter(ds.queries_for("test")))
    doc_ids = list(ds.docs.ids())[:1000]
    run = [ScoredDoc(query_id, d, -i) for i, d in enumerate(doc_ids)]
    texts = {d: ds.docs[d].full_text() for d in doc_ids}
    qtext = ds.queries[query_id].text
    for bs in (128, 1000):
        results[f"auxir_rerank_1000_ms_b{bs}"] = timed(
            lambda bs=bs: rerank(model, run, {query_id: qtext}, texts.__getitem__, top_k=1000, batch_size=bs)
        )
    from auxir.reranking import token_caches

    caches = token_caches(model)
    rerank(model, run, {query_id: qtext}, texts.__getitem__, top_k=1000, caches=caches)
    results["auxir_rerank_1000_ms_pretokenised_b1000"] = timed(
        lambda: rerank(
            model, run, {query_id: qtext}, texts.__getitem__, top_k=1000, batch_size=1000, caches=caches
        )
    )
    enc = model.tokenizer(
        [qtext] * 1000,
        [texts[d] for d in doc_ids],
        truncation=True,
        max_length=128,
        padding="max_length",
        return_tensors="pt",
    ).to("cuda")

    def plain():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            model.backbone(**enc)

    results["plain_forward_1000_ms"] = timed(plain)
    try:
        from sentence_transformers import CrossEncoder as STCrossEncoder

        st = STCrossEncoder(
            str(out / "ce"), max_length=128, device="cuda", model_kwargs={"torch_dtype": torch.bfloat16}
        )
        pairs = [(qtext, texts[d]) for d in doc_ids]
        for bs in (32, 128):
            results[f"st_predict_1000_ms_b{bs}"] = timed(
                lambda bs=bs: st.predict(pairs, batch_size=bs, show_progress_bar=False)
            )
    except Exception as error:  # report, don't hide
        results["st_error"] = repr(error)
    results["anchors_minilm_h200"] = ANCHORS_MINILM
    (out / "reranker_speed.json").write_text(json.dumps(results, indent=1))
    for k, v in results.items():
        if not isinstance(v, dict):
            print(f"{k:45s} {v if isinstance(v, str) else f'{v:.1f}'}")


if __name__ == "__main__":
    main()
