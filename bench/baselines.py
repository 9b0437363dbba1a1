"""Reranker experiments as many small `auxir train` runs sharing one GPU, with per-query results kept.

A suite is a list of jobs (collection × variant × seed × fold), each a subprocess
``python -m auxir train --recipe R --set ...``; ``--jobs`` of them run at once (a MiniLM-L6 run leaves
most of an H100 idle), and none starts after ``--deadline`` seconds. Every finished run's summary and
per-query metrics (reranked, fused, first stage) go to ``<out>/results.json.gz``; a random shuffle of
each collection's BM25 top-100 (3 seeds) is evaluated too, as the floor a reranker must clear.
``bench/baselines_report.py`` turns that file into tables with t-tests.

    python bench/baselines.py --suite heads --data-root .device_carry/data --model .device_carry/minilm \
        --out $OUT/heads --jobs 6 --deadline 500
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

METRICS = ["nDCG@10", "RR@10", "nDCG@100"]

# collection -> how it is split; CV collections are trained on 5 folds of their judged queries.
COLLECTIONS = {
    "scifact": {"train_split": "train", "eval_split": "test"},
    "nfcorpus": {
        "train_split": "train",
        "eval_split": "dev",
        "extra": ["samples.max_positives_per_query=2", "training.epochs=3"],
    },
    "cranfield": {"cv": "test"},
    "vaswani": {"cv": "test"},
    # bench/wikiqa_passages.py's WikiQA: each question's own candidates, ordered by BM25, reranked
    "wikiqa-pages": {"train_split": "train", "eval_split": "test", "extra": ["data.first_stage=pool"]},
    "pubmedqa": {"train_split": "train", "eval_split": "test"},
    # FIRE 2017 legal (no train split): 5-fold CV; packed with --max-chars and a BM25 run over the full texts
    "fire2017-legal": {"cv": "test", "extra": ["data.first_stage=bm25-full"]},
}

# The recipe as it was before the baselines issue (monobert.yaml at 494ab7c): hinge over 4 negatives,
# lr 3e-5, 5 epochs, the checkpoint's untrained pooler kept.
OLD = [
    "objectives=[{name: pairwise_hinge, weight: 1.0, params: {margin: 1.0}}]",
    "samples.num_negatives=4",
    "training.learning_rate=3e-5",
    "training.epochs=5",
    "training.batch_size=16",
    "architecture.pooler=keep",
    "architecture.bi_encoder=none",
    "training.new_parameters_learning_rate=null",
    "training.early_stopping_patience=null",
]
# The best measured recipe, the starting point of the head comparison.
LISTWISE = [
    "objectives=[{name: listwise_softmax, weight: 1.0}]",
    "samples.num_negatives=15",
    "training.learning_rate=1e-4",
    "training.epochs=10",
    "training.batch_size=16",
]
HEADS = {
    "pooler_keep": LISTWISE + ["architecture.pooler=keep"],
    "pooler_identity": LISTWISE + ["architecture.pooler=identity"],
    "pooler_skip": LISTWISE + ["architecture.pooler=skip"],
    "skip_newlr": LISTWISE + ["architecture.pooler=skip", "training.new_parameters_learning_rate=1e-3"],
    "skip_bi_joint": LISTWISE + ["architecture.pooler=skip", "architecture.bi_encoder=joint"],
    "skip_bi_separate": LISTWISE + ["architecture.pooler=skip", "architecture.bi_encoder=separate"],
}


def sjtf_variants(base: list[str]) -> dict[str, list[str]]:
    """SJTF's auxiliary tasks on the tuned recipe, each with fixed α and with gradient-ratio balancing."""
    ranking = "{name: listwise_softmax, weight: 1.0}"
    out = {"tuned": base}
    for name, aux, alpha in (
        ("mqp_a0.05", "mqp", 0.05),
        ("mqp_a0.2", "mqp", 0.2),
        ("mpp_a0.2", "mpp", 0.2),
        ("mqp_all_a0.2", "mqp_all", 0.2),
    ):
        objectives = f"objectives=[{ranking}, {{name: {aux}, weight: {alpha}}}]"
        out[name] = base + [objectives]
        out[f"{name}_gr"] = base + [objectives, "weighting.strategy=grad_ratio"]
    return out


