"""Objectives, one per module; importing this package registers them all."""

from __future__ import annotations

from auxir.objectives import (  # noqa: F401  (imports register the objectives)
    aspects,
    doc_representation,
    generation,
    in_batch,
    listnet,
    listwise_softmax,
    masked_token_prediction,
    pairwise_hinge,
    pairwise_softmax,
    pointwise_bce,
)
from auxir.objectives.base import OBJECTIVES, Objective, RankingObjective, build_objective, register_objective

__all__ = ["OBJECTIVES", "Objective", "RankingObjective", "build_objective", "register_objective"]
