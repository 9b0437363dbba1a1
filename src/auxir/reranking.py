"""Rerank a first-stage run with a cross-encoder: pre-tokenised, length-sorted batches, bf16 on a GPU."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

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
    if hasattr(model, "max_doc_tokens"):  # a passage scorer reads more than one pair's worth
        budget = model.max_doc_tokens
    else:
        budget = model.config.max_length - model.config.max_query_length - model.template.num_special
    if budget < 1:
        raise ValueError(f"max_length {model.config.max_length} leaves no room for the document")
    return budget


def token_caches(model) -> tuple[TokenCache, TokenCache]:
    if hasattr(model, "text_budget"):  # a bi-encoder: each side framed alone, with its own length
        return (
            TokenCache(model.tokenizer, model.text_budget("query")),
            TokenCache(model.tokenizer, model.text_budget("document")),
        )
    query_tokens = getattr(model, "max_query_tokens", model.config.max_query_length)  # long queries: more
    return (
        TokenCache(model.tokenizer, query_tokens),
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
    keep_tail: bool = True,
    progress: bool = False,
) -> RerankResult:
    """Scores of ``model`` for each query's top ``top_k`` documents of ``run``, then (``keep_tail``) the rest.

    Dropping the documents below ``top_k`` would cut recall at depths beyond ``top_k`` (R@1000 of a run of
    1000). So by default they follow the reranked ones in their first-stage order (score descending, ties by
    doc id descending, as :func:`group_by_query`): the i-th of them (from 0) scores
    ``lowest - 1 - i``, where ``lowest`` is the query's lowest reranked score, so every tail score is finite,
    below all reranked ones, and strictly decreasing. ``keep_tail=False`` returns the top ``top_k`` only.
    ``pairs`` counts the scored pairs, never the tail. ``progress`` shows a bar of batches on stderr when it
    is a terminal (below the training bar, and wiped when done, when it runs inside training).
    """
    if top_k < 1:
        raise ValueError(f"rerank: top_k must be ≥ 1, got {top_k}")
    device = torch.device(device) if device else next(model.parameters()).device
    bf16 = device.type == "cuda" if bf16 is None else bf16
    text_of_query = query_text.__getitem__ if isinstance(query_text, Mapping) else query_text
    groups = group_by_query(run)
    pairs = [(qid, s.doc_id) for qid, ranked in groups.items() for s in ranked[:top_k]]
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
    # disable=None: tqdm hides the bar itself when stderr is not a terminal (logs, CI, pipes). leave=None:
    # the bar stays when it is the only one, and is wiped when it ran below another (validation inside
    # the training bar), so the two never interleave.
    starts = tqdm(
        range(0, len(order), batch_size),
        desc="rerank",
        unit="batch",
        disable=None if progress else True,
        leave=None,
        dynamic_ncols=True,
    )
    for start in starts:
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
    reranked = [ScoredDoc(q, d, s) for (q, d), s in zip(pairs, scores.tolist())]
    if keep_tail:
        reranked = with_tail(reranked, groups, top_k)
    return RerankResult(run=reranked, pairs=len(pairs), seconds=seconds)


def with_tail(reranked: list[ScoredDoc], groups: dict[str, list[ScoredDoc]], top_k: int) -> list[ScoredDoc]:
    """Each query's reranked documents followed by its first-stage documents below ``top_k`` (see :func:`rerank`).

    ``reranked`` holds each query's top ``top_k`` of ``groups`` in the same query order, as ``rerank`` builds it.
    """
    out: list[ScoredDoc] = []
    start = 0
    for qid, ranked in groups.items():
        head = reranked[start : start + min(top_k, len(ranked))]
        start += len(head)
        lowest = min(s.score for s in head)
        out += head
        out += [ScoredDoc(qid, s.doc_id, lowest - 1.0 - i) for i, s in enumerate(ranked[top_k:])]
    return out
