"""CODER reranking latency: 1,000 candidates a query scored from stored embeddings, beside the paper's anchor.

CODER (Zerveas et al., EMNLP 2022, §4.3) reports ~5.5 ms per query to rerank 1,000 candidates in batches of
32 queries on a TITAN RTX, "out of which less than 10 ms [a batch] refer to computing representations and
scores, with the rest being batching and loading samples to the GPU". Measured here, per batch size:

* ``scores`` — query vectors given: gather the (B, N, D) candidate embeddings from the store on the device,
  eq. 2 scores, sort (query encoding excluded);
* ``encode+scores`` — query token ids on the device: the query encoder, then the above;
* ``text+encode+scores`` — from query text: tokenisation and the copy to the device included.

Median of ``--repeats`` timings after ``--warmup`` runs; on CUDA each timing is CUDA events around the work
(and ``torch.cuda.synchronize``), bf16 autocast for the encoder. Runs on CPU too (a smoke test). By default
the model is a random BERT of all-MiniLM-L6-v2's shape (``--tiny``: 2 layers, 32 wide) and the store random
float16 vectors; ``--model PATH`` times a real model (e.g. the MiniLM directory).

    python bench/coder_latency.py --model .device_carry/minilm --out $OUT/coder_latency.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

PAPER_MS_PER_QUERY = 5.5  # §4.3: 1,000 candidates, batch 32, TITAN RTX, loading included
PAPER_COMPUTE_MS_PER_BATCH = 10.0  # §4.3: "less than 10 ms" of a batch of 32 is representations and scores
WORDS = (
    "cat dog bank tree gene drug sea star money loan forest cell cancer protein blood ocean planet".split()
)


def random_encoder(directory: Path, tiny: bool) -> Path:
    """A random BertModel (MiniLM-L6's shape, or a tiny one) with a word-level vocabulary, saved to ``directory``."""
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(directory / "vocab.txt"), model_max_length=512).save_pretrained(directory)
    shape = (
        {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37}
        if tiny
        else {
            "hidden_size": 384,
            "num_hidden_layers": 6,
            "num_attention_heads": 12,
            "intermediate_size": 1536,
        }
    )
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, max_position_embeddings=512, **shape)).save_pretrained(directory)
    return directory


def timer(device: torch.device) -> Callable[[Callable[[], object], int, int], tuple[float, float]]:
    """Median milliseconds of ``fn`` over ``repeats`` runs after ``warmup``: (device time, wall time)."""

    def measure(fn: Callable[[], object], repeats: int, warmup: int) -> tuple[float, float]:
        for _ in range(warmup):
            fn()
        timed, wall = [], []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                began = time.perf_counter()
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize(device)
                wall.append((time.perf_counter() - began) * 1000)
                timed.append(start.elapsed_time(end))
            else:
                began = time.perf_counter()
                fn()
                wall.append((time.perf_counter() - began) * 1000)
                timed.append(wall[-1])
        return statistics.median(timed), statistics.median(wall)

    return measure


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a Hugging Face encoder directory or name (default: a random one)")
    parser.add_argument("--tiny", action="store_true", help="the default random model 2 layers, 32 wide")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--num-docs", type=int, default=100_000, help="documents in the random store")
    parser.add_argument("--num-candidates", type=int, default=1000)
    parser.add_argument(
        "--dtype", choices=["float16", "float32"], default="float16", help="the store's dtype"
    )
    parser.add_argument(
        "--query-words", type=int, default=12, help="words a query (the paper cuts at 32 tokens)"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", required=True, help="where to write the JSON report")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    from auxir.models.coder import CoderConfig, CoderModel

    args = parse_args(argv)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    bf16 = device.type == "cuda"
    with tempfile.TemporaryDirectory() as scratch:
        path = args.model or str(random_encoder(Path(scratch), args.tiny))
        config = CoderConfig(max_query_length=32, num_candidates=args.num_candidates)
        model = CoderModel.from_pretrained(path, config).to(device).eval()
    dim = model.doc_dim
    rng = np.random.default_rng(0)
    store = torch.from_numpy(rng.standard_normal((args.num_docs, dim), dtype=np.float32)).to(
        getattr(torch, args.dtype)
    )
    store = torch.nn.functional.normalize(store.float(), dim=-1).to(store.dtype).to(device)
    measure = timer(device)
    results = []
    for batch in args.batch_sizes:
        texts = [" ".join(rng.choice(WORDS, args.query_words)) for _ in range(batch)]
        rows = torch.from_numpy(rng.integers(0, args.num_docs, (batch, args.num_candidates))).to(device)
        mask = torch.ones_like(rows, dtype=torch.bool)
        ids, lengths = (torch.from_numpy(a).to(device) for a in model.tokenize(texts))
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            vectors = model.encode_query_tokens(ids, lengths)

        def scores(query=vectors, rows=rows, mask=mask):
            with torch.inference_mode():
                return model.score_embeddings(query, store[rows], mask).sort(dim=1, descending=True)

        def encode_and_score(ids=ids, lengths=lengths, rows=rows, mask=mask):
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                return scores(model.encode_query_tokens(ids, lengths), rows, mask)

        def from_text(texts=texts, rows=rows, mask=mask):
            token_ids, token_lengths = (
                torch.from_numpy(a).to(device, non_blocking=True) for a in model.tokenize(texts)
            )
            return encode_and_score(token_ids, token_lengths, rows, mask)

        for case, fn in (
            ("scores", scores),
            ("encode+scores", encode_and_score),
            ("text+encode+scores", from_text),
        ):
            device_ms, wall_ms = measure(fn, args.repeats, args.warmup)
            results.append(
                {
                    "case": case,
                    "batch": batch,
                    "ms_per_batch": device_ms,
                    "wall_ms_per_batch": wall_ms,
                    "ms_per_query": device_ms / batch,
                    "queries_per_s": 1000.0 * batch / device_ms,
                }
            )
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "model": args.model or ("random tiny BERT" if args.tiny else "random BERT of MiniLM-L6 shape"),
        "dim": dim,
        "num_docs": args.num_docs,
        "num_candidates": args.num_candidates,
        "dtype": args.dtype,
        "bf16": bf16,
        "repeats": args.repeats,
        "paper_ms_per_query": PAPER_MS_PER_QUERY,
        "paper_compute_ms_per_batch_of_32": PAPER_COMPUTE_MS_PER_BATCH,
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(
        f"CODER reranking of {args.num_candidates} stored candidates on {report['device']} ({report['model']})"
    )
    print(f"{'case':20s} {'batch':>5s} {'ms/batch':>9s} {'ms/query':>9s} {'queries/s':>10s}")
    for r in results:
        print(
            f"{r['case']:20s} {r['batch']:5d} {r['ms_per_batch']:9.3f} {r['ms_per_query']:9.3f} {r['queries_per_s']:10.0f}"
        )
    print(
        f"{'paper (TITAN RTX)':20s} {32:5d} {PAPER_MS_PER_QUERY * 32:9.1f} {PAPER_MS_PER_QUERY:9.1f} "
        f"{1000 / PAPER_MS_PER_QUERY:10.0f}  (loading included; compute < {PAPER_COMPUTE_MS_PER_BATCH:.0f} ms a batch)"
    )
    return report


if __name__ == "__main__":
    main()
