"""Aspect learning (MADRM, Kong et al., KDD 2022): aspect prediction (§5, eq. 3) and aspect presence (§6.2, eq. 6).

Input: an ``AspectGroupBatch`` (the ``madrm`` family's batches: every query and document with its aspect
labels) and an ``AspectEncoder`` with prediction heads. Both objectives (and ``in_batch_softmax``) encode the
batch's queries and its B·G documents once per step between them (``encoded``), and sum over the labelled aspects
(never OTHER) and over the sides ``sides`` names, as eq. 8 sums ``L(Q) + L(D)``:

* ``aspect_prediction``: ``L_AP^a = −1/|A_a| Σ_{x ∈ A_a} log softmax(E_a U_a^T + b_a)[x]`` for a text with
  annotations ``A_a``, averaged over the texts that have at least one in-vocabulary annotation of ``a``
  (the others are skipped);
* ``aspect_presence``: the BCE of the presence head ``P_a`` against ``y_a`` (does the text have an
  annotation of ``a``), averaged over all texts; only with ``fusion: presence``.

λ of eq. 8 is the objective's ``weight`` in the recipe::

    objectives:
      - {name: in_batch_softmax, weight: 1.0}
      - {name: aspect_prediction, weight: 0.1}   # λ
      - {name: aspect_presence, weight: 0.1}     # λ

>>> from auxir.objectives import build_objective
>>> loss = build_objective("aspect_prediction", {"sides": "both"})  # loss(model, batch) -> scalar
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch.nn import functional as F

from auxir.data.aspects import AspectGroupBatch
from auxir.objectives.base import Objective, register_objective

Sides = Literal["both", "query", "document"]


def aspect_prediction_loss(logits: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """Eq. 3 for one aspect: logits (n, |V_a|), gold (n, |V_a|) multi-hot; the mean over the texts with a
    gold value of each text's mean −log P(x) over its gold values x (0 when no text has one)."""
    log_p = F.log_softmax(logits.float(), dim=-1)  # (n, V)
    gold = gold.float()
    count = gold.sum(-1)  # (n,) annotations per text
    per_text = -(log_p * gold).sum(-1) / count.clamp(min=1)  # (n,)
    labelled = (count > 0).float()
    return (per_text * labelled).sum() / labelled.sum().clamp(min=1)


def aspect_presence_loss(logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Eq. 6 summed over aspects, averaged over texts: logits and labels (n, A)."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), present.float(), reduction="none")  # (n, A)
    return bce.sum(-1).mean()


def prediction_term(encoding, gold: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 3 summed over the labelled aspects of one side: ``encoding.aspect_logits`` against ``gold``."""
    total = encoding.vectors.new_zeros((), dtype=torch.float32)
    for name, logits in encoding.aspect_logits.items():
        total = total + aspect_prediction_loss(logits, gold[name])
    return total


def presence_term(encoding, present: torch.Tensor, objective: str = "aspect_presence") -> torch.Tensor:
    """Eq. 6 of one side: the presence head of the labelled slots (never OTHER, the last) against ``present``."""
    if encoding.presence_logits is None:
        raise ValueError(
            f"objective {objective!r}: expected a presence head (architecture.fusion: presence "
            "with aspects > 0), found none"
        )
    labelled = present.shape[1]  # OTHER (the last slot) has no presence label
    return aspect_presence_loss(encoding.presence_logits[:, :labelled], present)


def side_views(model, batch: AspectGroupBatch, sides: Sides, objective: str):
    """``(encoding, gold, present)`` of the queries and/or the flattened documents, each side encoded once
    per batch (kept in ``batch.encodings`` for the other aspect objective)."""
    if not isinstance(batch, AspectGroupBatch):
        raise ValueError(
            f"objective {objective!r}: expected an AspectGroupBatch (family madrm with architecture.labels), "
            f"found {type(batch).__name__}"
        )
    if getattr(model, "vocabulary", None) is None:
        raise ValueError(
            f"objective {objective!r}: expected an AspectEncoder with aspect labels, found "
            f"{type(model).__name__} without (set architecture.labels)"
        )
    views = []
    if sides in ("both", "query"):
        views.append((encoded(model, batch, "query"), batch.query_gold, batch.query_present))
    if sides in ("both", "document"):
        gold = {name: hot.flatten(0, 1) for name, hot in batch.doc_gold.items()}
        views.append((encoded(model, batch, "document"), gold, batch.doc_present.flatten(0, 1)))
    return views


def encoded(model, batch: AspectGroupBatch, side: Literal["query", "document"]):
    """The batch's queries (B) or its documents (B·G, group by group) as ``model.encode_aspects`` encodes them
    in this step: encoded on first use and kept in ``batch.encodings``, so that every objective of the step
    (``in_batch_softmax`` and the aspect objectives) reads one encoding."""
    if side not in batch.encodings:
        if side == "query":
            batch.encodings[side] = model.encode_aspects(batch.query, batch.query_len, "query")
        else:
            batch.encodings[side] = model.encode_aspects(
                batch.docs.flatten(0, 1), batch.doc_len.flatten(), "document"
            )
    return batch.encodings[side]


@register_objective("aspect_prediction")
class AspectPrediction(Objective):
    requires = "an AspectGroupBatch from the madrm family"

    @dataclass
    class Params:
        sides: Sides = "both"  # the paper's ablation MADRAL^−query / ^−doc learns on one side only

    def __init__(self, params: Params):
        super().__init__(params)
        if params.sides not in ("both", "query", "document"):
            raise ValueError(
                f"aspect_prediction: sides must be both, query or document, found {params.sides!r}"
            )

    def __call__(self, model, batch: AspectGroupBatch) -> torch.Tensor:
        total = batch.query.new_zeros((), dtype=torch.float32)
        for encoding, gold, _ in side_views(model, batch, self.params.sides, self.name):
            total = total + prediction_term(encoding, gold)
        return total


@register_objective("aspect_presence")
class AspectPresence(Objective):
    requires = "an AspectGroupBatch from the madrm family"

    @dataclass
    class Params:
        sides: Sides = "both"

    def __init__(self, params: Params):
        super().__init__(params)
        if params.sides not in ("both", "query", "document"):
            raise ValueError(
                f"aspect_presence: sides must be both, query or document, found {params.sides!r}"
            )

    def __call__(self, model, batch: AspectGroupBatch) -> torch.Tensor:
        total = batch.query.new_zeros((), dtype=torch.float32)
        for encoding, _, present in side_views(model, batch, self.params.sides, self.name):
            total = total + presence_term(encoding, present, self.name)
        return total
