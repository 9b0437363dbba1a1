"""Masked query prediction (SJTF, Findings of NAACL 2022, §3.1–3.2) and its two ablations (§4.6).

``mqp``: in each group, ``num_masked`` query tokens chosen uniformly at random are replaced by [MASK];
the masked query is encoded with the group's POSITIVE document; a linear decoder (the model's token
head) predicts each original token from its last-layer vector; the loss is the mean cross-entropy
over the vocabulary (eq. 2). ``mpp`` masks a token of the positive document instead; ``mqp_all`` uses
any document of the group (positive or negative) as the context.

Only real text tokens can be chosen: special tokens are added after masking, when the pair is packed,
and the other segment is never touched. Example (a recipe entry)::

    objectives:
      - {name: pairwise_hinge, weight: 1.0}
      - {name: mqp, weight: 0.2}     # α = 0.2 for passages, 0.05 for long documents
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch.nn import functional as F

from auxir.data.collate import GroupBatch
from auxir.objectives.base import Objective, register_objective

IGNORE = -100


def choose_masked_positions(
    lengths: torch.Tensor, width: int, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` distinct positions per row, uniform over ``[0, length)``: (n, count) positions and validity.

    Rows shorter than ``count`` get as many as they have; the rest are flagged invalid, and their positions
    are arbitrary (distinct and inside ``[0, width)``, nothing more): callers must not read through them.
    """
    n = lengths.shape[0]
    noise = torch.rand(n, width, device=lengths.device)  # uniform keys → a uniform random subset
    real = torch.arange(width, device=lengths.device) < lengths.unsqueeze(1)  # (n, width)
    noise = noise.masked_fill(~real, -1.0)
    k = min(count, width)
    keys, positions = noise.topk(k, dim=1)  # (n, k)
    return positions, keys >= 0


@register_objective("mqp", target="query", context="positive")
@register_objective("mpp", target="document", context="positive")
@register_objective("mqp_all", target="query", context="any")
class MaskedTokenPrediction(Objective):
    @dataclass
    class Params:
        target: Literal["query", "document"] = "query"
        context: Literal["positive", "any"] = "positive"
        num_masked: int = 1

    def __init__(self, params: Params):
        super().__init__(params)
        if params.target not in ("query", "document") or params.context not in ("positive", "any"):
            raise ValueError(f"invalid masked-token-prediction params {params}")
        if params.num_masked < 1:
            raise ValueError(f"num_masked must be ≥ 1, got {params.num_masked}")

    def __call__(self, model, batch: GroupBatch) -> torch.Tensor:
        b = batch.query.shape[0]
        rows = torch.arange(b, device=batch.docs.device)
        if self.params.context == "positive":
            pick = torch.zeros(b, dtype=torch.long, device=batch.docs.device)
        else:
            pick = torch.randint(batch.group_size, (b,), device=batch.docs.device)
        doc, doc_len = batch.docs[rows, pick], batch.doc_len[rows, pick]  # (B, Ld), (B,)
        doc, doc_len = model.document_in_pair(doc, doc_len)  # a passage scorer's pair holds one passage
        query, query_len = model.query_in_pair(
            batch.query, batch.query_len
        )  # a long query: its first passage

        target, target_len = (query, query_len) if self.params.target == "query" else (doc, doc_len)
        positions, valid = choose_masked_positions(target_len, target.shape[1], self.params.num_masked)
        labels = target.gather(1, positions).masked_fill(~valid, IGNORE)  # (B, k) original tokens
        masked = target.scatter(
            1, positions, torch.where(valid, model.template.mask_id, target.gather(1, positions))
        )
        if self.params.target == "query":
            query = masked
        else:
            doc = masked

        inputs = model.pack(query, query_len, doc, doc_len)
        hidden = model(inputs).last_hidden_state  # (B, W, H)
        start = inputs.query_start if self.params.target == "query" else inputs.doc_start  # (B, 1)
        # Invalid positions (a row with fewer than num_masked tokens, e.g. an empty document) are arbitrary,
        # and past an empty second segment they point beyond the packed width: read position 0 instead.
        # Their labels are IGNORE, so they add nothing to the loss, yet the graph stays whole for DDP.
        where = torch.where(valid, start + positions, 0)  # (B, k) positions in the packed input
        picked = hidden.gather(1, where.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))  # (B, k, H)
        logits = model.token_head(picked).float()  # (B, k, V)
        if not (labels != IGNORE).any():
            return logits.sum() * 0.0  # no maskable token in this batch; keep the graph for DDP
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
