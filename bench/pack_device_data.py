"""Pack what a GPU run needs into an ignored folder that travels with the working tree (≤ 64 MiB).

MiniLM-L6 as fp16 safetensors (44 MiB) and, per dataset, a gzipped corpus, only the judged queries and
the qrels. Nothing here is committed: ``.device_carry/`` is git-ignored.

    python bench/pack_device_data.py --out .device_carry scifact nfcorpus
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
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


def pack_dataset(name: str, out: Path) -> None:
    src, dst = SHARED / name, out / "data" / name
    (dst / "qrels").mkdir(parents=True, exist_ok=True)
    judged = set()
    for qrels in sorted((src / "qrels").glob("*.tsv")):
        shutil.copy(qrels, dst / "qrels" / qrels.name)
        judged |= {line.split("\t")[0] for line in qrels.read_text().splitlines()[1:]}
    with (src / "queries.jsonl").open() as fin, (dst / "queries.jsonl").open("w") as fout:
        for line in fin:
            record = json.loads(line)
            if record["_id"] in judged:
                fout.write(json.dumps({"_id": record["_id"], "text": record["text"]}) + "\n")
    corpus = src / "corpus.jsonl.gz" if (src / "corpus.jsonl.gz").exists() else src / "corpus.jsonl"
    if corpus.suffix == ".gz":
        shutil.copy(corpus, dst / "corpus.jsonl.gz")
    else:
        with corpus.open("rb") as fin, gzip.open(dst / "corpus.jsonl.gz", "wb", compresslevel=9) as fout:
            shutil.copyfileobj(fin, fout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("datasets", nargs="*")
    parser.add_argument("--out", default=".device_carry")
    parser.add_argument("--no-model", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if not args.no_model:
        pack_model(out)
    for name in args.datasets:
        pack_dataset(name, out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
