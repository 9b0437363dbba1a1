"""The objective interface and its registry.

An objective builds its own view of a batch (ranking pairs, a masked query with its positive, ...),
runs the model on it and returns one loss tensor. Objectives never weight themselves: the trainer's
weighting strategy combines the named components.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch

from auxir.data.collate import GroupBatch

OBJECTIVES: dict[str, tuple[type[Objective], dict[str, Any]]] = {}


def register_objective(name: str, **defaults: Any) -> Callable[[type[Objective]], type[Objective]]:
    """Register ``cls`` under ``name``; ``defaults`` preset its parameters (for named ablations)."""

    def wrap(cls: type[Objective]) -> type[Objective]:
        OBJECTIVES[name] = (cls, defaults)
        return cls

    return wrap


class Objective:
    """Subclasses set ``Params`` (a dataclass) and implement ``__call__(model, batch) -> loss``."""

    @dataclass
    class Params:
        pass

    name: str = ""
    kind: ClassVar[str] = "auxiliary"  # "ranking" objectives are the ones validation follows
    # What the objective needs beyond a plain GroupBatch and model (e.g. a family's own batch type), or None.
    requires: ClassVar[str | None] = None

    def __init__(self, params: Params):
        self.params = params

    def prepare(self, model, ctx) -> None:
        """Read what the objective needs from the data once, before training (e.g. answer texts); nothing
        by default. ``ctx`` is the experiment's ``auxir.families.Context``."""

    def __call__(self, model, batch: GroupBatch) -> torch.Tensor:
        raise NotImplementedError


def build_objective(name: str, params: dict[str, Any] | None = None) -> Objective:
    """The registered objective ``name`` with ``params`` over its defaults; clear errors for typos."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; valid objectives: {', '.join(sorted(OBJECTIVES))}")
    cls, defaults = OBJECTIVES[name]
    values = {**defaults, **(params or {})}
    valid = {f.name for f in fields(cls.Params)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ValueError(
            f"objective {name!r} has no parameter(s) {unknown}; valid: {sorted(valid) or 'none'}"
        )
    objective = cls(cls.Params(**values))
    objective.name = name
    return objective


def group_scores(model, batch: GroupBatch) -> torch.Tensor:
    """Score every (query, document) pair of the batch's groups in one forward pass: (B, G)."""
    b, g, _ = batch.docs.shape
    query = batch.query.repeat_interleave(g, dim=0)  # (B*G, Lq)
    query_len = batch.query_len.repeat_interleave(g)
    scores = model.score(query, query_len, batch.docs.flatten(0, 1), batch.doc_len.flatten())  # (B*G,)
    return scores.view(b, g)


class RankingObjective(Objective):
    """A ranking loss over the scores of each group (document 0 is the positive)."""

    kind: ClassVar[str] = "ranking"

    def loss(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, model, batch: GroupBatch) -> torch.Tensor:
        return self.loss(group_scores(model, batch), batch.labels)
