"""List losses over every candidate of a query at once: CODER's ListNet KL and its pairwise ablation.

Input: a batch of lists. A CODER :class:`~auxir.data.candidates.CandidateBatch` gives the model's scores of
N candidate embeddings a query (``model.score_candidates``), graded labels (0 = not relevant) and a mask
of real candidates; a cross-encoder :class:`~auxir.data.collate.GroupBatch` gives its groups' scores and
labels (every document real). Lists without a relevant document carry no signal and are left out of the
mean; a batch of such lists only gives a zero loss (with a gradient of zeros).

* ``listnet_kl`` — eq. 3 of CODER (Zerveas et al., EMNLP 2022, §2.3), ListNet (Cao et al., ICML 2007):
  ``KL(σ(y) ‖ σ(s/τ))`` with σ the softmax over the list's candidates and ``y_i = −inf`` for a non-relevant
  candidate, so the target spreads over the relevant ones by ``exp(grade)``; ``label_smoothing`` ε mixes
  in the uniform distribution over the list: ``(1 − ε)·σ(y) + ε/n``. Example::

    >>> import torch
    >>> loss = ListNetKL(ListNetKL.Params())
    >>> round(loss.loss(torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]])).item(), 4)
    0.4076

* ``pairwise_max_margin`` — the pairwise loss CODER compares against (§4.4, "Multi-Label Max Margin"), as
  ``torch.nn.MultiLabelMarginLoss`` defines it: ``Σ_{i relevant} Σ_{j not} max(0, γ − (s_i − s_j)) / n``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from auxir.objectives.base import Objective, group_scores, register_objective


@dataclass
class ScoredLists:
    scores: torch.Tensor  # (B, N); -inf where there is no candidate
    labels: torch.Tensor  # (B, N) graded relevance, 0 = not relevant
    mask: torch.Tensor  # (B, N) bool, True = a real candidate


def scored_lists(model, batch) -> ScoredLists:
    """The model's scores of the batch's lists: CODER candidate lists, or cross-encoder groups."""
    if hasattr(batch, "doc_emb"):
        return ScoredLists(model.score_candidates(batch), batch.labels, batch.mask)
    scores = group_scores(model, batch)  # (B, G)
    return ScoredLists(scores, batch.labels, torch.ones_like(scores, dtype=torch.bool))


def _zero(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A zero loss that still reaches the scores' graph (-inf entries would turn ``0 * sum`` into NaN)."""
    return scores.masked_fill(~mask, 0.0).sum() * 0.0


class ListObjective(Objective):
    kind = "ranking"

    def loss(
        self, scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, model, batch) -> torch.Tensor:
        lists = scored_lists(model, batch)
        return self.loss(lists.scores, lists.labels, lists.mask)


@register_objective("listnet_kl")
class ListNetKL(ListObjective):
    @dataclass
    class Params:
        temperature: float = 1.0  # τ: the scores' softmax is σ(s/τ); cosine scores want ~0.05
        label_smoothing: float = 0.0  # ε

        def __post_init__(self) -> None:
            if self.temperature <= 0:
                raise ValueError(f"listnet_kl: temperature must be > 0, got {self.temperature}")
            if not 0.0 <= self.label_smoothing < 1.0:
                raise ValueError(f"listnet_kl: label_smoothing must be in [0, 1), got {self.label_smoothing}")

    def loss(
        self, scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        mask = torch.ones_like(scores, dtype=torch.bool) if mask is None else mask
        relevant = (labels > 0) & mask  # (B, N)
        keep = relevant.any(dim=1)  # (B,) lists with something to learn
        if not bool(keep.any()):
            return _zero(scores, mask)
        scores, labels, mask, relevant = (
            scores[keep].float(),
            labels[keep].float(),
            mask[keep],
            relevant[keep],
        )
        target = torch.softmax(labels.masked_fill(~relevant, float("-inf")), dim=1)  # σ(y), (K, N)
        eps = self.params.label_smoothing
        if eps:
            uniform = mask.float() / mask.sum(dim=1, keepdim=True)  # (K, N)
            target = (1.0 - eps) * target + eps * uniform
        log_predicted = torch.log_softmax(
            (scores / self.params.temperature).masked_fill(~mask, float("-inf")), dim=1
        )
        # p·(log p − log q), with 0·log 0 = 0 where the target is zero (log q may be -inf there)
        terms = torch.where(target > 0, target * (torch.log(target.clamp(min=1e-38)) - log_predicted), 0.0)
        return terms.sum(dim=1).mean()


@register_objective("pairwise_max_margin")
class PairwiseMaxMargin(ListObjective):
    @dataclass
    class Params:
        margin: float = 1.0  # γ; torch.nn.MultiLabelMarginLoss uses 1

    def loss(
        self, scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        mask = torch.ones_like(scores, dtype=torch.bool) if mask is None else mask
        relevant = (labels > 0) & mask  # (B, N)
        keep = relevant.any(dim=1)
        if not bool(keep.any()):
            return _zero(scores, mask)
        scores, mask, relevant = (
            scores[keep].float().masked_fill(~mask[keep], 0.0),
            mask[keep],
            relevant[keep],
        )
        negative = mask & ~relevant  # (K, N)
        gaps = scores.unsqueeze(2) - scores.unsqueeze(1)  # (K, N, N) s_i − s_j
        pairs = relevant.unsqueeze(2) & negative.unsqueeze(1)  # (K, N, N) i relevant, j not
        hinge = torch.where(pairs, torch.relu(self.params.margin - gaps), 0.0)
        return (hinge.sum(dim=(1, 2)) / mask.sum(dim=1)).mean()