# The dense issue's runs: the bi-encoder (BM25 or its own zero-shot top 1000 as hard negatives), CODER
# (candidates from BM25 or the base model, N, loss, rerank or retrieve) and the tuned cross-encoder over a
# dense first stage. A variant is (recipe, overrides). ``biencoder_densenegs``'s first stage is the untrained
# MiniLM retrieving the whole corpus: its first-stage metrics are the zero-shot baseline.
DENSE = "data.first_stage=dense"
DENSE_SUITE = {
    "biencoder": ("biencoder", ["architecture.retrieve_k=1000"]),
    "biencoder_densenegs": ("biencoder", ["architecture.retrieve_k=1000", DENSE, "data.first_stage_k=1000"]),
    "coder_bm25_n1000": ("coder", []),
    "coder_dense_n1000": ("coder", [DENSE]),
    "coder_dense_n100": ("coder", [DENSE, "architecture.num_candidates=100"]),
    "coder_dense_n1000_pairwise": (
        "coder",
        [DENSE, "objectives=[{name: pairwise_max_margin, weight: 1.0}]"],
    ),
    "coder_dense_n1000_retrieve": ("coder", [DENSE, "architecture.evaluate=retrieve"]),
    "ce_dense": ("monobert", [DENSE, "objectives=[{name: listwise_softmax, weight: 1.0}]"]),
}
DENSE_METRICS = ["nDCG@10", "RR@10", "R@100", "R@1000"]
SUITE_METRICS = {  # retrievers: recall too; query by document: the QBD paper's P@5 and AP
    "dense": DENSE_METRICS,
    "madrm": ["nDCG@10", "RR@10", "R@100"],
    "qbd": ["nDCG@10", "P@5", "AP", "RR@10"],
}

# The interaction-scorer issue's runs. "scorers": CEDR-KNRM, PACRR and PARADE against the tuned CLS
# cross-encoder, each without and with MQP (NFCorpus train -> dev; Cranfield 5-fold CV). "qbd": query by
# document on FIRE 2017 (5-fold CV, whole cases as queries read as up to 4 passages): the ranking loss alone
# against ranking + doc_representation (qbd-multitask.yaml), and PARADE over the long prior cases against the
# CLS scorer's first passage (CLS-FirstP), both with the query cut to its first 256 tokens (PARADE: 8
# passages of 225 tokens, 8 groups a step, to fit beside the others on one GPU).
TUNED_CLS = ("monobert", ["objectives=[{name: listwise_softmax, weight: 1.0}]"])
SCORERS_SUITE = {
    c: {
        "cls": TUNED_CLS,
        "cls_mqp": ("sjtf-mqp", []),
        "cedr_knrm": ("cedr-knrm", []),
        "cedr_knrm_mqp": ("cedr-knrm-mqp", []),
        "pacrr": ("pacrr", []),
        "pacrr_mqp": ("pacrr-mqp", []),
        "parade": ("parade", []),
        "parade_mqp": ("parade-mqp", []),
    }
    for c in ("nfcorpus", "cranfield")
}
RANKING_ONLY_QBD = "objectives=[{name: pairwise_softmax, weight: 1.0}]"
QBD_SUITE = {
    "fire2017-legal": {
        "ranking_only": ("qbd-multitask", [RANKING_ONLY_QBD]),
        "qbd": ("qbd-multitask", []),
        # the nested search's other learning rate (bench/nested_select.py picks per fold on validation)
        "ranking_only_lr3e-5": ("qbd-multitask", [RANKING_ONLY_QBD, "training.learning_rate=3e-5"]),
        "qbd_lr3e-5": ("qbd-multitask", ["training.learning_rate=3e-5"]),
        # the options: each query passage pair's scores averaged instead of the best kept; cosine distance
        "qbd_mean": ("qbd-multitask", ["architecture.long_queries=mean"]),
        "qbd_cosine": (
            "qbd-multitask",
            [
                "objectives=[{name: pairwise_softmax, weight: 1.0}, {name: doc_representation, weight: 1.0,"
                " params: {distance: cosine, margin: 1.0, pooling: cls, negatives: all}}]"
            ],
        ),
        # PARADE reads the whole query in each passage pair, so both sides of this pair truncate the query
        "cls_firstp": ("qbd-multitask", [RANKING_ONLY_QBD, "architecture.long_queries=truncate"]),
        "parade": (
            "qbd-multitask",
            [
                RANKING_ONLY_QBD,
                "architecture.long_queries=truncate",
                "architecture.scorer=parade",
                "architecture.scorer_params={aggregation: transformer, passage_length: 225, stride: 200,"
                " max_passages: 8}",
                "architecture.bi_encoder=none",
                "training.batch_size=8",
            ],
        ),
    }
}

