"""Query generation with and without the key-value cache, timed in one run on the CPU.

A random MiniLM-shaped BERT (6 layers, 384 wide, 12 heads, 1536 FFN, 30,522 word-level tokens; built here,
nothing downloaded) writes greedy queries of ``--query-tokens`` tokens for ``--docs`` documents of
``--doc-tokens`` tokens each, first re-encoding the whole pair at every step (the anchor,
``GenerationConfig(kv_cache=False)``), then with the cache. The separator's logit is pushed down so that every
query runs to full length and both paths do the same steps; the script checks they write the same queries.

    python bench/generation_speed.py --out docs/results/generation-speed.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import torch

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB_SIZE = 30522  # MiniLM-L6's


def minilm_shaped_model(directory: Path, attention: str):
    """A random 6-layer, 384-wide BertModel and a word-level tokenizer (``w0``, ``w1``, ...), saved and loaded
    back as a cross-encoder."""
    from transformers import BertConfig, BertModel, BertTokenizer

    from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig

    words = SPECIAL + [f"w{i}" for i in range(VOCAB_SIZE - len(SPECIAL))]
    (directory / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    BertTokenizer(str(directory / "vocab.txt"), model_max_length=512).save_pretrained(directory)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(directory, safe_serialization=True)
    model = CrossEncoder.from_pretrained(str(directory), CrossEncoderConfig(max_length=512)).eval()
    model.backbone.set_attn_implementation(attention)
    with torch.no_grad():  # no early stop: every query runs to max_length
        model.token_head.bias[model.tokenizer.sep_token_id] = -1e4
    return model


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=64)
    parser.add_argument("--doc-tokens", type=int, default=200)
    parser.add_argument("--query-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64, help="documents decoded together (both paths)")
    parser.add_argument("--attention", choices=["sdpa", "eager"], default="sdpa")
    parser.add_argument("--out", type=Path, default=None, help="JSON with the settings, machine and timings")
    args = parser.parse_args()

    from auxir.generation import GenerationConfig, generate_queries

    torch.set_num_threads(os.cpu_count() or 1)
    rng = random.Random(0)
    documents = [
        " ".join(f"w{rng.randrange(VOCAB_SIZE - len(SPECIAL))}" for _ in range(args.doc_tokens))
        for _ in range(args.docs)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        model = minilm_shaped_model(Path(tmp), args.attention)
    settings = {"method": "greedy", "max_length": args.query_tokens, "batch_size": args.batch_size}
    generate_queries(model, documents[:2], GenerationConfig(**{**settings, "max_length": 2}))  # warm-up
    runs, outputs = {}, {}
    for name, kv_cache in (("re-encode (anchor)", False), ("kv cache", True)):
        start = time.perf_counter()
        outputs[name] = generate_queries(model, documents, GenerationConfig(**settings, kv_cache=kv_cache))
        seconds = time.perf_counter() - start
        tokens = sum(len(q.split()) for queries in outputs[name] for q in queries)
        runs[name] = {"seconds": seconds, "query_tokens": tokens, "query_tokens_per_s": tokens / seconds}
    same = outputs["re-encode (anchor)"] == outputs["kv cache"]
    ratio = runs["re-encode (anchor)"]["seconds"] / runs["kv cache"]["seconds"]

    print(f"{'path':<20} {'seconds':>9} {'query tokens':>13} {'tokens/s':>10}")
    for name, run in runs.items():
        print(
            f"{name:<20} {run['seconds']:>9.2f} {run['query_tokens']:>13} {run['query_tokens_per_s']:>10.1f}"
        )
    print(f"speed-up (re-encode / kv cache): {ratio:.1f}x; same queries: {same}")

    import transformers

    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": vars(args) | {"out": str(args.out) if args.out else None, "method": "greedy"},
        "model": "random BertModel, 6 layers, hidden 384, 12 heads, FFN 1536, vocab 30522, fp32",
        "machine": {
            "platform": platform.platform(),
            "processor": cpu_name(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "runs": runs,
        "speedup": ratio,
        "same_queries": same,
    }
    if args.out:
        from auxir.io import atomic_write

        with atomic_write(args.out) as f:
            f.write(json.dumps(report, indent=2) + "\n")
        print(f"-> {args.out}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
