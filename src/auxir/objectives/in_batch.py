"""In-batch softmax cross-entropy: every query against every document of the batch, its own positive the target.

Input: a ``GroupBatch`` of B groups (query, positive, G−1 hard negatives). Each query's scores against all
B·G documents of the batch (``hard_negatives=False``: the B positives only), and the loss is
``−log softmax(scores)[own positive]`` averaged over the queries. The other groups' documents are the
"in-batch negatives" of DPR (Karpukhin et al., EMNLP 2020, Section 3.2) and MADRM (Kong et al., KDD 2022,
the in-batch softmax term of the fine-tuning loss); with the hard negatives from the first stage it is
sentence-transformers' ``MultipleNegativesRankingLoss`` (cosine × 20 for a bi-encoder of that
similarity and scale).

Documents the batch knows to be relevant to a query are not counted as its negatives: another copy of its
positive (the same document in another group) and the positive of another group of the same query.

With a bi-encoder (a model with ``encode_ids`` and ``similarity``) the documents are encoded once (with an
``AspectGroupBatch``, once for this and the aspect objectives: ``auxir.objectives.aspects.encoded``), and
under DistributedDataParallel the document vectors of every process are gathered, so each query also
meets the other processes' documents; only the local ones carry gradient (each process back-propagates
its own). Any other model (a cross-encoder) scores all B × B·G pairs of the local batch with ``score``:
B times the cost of ``listwise_softmax``.

>>> from auxir.objectives import build_objective
>>> loss = build_objective("in_batch_softmax", {"hard_negatives": True})  # loss(model, batch) -> scalar
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.distributed as dist
from torch.nn import functional as F

from auxir.data.aspects import AspectGroupBatch
from auxir.data.collate import GroupBatch
from auxir.objectives.aspects import encoded
from auxir.objectives.base import Objective, register_objective


@register_objective("in_batch_softmax")
class InBatchSoftmax(Objective):
    kind: ClassVar[str] = "ranking"

    @dataclass
    class Params:
        hard_negatives: bool = True  # False: each query against the batch's positives only

    def __call__(self, model, batch: GroupBatch) -> torch.Tensor:
        columns = batch.group_size if self.params.hard_negatives else 1
        docs = batch.docs[:, :columns]  # (B, g, Ld)
        doc_len = batch.doc_len[:, :columns]  # (B, g)
        doc_ids = [ids[:columns] for ids in batch.doc_ids]
        if hasattr(model, "encode_ids") and hasattr(model, "similarity"):
            if isinstance(batch, AspectGroupBatch) and hasattr(model, "encode_aspects"):
                # MADRAL: the step's one encoding of every text, shared with the aspect objectives.
                queries = encoded(model, batch, "query").vectors  # (B, H)
                vectors = encoded(model, batch, "document").vectors  # (B·G, H)
                vectors = vectors.view(*batch.docs.shape[:2], -1)[:, :columns]  # (B, g, H)
            else:
                queries = model.encode_ids(batch.query, batch.query_len, "query")  # (B, H)
                vectors = model.encode_ids(docs.flatten(0, 1), doc_len.flatten(), "document")  # (B·g, H)
                vectors = vectors.view(*docs.shape[:2], -1)  # (B, g, H)
            return in_batch_softmax(queries, vectors, model.similarity, batch.query_ids, doc_ids)
        b, g = doc_len.shape
        n = b * g
        query = batch.query.repeat_interleave(n, dim=0)  # (B·B·g, Lq): each query with every document
        query_len = batch.query_len.repeat_interleave(n)
        doc = docs.flatten(0, 1).repeat(b, 1)  # (B·B·g, Ld)
        scores = model.score(query, query_len, doc, doc_len.flatten().repeat(b)).view(b, n)  # (B, B·g)
        targets = torch.arange(b, device=scores.device) * g
        query_keys, target_keys, doc_keys = batch_keys(batch.query_ids, doc_ids, scores.device)
        return softmax_cross_entropy(
            scores, targets, false_negatives(query_keys, target_keys, doc_keys, targets)
        )


def in_batch_softmax(
    queries: torch.Tensor,  # (B, H)
    docs: torch.Tensor,  # (B, g, H): document 0 of each group is its query's positive
    similarity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],  # (nq, H), (nd, H) -> (nq, nd)
    query_ids: list[str],
    doc_ids: list[list[str]],
) -> torch.Tensor:
    """The loss over the documents of every process (see the module docstring), for the local queries."""
    b, g, _ = docs.shape
    query_keys, target_keys, doc_keys = batch_keys(query_ids, doc_ids, docs.device)
    all_docs, offset = gather_rows(docs.flatten(0, 1))  # (N, H), N = B·g summed over processes
    all_keys, _ = gather_rows(doc_keys)  # (N, 3)
    targets = offset + torch.arange(b, device=docs.device) * g  # (B,) each query's own positive
    mask = false_negatives(query_keys, target_keys, all_keys, targets)
    return softmax_cross_entropy(similarity(queries, all_docs), targets, mask)


def softmax_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of ``−log softmax(logits[i])[targets[i]]``, leaving out the columns where ``mask`` is True."""
    logits = logits.float()
    if mask is not None:
        logits = logits.masked_fill(mask, float("-inf"))
    return F.cross_entropy(logits, targets)


