"""Pairwise softmax cross-entropy (CEDR's training loss): for each (positive, negative) pair, the
negative log-probability of the positive under a softmax over the two scores, averaged.

Input: scores (B, G) with the positive in column 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from auxir.objectives.base import RankingObjective, register_objective


@register_objective("pairwise_softmax")
class PairwiseSoftmax(RankingObjective):
    @dataclass
    class Params:
        pass

    def loss(self, scores: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        # -log softmax([s+, s-])[0] = softplus(s- - s+)
        return F.softplus(scores[:, 1:] - scores[:, :1]).mean()