# The multi-aspect issue's runs (PubMedQA, MeSH aspects from src/auxir/data/aspects/pubmedqa_mesh.yaml): the
# baselines BiBERT, MtBERT (aspect heads on the one pooled vector) and MpBERT (multi-token pooling: the first
# tokens, no learned aspect queries), MADR without labels, MADRAL with each fusion network and each OTHER,
# and MADRAL after MLM + aspect pre-training (eq. 7). SciFact: BiBERT against the label-free MADR only.
MTBERT = [
    "architecture.labels={mapping: pubmedqa_mesh}",
    "objectives=[{name: in_batch_softmax, weight: 1.0, params: {hard_negatives: true}},"
    " {name: aspect_prediction, weight: 0.1, params: {sides: both}}]",
]
# weighted-sum and CLS-gating fusion have no presence head: MADRAL's losses without aspect_presence
NO_PRESENCE = (
    "objectives=[{name: in_batch_softmax, weight: 1.0, params: {hard_negatives: true}},"
    " {name: aspect_prediction, weight: 0.1, params: {sides: both}}]"
)
BIBERT_AS_MADR = [
    "samples.num_negatives=7",
    "training.batch_size=64",
    "training.learning_rate=4.0e-5",
    "training.epochs=7",
]
MADRM_SUITE = {
    "pubmedqa": {
        "bibert": ("bibert", []),
        "mtbert": ("bibert", MTBERT),
        "mpbert": ("madr", ["architecture.extraction=first_tokens", "architecture.other=cls"]),
        "madr": ("madr", []),
        "madr_other_cls": ("madr", ["architecture.other=cls"]),
        "madral": ("madral", []),
        "madral_weighted_sum": ("madral", ["architecture.fusion=weighted_sum", NO_PRESENCE]),
        "madral_cls_gating": ("madral", ["architecture.fusion=cls_gating", NO_PRESENCE]),
        "madral_other_cls": ("madral", ["architecture.other=cls"]),
        "madral_other_first": ("madral", ["architecture.other=first_tokens"]),
        "madral_pre": ("madral-pre", []),
    },
    "scifact": {"bibert": ("bibert", []), "madr": ("madr", [])},
    "nfcorpus": {
        "bibert": ("bibert", []),
        # BiBERT trained with madr.yaml's settings: separates MpBERT's NFCorpus gain into recipe and pooling
        "bibert_madr_settings": ("bibert", BIBERT_AS_MADR),
        "mpbert": ("madr", ["architecture.extraction=first_tokens", "architecture.other=cls"]),
        "madr": ("madr", []),
        "madr_other_cls": ("madr", ["architecture.other=cls"]),
    },
}

# The GDMTL issue's runs: the tuned cross-encoder (monobert.yaml) against the same recipe plus query
# generation (gdmtl.yaml) and plus answer generation (gdmtl-plus.yaml, PubMedQA's long answers). SciFact's
# and NFCorpus's tuned runs come from the SJTF and baselines suites (same recipe, same seeds).
GDMTL_ALL = {"gdmtl": ("gdmtl", [])}
# The encoder-decoder variants (Table 10), BERT2BERT warm-started from MiniLM: GDMTL_S / GDMTL_C and the same
# models trained for ranking alone (the paper's BART_S / BART_C rows).
RANK_ONLY = ["objectives=[{name: listwise_softmax, weight: 1.0}]", "weighting.strategy=fixed"]
GDMTL_SUITE = {
    "scifact": {
        **GDMTL_ALL,
        "gdmtl_s": ("gdmtl-s", []),
        "gdmtl_c": ("gdmtl-c", []),
        "rank_s": ("gdmtl-s", RANK_ONLY),
        "rank_c": ("gdmtl-c", RANK_ONLY),
    },
    "nfcorpus": GDMTL_ALL,
    "pubmedqa": {
        "tuned": ("monobert", ["objectives=[{name: listwise_softmax, weight: 1.0}]"]),
        **GDMTL_ALL,
        "gdmtl_plus": ("gdmtl-plus", []),
    },
    # WikiQA: the answer (the question's first correct sentence) decoded from its page ⊕ the question
    "wikiqa-pages": {
        "tuned": ("monobert", ["objectives=[{name: listwise_softmax, weight: 1.0}]"]),
        **GDMTL_ALL,
        "gdmtl_plus": (
            "gdmtl-plus",
            ["objectives.2.params.field=answer", "objectives.2.params.passage_field=page"],
        ),
    },
}


