"""Pack what a GPU run needs into an ignored folder that travels with the working tree (≤ 64 MiB).

MiniLM-L6 as fp16 safetensors (44 MiB) and, per dataset, a gzipped corpus, only the judged queries and
the qrels. Nothing here is committed: ``.device_carry/`` is git-ignored.

    python bench/pack_device_data.py --out .device_carry scifact nfcorpus
    python bench/pack_device_data.py --out .device_carry --prune-vocab scifact nfcorpus   # + room for FAISS
    python bench/pack_device_data.py --out .device_carry_fire --max-chars 20000 --max-query-chars 8000 \
        --bm25-run 100 fire2017-legal

``--max-chars`` cuts long texts (FIRE 2017's legal cases average 43,000 characters; 20,000 covers PARADE's 16
passages of 200 new tokens; 8,000 a query's four 256-token passages), after ``--bm25-run`` ranked the full texts.

``--prune-vocab`` keeps only the word-piece rows that the packed texts use (MiniLM: 30,522 → ~20k rows,
44 → ~30 MiB), so the FAISS wheel (19 MiB) fits beside it. It is lossless for those texts: WordPiece takes
the longest vocabulary prefix of each word, and every piece it took with the full vocabulary is kept, so
it takes the same pieces (checked on every packed text before writing). Not for token-prediction
objectives (MQP): their softmax would run over the pruned vocabulary.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def pack_model(out: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from auxir.models.hf import resolve_model_name

    src = Path(resolve_model_name("sentence-transformers/all-MiniLM-L6-v2"))
    dst = out / "minilm"
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name != "model.safetensors":
            shutil.copy(f, dst / f.name)
    if (src / "1_Pooling").is_dir():
        shutil.copytree(src / "1_Pooling", dst / "1_Pooling", dirs_exist_ok=True)
    weights = {k: v.to(torch.float16) for k, v in load_file(str(src / "model.safetensors")).items()}
    save_file(weights, str(dst / "model.safetensors"), metadata={"format": "pt"})


def packed_texts(out: Path) -> list[str]:
    texts = []
    for corpus in sorted((out / "data").glob("*/corpus.jsonl.gz")):
        with gzip.open(corpus, "rt", encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                texts.append(f"{record.get('title', '')} {record.get('text', '')}".strip())
    for queries in sorted((out / "data").glob("*/queries.jsonl")):
        texts += [json.loads(line)["text"] for line in queries.read_text(encoding="utf-8").splitlines()]
    return texts


def prune_vocabulary(model_dir: Path, texts: list[str]) -> tuple[int, int]:
    """Keep the vocabulary rows ``texts`` use (plus the special tokens); returns (before, after)."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    before = AutoTokenizer.from_pretrained(model_dir)
    old_pieces = [
        before.convert_ids_to_tokens(ids) for ids in before(texts, add_special_tokens=False)["input_ids"]
    ]
    used = {i for ids in before(texts, add_special_tokens=False)["input_ids"] for i in ids}
    used |= set(before.all_special_ids)
    vocab = before.get_vocab()
    keep = sorted(used)
    new_id = {old: new for new, old in enumerate(keep)}
    by_id = {i: t for t, i in vocab.items()}
    (model_dir / "vocab.txt").write_text("".join(by_id[i] + "\n" for i in keep), encoding="utf-8")
    spec = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    spec["model"]["vocab"] = {by_id[i]: new_id[i] for i in keep}
    for token in spec["added_tokens"]:
        token["id"] = new_id[token["id"]]
    for special in spec["post_processor"]["special_tokens"].values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    if spec.get("padding"):
        spec["padding"]["pad_id"] = new_id[spec["padding"]["pad_id"]]
    (model_dir / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    weights = load_file(str(model_dir / "model.safetensors"))
    weights["embeddings.word_embeddings.weight"] = weights["embeddings.word_embeddings.weight"][
        torch.tensor(keep)
    ]
    save_file(weights, str(model_dir / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((model_dir / "config.json").read_text())
    config["vocab_size"] = len(keep)
    if "pad_token_id" in config:
        config["pad_token_id"] = new_id[config["pad_token_id"]]
    (model_dir / "config.json").write_text(json.dumps(config, indent=2))
    after = AutoTokenizer.from_pretrained(model_dir)
    new_pieces = [
        after.convert_ids_to_tokens(ids) for ids in after(texts, add_special_tokens=False)["input_ids"]
    ]
    if new_pieces != old_pieces:
        bad = next(i for i, (a, b) in enumerate(zip(old_pieces, new_pieces)) if a != b)
        raise RuntimeError(f"pruned vocabulary tokenises text {bad} differently: {texts[bad][:80]!r}")
    return len(vocab), len(keep)


def pack_dataset(
    name: str,
    out: Path,
    max_chars: int | None = None,
    bm25_k: int | None = None,
    max_query_chars: int | None = None,
) -> None:
    """Judged queries (with their metadata), qrels and the gzipped corpus of ``name``; with ``max_chars`` every
    document's and query's text cut to that many characters, and with ``bm25_k`` a BM25 run over the full
    texts first (``runs/bm25-full.trec``, for ``data.first_stage=bm25-full``), so that cutting the texts
    changes only what the neural models could read beyond ``max_chars``."""
    src, dst = SHARED / name, out / "data" / name
    if bm25_k:
        (dst / "runs").mkdir(parents=True, exist_ok=True)
        index = out / "tmp-bm25-index"
        subprocess.run(
            [sys.executable, "-m", "auxir", "index", "--dataset", str(src), "--out", str(index)], check=True
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "auxir",
                "retrieve",
                "--index",
                str(index),
                "--dataset",
                str(src),
                "--k",
                str(bm25_k),
                "--out",
                str(dst / "runs" / "bm25-full.trec"),
                "--tag",
                "bm25-full",
            ],
            check=True,
        )
        shutil.rmtree(index)
    (dst / "qrels").mkdir(parents=True, exist_ok=True)
    judged = set()
    for qrels in sorted((src / "qrels").glob("*.tsv")):
        shutil.copy(qrels, dst / "qrels" / qrels.name)
        judged |= {line.split("\t")[0] for line in qrels.read_text().splitlines()[1:]}
    with (src / "queries.jsonl").open() as fin, (dst / "queries.jsonl").open("w") as fout:
        for line in fin:
            record = json.loads(line)
            if record["_id"] in judged:
                kept = {"_id": record["_id"], "text": record["text"][: max_query_chars or max_chars]}
                if record.get("metadata"):  # e.g. PubMedQA's long answers and MeSH terms
                    kept["metadata"] = record["metadata"]
                fout.write(json.dumps(kept) + "\n")
    corpus = src / "corpus.jsonl.gz" if (src / "corpus.jsonl.gz").exists() else src / "corpus.jsonl"
    if max_chars:
        opener = gzip.open if corpus.suffix == ".gz" else open
        with (
            opener(corpus, "rt", encoding="utf-8") as fin,
            gzip.open(dst / "corpus.jsonl.gz", "wt", compresslevel=9) as fout,
        ):
            for line in fin:
                record = json.loads(line)
                record["text"] = record.get("text", "")[:max_chars]
                fout.write(json.dumps(record) + "\n")
    elif corpus.suffix == ".gz":
        shutil.copy(corpus, dst / "corpus.jsonl.gz")
    else:
        with corpus.open("rb") as fin, gzip.open(dst / "corpus.jsonl.gz", "wb", compresslevel=9) as fout:
            shutil.copyfileobj(fin, fout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("datasets", nargs="*")
    parser.add_argument("--out", default=".device_carry")
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--prune-vocab", action="store_true", help="keep the vocabulary rows the texts use")
    parser.add_argument(
        "--max-chars", type=int, default=None, help="cut every document and query text to this"
    )
    parser.add_argument(
        "--max-query-chars", type=int, default=None, help="queries: this instead of --max-chars"
    )
    parser.add_argument(
        "--bm25-run", type=int, default=None, metavar="K", help="BM25 top K over the full texts"
    )
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if not args.no_model:
        pack_model(out)
    for name in args.datasets:
        pack_dataset(name, out, args.max_chars, args.bm25_run, args.max_query_chars)
    if args.prune_vocab and not args.no_model:
        before, after = prune_vocabulary(out / "minilm", packed_texts(out))
        print(f"vocabulary: {before} -> {after} word pieces (same tokenisation of every packed text)")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
