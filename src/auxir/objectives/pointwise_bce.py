"""Pointwise binary cross-entropy on each (query, document) score (monoBERT, Nogueira & Cho 2019).

Input: scores (B, G) as logits, labels (B, G) graded; a label ≥ 1 is relevant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from auxir.objectives.base import RankingObjective, register_objective


@register_objective("pointwise_bce")
class PointwiseBCE(RankingObjective):
    @dataclass
    class Params:
        pass

    def loss(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(scores, (labels > 0).to(scores.dtype))
