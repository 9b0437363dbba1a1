"""Small builders shared by the model, objective and trainer tests."""

from __future__ import annotations

from pathlib import Path

import torch

from auxir.data.collate import GroupBatch, GroupCollator
from auxir.data.token_cache import TokenCache
from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig

QUERIES = {"q1": "cat kitten purr", "q2": "bank loan interest rate", "q3": "gene"}
DOCS = {
    "p1": "the cat is a kitten with fur",
    "n1": "a bank of the river",
    "p2": "money loan credit at the bank",
    "n2": "green tree leaf",
    "p3": "gene mutation in the cell",
    "n3": "star planet orbit",
}
GROUPS = [("q1", ["p1", "n1"], [1, 0]), ("q2", ["p2", "n2"], [2, 0]), ("q3", ["p3", "n3"], [1, 0])]


def tiny_cross_encoder(path: Path, **config) -> CrossEncoder:
    torch.manual_seed(0)
    return CrossEncoder.from_pretrained(
        str(path), CrossEncoderConfig(max_length=48, max_query_length=8, **config)
    )


def tiny_batch(model: CrossEncoder, groups=GROUPS) -> GroupBatch:
    queries = TokenCache(model.tokenizer, model.config.max_query_length)
    docs = TokenCache(model.tokenizer, 32)
    queries.add(QUERIES, QUERIES.__getitem__)
    docs.add(DOCS, DOCS.__getitem__)
    return GroupCollator(queries, docs, model.template.pad_id)(groups)