@dataclass
class Job:
    collection: str
    variant: str
    seed: int
    fold: int | None
    overrides: list[str]
    recipe: str = "monobert"
    out: str = ""
    status: str = "pending"
    seconds: float = 0.0
    error: str = ""
    metrics: dict = field(default_factory=dict)
    retries: int = 0  # restarts after running out of GPU memory


# How a run that ran out of GPU memory fails: torch's allocator (torch.OutOfMemoryError), a CUDA call that
# allocates outside it (torch.AcceleratorError), or creating a cuBLAS handle when the card is already full.
OUT_OF_GPU_MEMORY = ("CUDA out of memory", "CUDA error: out of memory", "CUBLAS_STATUS_ALLOC_FAILED")


def make_jobs(args, folds_dir: Path) -> list[Job]:
    tuned = ["objectives=[{name: listwise_softmax, weight: 1.0}]"]  # monobert.yaml holds the tuned rest
    suites = {
        "heads": {"scifact": HEADS},
        "baselines": {c: {"tuned": tuned, "old": OLD} for c in args.collections},
        "sjtf": {c: sjtf_variants(tuned) for c in args.collections},
        "dense": {c: DENSE_SUITE for c in args.collections},
        "gdmtl": GDMTL_SUITE,
        "madrm": MADRM_SUITE,
        "scorers": SCORERS_SUITE,
        "qbd": QBD_SUITE,
    }
    jobs = []
    for collection, variants in suites[args.suite].items():
        if collection not in args.collections:
            continue
        spec = COLLECTIONS[collection]
        folds = (args.folds or range(5)) if "cv" in spec else [None]
        seeds = args.cv_seeds if "cv" in spec else args.seeds
        for variant, overrides in variants.items():
            if args.variants and variant not in args.variants:
                continue
            recipe, overrides = overrides if isinstance(overrides, tuple) else ("monobert", overrides)
            recipe = args.recipe_files.get(recipe, recipe)  # e.g. a search's best.yaml in its place
            if variant == "ce_dense" and collection != "scifact":  # the question is asked of SciFact only
                continue
            # The reranker suites' per-collection settings (e.g. NFCorpus's 3 epochs) were chosen for the
            # cross-encoder; the dense and MADRM suites keep only the sampling ones.
            extra = spec.get("extra", [])
            if args.suite in ("dense", "madrm") and recipe != "monobert":
                extra = [e for e in extra if e.startswith("samples.")]
            for seed in seeds:
                for fold in folds:
                    split = (
                        [
                            f"data.folds={folds_dir / collection}.json",
                            f"data.fold={fold}",
                            f"data.eval_split={spec['cv']}",
                        ]
                        if "cv" in spec
                        else [
                            f"data.train_split={spec['train_split']}",
                            f"data.eval_split={spec['eval_split']}",
                        ]
                    )
                    jobs.append(
                        Job(
                            collection,
                            variant,
                            seed,
                            fold,
                            split + extra + overrides + args.set,
                            recipe=recipe,
                        )
                    )
    return jobs


