"""Rerank a first-stage run with a cross-encoder: pre-tokenised, length-sorted batches, bf16 on a GPU."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from auxir.data.records import ScoredDoc
from auxir.data.token_cache import TokenCache, pad_stack
from auxir.data.trec import group_by_query


@dataclass
class RerankResult:
    run: list[ScoredDoc]
    pairs: int
    seconds: float


def doc_token_budget(model) -> int:
    """Document tokens that fit beside a full-length query and the pair's special tokens."""
    budget = model.config.max_length - model.config.max_query_length - model.template.num_special
    if budget < 1:
        raise ValueError(f"max_length {model.config.max_length} leaves no room for the document")
    return budget


def token_caches(model) -> tuple[TokenCache, TokenCache]:
    return (
        TokenCache(model.tokenizer, model.config.max_query_length),
        TokenCache(model.tokenizer, doc_token_budget(model)),
    )


@torch.inference_mode()
def rerank(
    model,
    run: Iterable[ScoredDoc],
    query_text: Mapping[str, str] | Callable[[str], str],
    doc_text: Callable[[str], str],
    top_k: int = 100,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    bf16: bool | None = None,
    caches: tuple[TokenCache, TokenCache] | None = None,
) -> RerankResult:
    """Scores of ``model`` for each query's top ``top_k`` documents of ``run``; the rest are dropped."""
    device = torch.device(device) if device else next(model.parameters()).device
    bf16 = device.type == "cuda" if bf16 is None else bf16
    text_of_query = query_text.__getitem__ if isinstance(query_text, Mapping) else query_text
    pairs = [(qid, s.doc_id) for qid, ranked in group_by_query(run).items() for s in ranked[:top_k]]
    if not pairs:
        return RerankResult([], 0, 0.0)
    queries, docs = caches or token_caches(model)
    queries.add((q for q, _ in pairs), text_of_query)
    docs.add((d for _, d in pairs), doc_text)

    started = time.perf_counter()
    lengths = np.array([len(queries[q]) + len(docs[d]) for q, d in pairs])
    order = np.argsort(-lengths, kind="stable")  # longest first: the first batch shows the memory peak
    scores = torch.empty(len(pairs), dtype=torch.float32)
    was_training = model.training
    model.eval()
    pad = model.template.pad_id
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        q, q_len = pad_stack([queries[pairs[i][0]] for i in idx], pad)
        d, d_len = pad_stack([docs[pairs[i][1]] for i in idx], pad)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model.score(
                *(torch.from_numpy(a).to(device, non_blocking=True) for a in (q, q_len, d, d_len))
            )
        scores[torch.from_numpy(idx)] = out.float().cpu()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    model.train(was_training)
    values = scores.tolist()
    return RerankResult(
        run=[ScoredDoc(q, d, s) for (q, d), s in zip(pairs, values)], pairs=len(pairs), seconds=seconds
    )
