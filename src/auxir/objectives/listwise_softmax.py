"""Listwise softmax cross-entropy over a group of 1 positive + n negatives (localised contrastive loss).

Input: scores (B, G) with the positive in column 0; loss = −log softmax(scores)[0].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from auxir.objectives.base import RankingObjective, register_objective


@register_objective("listwise_softmax")
class ListwiseSoftmax(RankingObjective):
    @dataclass
    class Params:
        temperature: float = 1.0

    def loss(self, scores: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        target = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
        return F.cross_entropy(scores / self.params.temperature, target)
