"""Pairwise margin (hinge) loss, SJTF eq. 5: ``max(0, γ − (s⁺ − s⁻))``, averaged over the group's negatives.

Input: scores (B, G) with the positive in column 0. Example::

    >>> import torch
    >>> PairwiseHinge(PairwiseHinge.Params(margin=1.0)).loss(torch.tensor([[2.0, 1.5, 0.0]]), None)
    tensor(0.2500)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from auxir.objectives.base import RankingObjective, register_objective


@register_objective("pairwise_hinge")
class PairwiseHinge(RankingObjective):
    @dataclass
    class Params:
        margin: float = 1.0  # γ; SJTF uses 1

    def loss(self, scores: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        gap = scores[:, :1] - scores[:, 1:]  # (B, G-1) positive minus each negative
        return torch.relu(self.params.margin - gap).mean()