def run_job(job: Job, args, deadline: float) -> Job:
    if time.time() > deadline:
        job.status = "skipped (deadline)"
        return job
    out = (
        Path(args.out)
        / job.collection
        / job.variant
        / f"seed{job.seed}"
        / (f"fold{job.fold}" if job.fold is not None else "")
    )
    job.out = str(out)
    command = [
        sys.executable,
        "-m",
        "auxir",
        "train",
        "--recipe",
        job.recipe,
        "--dataset",
        f"{args.data_root}/{job.collection}",
        "--model",
        args.model,
        "--seed",
        str(job.seed),
        "--output-dir",
        str(out),
        "--set",
        "training.progress=false",
        "--set",
        "training.log_every=50",
        "--set",
        "training.keep_best=true",
        "--set",
        f"evaluation.metrics=[{', '.join(METRICS)}]",
    ]
    for item in job.overrides:
        command += ["--set", item]
    started = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "false"}
    while True:
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=env,
                timeout=max(30, args.hard_deadline - (time.time() - args.t0)),
            )
        except subprocess.TimeoutExpired:
            job.status = "killed (deadline)"
            break
        job.status = "done" if done.returncode == 0 else "failed"
        if not done.returncode:
            break
        job.error = done.stderr[-2000:]
        # Runs sharing a GPU all reach their peak memory at once when they start together: a run that
        # ran out of memory starts again (from scratch) a little later, while no new job may start yet.
        if (
            any(message in done.stderr for message in OUT_OF_GPU_MEMORY)
            and job.retries < args.oom_retries
            and time.time() + args.oom_wait < deadline
        ):
            job.retries += 1
            print(
                f"{job.collection} {job.variant} seed {job.seed} fold {job.fold}: out of GPU memory, "
                f"again in {args.oom_wait:.0f}s (retry {job.retries} of {args.oom_retries})",
                flush=True,
            )
            time.sleep(args.oom_wait)
            shutil.rmtree(out, ignore_errors=True)
            continue
        print(
            f"{job.collection} {job.variant} seed {job.seed} fold {job.fold} failed:\n{done.stderr[-1500:]}",
            flush=True,
        )
        break
    job.seconds = time.time() - started
    if job.status == "done":
        job.metrics = json.loads((out / "metrics.json").read_text())
        for heavy in ("best", "model", "checkpoint-last"):
            subprocess.run(["rm", "-rf", str(out / heavy)])
    print(
        f"[{time.time() - args.t0:5.0f}s] {job.collection} {job.variant} seed {job.seed} fold {job.fold}: {job.status} "
        f"({job.seconds:.0f}s) {json.dumps(job.metrics.get('reranked', {}))}",
        flush=True,
    )
    return job


def per_query(job: Job) -> dict:
    from auxir.data.dataset import load_dataset
    from auxir.data.trec import read_run
    from auxir.evaluation.metrics import evaluate

    out = Path(job.out)
    recipe = json.loads((out / "recipe.json").read_text())
    ds = load_dataset(recipe["data"]["dataset"])
    qrels = ds.qrels(recipe["data"]["eval_split"])
    test = {s.query_id for s in read_run(out / "reranked.trec")}
    result = {}
    for kind, name in (
        ("reranked", "reranked.trec"),
        ("fused", "fused.trec"),
        ("first_stage", "first_stage.trec"),
    ):
        if (out / name).exists():
            run = [s for s in read_run(out / name) if s.query_id in test]
            result[kind] = evaluate(run, qrels, METRICS).per_query
    return result


