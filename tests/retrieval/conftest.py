"""Fixtures for retrieval tests: a tiny random BERT with a local word-piece vocabulary, a tiny BEIR directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auxir.data.records import Doc

WORDS = (
    "the a of and in on is to cat cats dog dogs sat mat fish swim swimming sea river bank money loan "
    "interest rate tree forest green leaf photosynthesis light energy protein cell gene mutation cancer "
    "drug trial patient heart blood pressure"
).split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

DOCS = [
    Doc("d1", "the cat sat on the mat", "Cats"),
    Doc("d2", "dogs swim in the river near the bank", "Dogs"),
    Doc("d3", "the bank raised the interest rate on the loan", "Money"),
    Doc("d4", "green leaf cells use light energy for photosynthesis", "Trees"),
    Doc("d5", "a gene mutation in the cell causes cancer", "Genes"),
    Doc("d6", "the drug trial lowered blood pressure in each patient", "Trials"),
]


@pytest.fixture(scope="session")
def docs() -> list[Doc]:
    return list(DOCS)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide random BertModel and a BertTokenizer built from a local vocab file (no network)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = SPECIAL + WORDS
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer.from_pretrained(str(path), model_max_length=64)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BEIR directory with the six inline documents, three queries and test qrels."""
    path = tmp_path_factory.mktemp("tiny-beir")
    with open(path / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for doc in DOCS:
            handle.write(json.dumps({"_id": doc.doc_id, "title": doc.title, "text": doc.text}) + "\n")
    queries = {"q1": "cat on a mat", "q2": "interest rate of a bank loan", "q3": "gene mutation cancer"}
    with open(path / "queries.jsonl", "w", encoding="utf-8") as handle:
        for query_id, text in queries.items():
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    (path / "qrels").mkdir()
    (path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n", encoding="utf-8"
    )
    return path