def false_negatives(
    query_keys: torch.Tensor,  # (B,) each local query
    target_keys: torch.Tensor,  # (B,) its positive document
    doc_keys: torch.Tensor,  # (N, 3) each document of the batch: its key, its group's query, is-positive
    targets: torch.Tensor,  # (B,) the column of each query's own positive
) -> torch.Tensor:
    """(B, N) True where a column is relevant to the row's query without being its target: another copy
    of its positive, or the positive of another group of the same query."""
    doc, owner, positive = doc_keys.unbind(1)  # (N,) each
    same_doc = doc.unsqueeze(0) == target_keys.unsqueeze(1)  # (B, N)
    same_query = (positive.unsqueeze(0) == 1) & (owner.unsqueeze(0) == query_keys.unsqueeze(1))  # (B, N)
    mask = same_doc | same_query
    mask[torch.arange(len(targets), device=targets.device), targets] = False
    return mask


def gather_rows(local: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The rows of ``local`` from every process, in rank order, and where this process's rows start.

    Processes may hold different numbers of rows (the last batch of an epoch is smaller). The gathered
    copies carry no gradient; this process's slice is ``local`` itself, so its rows keep their graph.
    Without an initialised process group: ``(local, 0)``.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return local, 0
    world, rank = dist.get_world_size(), dist.get_rank()
    count = torch.tensor([local.shape[0]], device=local.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    sizes = [int(c) for c in counts]
    padded = local.detach().new_zeros((max(sizes), *local.shape[1:]))
    padded[: local.shape[0]] = local.detach()
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    rows = [part[:size] for part, size in zip(parts, sizes)]
    rows[rank] = local
    return torch.cat(rows), sum(sizes[:rank])


def id_key(text: str) -> int:
    """A stable 63-bit key of an id (the same in every process, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little") >> 1


def batch_keys(
    query_ids: list[str], doc_ids: list[list[str]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keys of the queries (B,) and of their positives (B,), and (N, 3) rows of (document key, its group's
    query key, 1 for a group's positive else 0) for the documents, group by group."""
    query_keys = [id_key(q) for q in query_ids]
    rows = [
        (id_key(d), query_key, int(i == 0))
        for query_key, ids in zip(query_keys, doc_ids)
        for i, d in enumerate(ids)
    ]
    return (
        torch.tensor(query_keys, dtype=torch.int64, device=device),
        torch.tensor([id_key(ids[0]) for ids in doc_ids], dtype=torch.int64, device=device),
        torch.tensor(rows, dtype=torch.int64, device=device).view(-1, 3),
    )