def shuffled_first_stage(jobs: list[Job]) -> dict:
    """nDCG etc. of BM25's top-100 in random order (3 seeds), per collection, over the tested queries."""
    from auxir.data.dataset import load_dataset
    from auxir.data.records import ScoredDoc
    from auxir.data.trec import group_by_query, read_run
    from auxir.evaluation.metrics import evaluate

    out = {}
    for collection in sorted({j.collection for j in jobs if j.status == "done"}):
        done = [j for j in jobs if j.collection == collection and j.status == "done"]
        first_seed = min(j.seed for j in done)
        runs = []
        for job in done:
            if job.seed != first_seed or job.variant != done[0].variant:
                continue
            test = {s.query_id for s in read_run(Path(job.out) / "reranked.trec")}
            runs += [s for s in read_run(Path(job.out) / "first_stage.trec") if s.query_id in test]
        if not runs:
            continue
        recipe = json.loads((Path(done[0].out) / "recipe.json").read_text())
        qrels = load_dataset(recipe["data"]["dataset"]).qrels(recipe["data"]["eval_split"])
        out[collection] = {}
        for seed in range(3):
            rng = random.Random(seed)
            shuffled = []
            for qid, ranked in group_by_query(runs).items():
                top = ranked[:100]
                rng.shuffle(top)
                shuffled += [ScoredDoc(qid, s.doc_id, float(len(top) - i)) for i, s in enumerate(top)]
            out[collection][seed] = evaluate(shuffled, qrels, METRICS).per_query
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--suite",
        choices=["heads", "baselines", "sjtf", "dense", "gdmtl", "madrm", "scorers", "qbd"],
        required=True,
    )
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--collections", nargs="+", default=["scifact", "nfcorpus", "cranfield", "vaswani"])
    parser.add_argument("--variants", nargs="*", default=None, help="only these variants")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--cv-seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--folds", nargs="+", type=int, default=None, help="only these CV folds (0-4)")
    parser.add_argument(
        "--set", nargs="*", action="extend", default=[], help="overrides for every job (repeatable)"
    )
    parser.add_argument(
        "--recipe-file",
        nargs="*",
        default=[],
        metavar="NAME=PATH",
        help="run recipe NAME's variants from PATH instead (e.g. bibert=/tmp/tune-bibert/best.yaml)",
    )
    parser.add_argument("--metrics", nargs="+", default=None, help="instead of the suite's metrics")
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument(
        "--oom-retries", type=int, default=2, help="restarts of a run that ran out of GPU memory"
    )
    parser.add_argument("--oom-wait", type=float, default=30, help="seconds before such a restart")
    parser.add_argument("--deadline", type=float, default=480, help="seconds after which no job starts")
    parser.add_argument(
        "--hard-deadline", type=float, default=570, help="seconds after which running jobs are killed"
    )
    args = parser.parse_args()
    args.t0 = time.time()
    if any("=" not in item for item in args.recipe_file):
        parser.error(f"--recipe-file takes NAME=PATH, found {args.recipe_file}")
    args.recipe_files = dict(item.split("=", 1) for item in args.recipe_file)
    global METRICS
    METRICS = args.metrics or SUITE_METRICS.get(args.suite, METRICS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from auxir.data.dataset import load_dataset
    from auxir.evaluation.folds import make_folds, save_folds

    folds_dir = out / "folds"
    for collection in args.collections:
        if "cv" in COLLECTIONS[collection]:
            ds = load_dataset(f"{args.data_root}/{collection}")
            split = COLLECTIONS[collection]["cv"]
            folds = make_folds(sorted(ds.queries_for(split)), k=5, seed=0)
            save_folds(folds_dir / f"{collection}.json", folds, {"dataset": collection, "split": split})
    jobs = make_jobs(args, folds_dir)
    print(f"{len(jobs)} jobs, {args.jobs} at a time", flush=True)
    # The reference variant first, then the longest collections, so the deadline cuts the cheap jobs.
    longest = ["fire2017-legal", "nfcorpus", "scifact", "wikiqa-pages", "vaswani", "cranfield", "pubmedqa"]
    order = sorted(
        jobs,
        key=lambda j: (
            j.seed,  # every variant's first seed before any second seed
            j.variant not in ("tuned", "pooler_skip", "biencoder_densenegs", "bibert", "cls", "ranking_only"),
            longest.index(j.collection) if j.collection in longest else len(longest),
        ),
    )
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda j: run_job(j, args, args.t0 + args.deadline), order))
    records = []
    for job in jobs:
        record = asdict(job)
        if job.status == "done":
            record["per_query"] = per_query(job)
        records.append(record)
    try:
        shuffled = shuffled_first_stage(jobs)
    except Exception as error:  # the runs above matter more than this floor
        print(f"shuffled first stage failed: {error!r}", flush=True)
        shuffled = {}
    summary = {"suite": args.suite, "metrics": METRICS, "jobs": records, "shuffled": shuffled}
    with gzip.open(out / "results.json.gz", "wt") as f:
        json.dump(summary, f)

    print(
        f"\n| collection | variant | runs | valid | {' | '.join(METRICS)} | fused nDCG@10 | first stage nDCG@10 |"
    )
    print("|---|---|---|---|" + "---|" * (len(METRICS) + 2))
    groups: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.collection, job.variant), []).append(job)
    for (collection, variant), members in groups.items():
        done = [j for j in members if j.status == "done"]
        if not done:
            print(
                f"| {collection} | {variant} | 0/{len(members)} | | {' | '.join('' for _ in METRICS)} | | |"
            )
            continue

        def mean(values):
            values = [v for v in values if v is not None]
            return sum(values) / len(values) if values else float("nan")

        cells = [mean(j.metrics["reranked"][m] for j in done) for m in METRICS]
        fused = mean((j.metrics.get("fused") or {}).get("nDCG@10") for j in done)
        print(
            f"| {collection} | {variant} | {len(done)}/{len(members)} | {mean(j.metrics['best_valid'] for j in done):.4f} | "
            + " | ".join(f"{c:.4f}" for c in cells)
            + f" | {fused:.4f} | {mean(j.metrics['first_stage']['nDCG@10'] for j in done):.4f} |"
        )


if __name__ == "__main__":
    main()
