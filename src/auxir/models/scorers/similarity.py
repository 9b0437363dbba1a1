"""Query–document cosine-similarity matrices of every encoder layer, the input of CEDR's scorers.

CEDR (MacAvaney et al., SIGIR 2019, §3) reads the query and document token vectors of each layer of
the pair's own forward pass (the embedding output included: ``L + 1`` views for ``L`` layers) and builds
one similarity matrix per layer. Positions that hold no query or document token are zero and flagged
invalid, so the scorers can leave them out and a pair scores the same whatever the padding of its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass
class SimilarityMatrices:
    values: torch.Tensor  # (n, V, Q, D) float32 cosine similarities, 0 where either side is not a token
    query_valid: torch.Tensor  # (n, Q) true on query tokens
    doc_valid: torch.Tensor  # (n, D) true on document tokens


def segment_index(mask: torch.Tensor, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the contiguous run of true values in each row of ``mask`` (n, W), left-aligned:
    (n, L) positions and (n, L) validity, with L = ``length`` (a longer run is cut) or the longest run."""
    count = mask.sum(1)  # (n,)
    start = mask.int().argmax(1)  # (n,) the first true position (0 where there is none)
    width = length if length is not None else max(int(count.max()) if len(count) else 0, 1)
    offsets = torch.arange(width, device=mask.device)  # (L,)
    valid = offsets < count.unsqueeze(1)  # (n, L)
    index = (start.unsqueeze(1) + offsets).clamp(max=mask.shape[1] - 1)  # (n, L)
    return index, valid


def similarity_matrices(
    hidden_states: tuple[torch.Tensor, ...],  # each (n, W, H)
    query_mask: torch.Tensor,  # (n, W)
    doc_mask: torch.Tensor,  # (n, W)
    query_length: int | None = None,
) -> SimilarityMatrices:
    """One (Q, D) cosine-similarity matrix per layer: Q = ``query_length`` (padded or cut) or the longest
    query of the batch, D = the longest document. Computed in float32 outside autocast: in bfloat16 a
    cosine near 1 is off by up to 4e-3, which CEDR's exact-match kernel (σ = 0.001) cannot tell from a match."""
    q_index, q_valid = segment_index(query_mask, query_length)  # (n, Q)
    d_index, d_valid = segment_index(doc_mask)  # (n, D)
    pair_valid = (q_valid.unsqueeze(2) & d_valid.unsqueeze(1)).unsqueeze(1)  # (n, 1, Q, D)
    views = []
    with torch.autocast(hidden_states[0].device.type, enabled=False):
        for layer in hidden_states:
            layer = layer.float()
            h = layer.shape[-1]
            query = F.normalize(layer.gather(1, q_index.unsqueeze(-1).expand(-1, -1, h)), dim=-1)  # (n, Q, H)
            doc = F.normalize(layer.gather(1, d_index.unsqueeze(-1).expand(-1, -1, h)), dim=-1)  # (n, D, H)
            views.append(query @ doc.transpose(1, 2))  # (n, Q, D)
        values = torch.stack(views, dim=1).masked_fill(~pair_valid, 0.0)  # (n, V, Q, D)
    return SimilarityMatrices(values, q_valid, d_valid)
