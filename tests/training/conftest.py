"""Fixtures for model, objective and trainer tests: a tiny random BERT and a tiny BEIR collection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TOPICS = {
    "cat": "cat cats kitten fur purr mouse",
    "dog": "dog dogs puppy bark leash bone",
    "bank": "bank money loan interest rate credit",
    "tree": "tree forest leaf green branch root",
    "gene": "gene mutation cell cancer protein dna",
    "drug": "drug trial patient blood pressure dose",
    "sea": "sea fish swim wave salt boat",
    "star": "star planet orbit light space moon",
}
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def vocabulary() -> list[str]:
    words = sorted({w for text in TOPICS.values() for w in text.split()} | {"the", "a", "of", "about", "is"})
    return SPECIAL + words


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide random BertModel saved with a local word-level vocabulary (no network)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = vocabulary()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(path / "vocab.txt"), model_max_length=128).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def tiny_beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 topics × 6 documents; 4 queries a topic, half train and half test, relevant = the topic's documents."""
    import random

    rng = random.Random(0)
    path = tmp_path_factory.mktemp("tiny-beir")
    docs, queries, train, test = [], [], [], []
    for topic, words in TOPICS.items():
        pool = words.split()
        for i in range(6):
            text = " ".join(rng.choice(pool) for _ in range(12 + 3 * i))
            docs.append({"_id": f"{topic}-d{i}", "title": topic, "text": text})
        for j in range(4):
            qid = f"{topic}-q{j}"
            queries.append({"_id": qid, "text": " ".join(rng.sample(pool, 3))})
            for i in range(2):  # two relevant documents a query
                (train if j < 2 else test).append((qid, f"{topic}-d{(j + i) % 6}", 1 + i % 2))
    (path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (path / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (path / "qrels").mkdir()
    for name, rows in (("train", train), ("test", test)):
        lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{r}" for q, d, r in rows]
        (path / "qrels" / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    return path
