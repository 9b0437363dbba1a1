"""CEDR-KNRM: KNRM kernel pooling over every layer's similarity matrix, combined with the [CLS] score
(MacAvaney et al., "CEDR: Contextualized Embeddings for Document Ranking", SIGIR 2019, §3; KNRM: Xiong
et al., SIGIR 2017).

For each layer ``v`` (the embedding output included), kernel ``k`` (a Gaussian of mean ``μ_k`` and width
``σ_k``) and query token ``i``, the soft match count is ``K_vk(i) = Σ_j exp(−(s_v(i, j) − μ_k)² / 2σ_k²)``
over the document tokens ``j``; the feature is ``φ_vk = Σ_i log(K_vk(i) + 1e-6)`` over the query tokens.
CEDR's kernels: μ = −0.9, −0.7, …, 0.9 with σ = 0.1, and the exact-match kernel μ = 1, σ = 0.001. The
score is one linear layer over ``[φ; s_cls]``.

``s_cls`` is the backbone's own [CLS] score (its sequence-classification head) where CEDR feeds the 768-d
[CLS] vector into the same linear layer. With the pooler skipped (``pooler: auto`` on sentence-transformers
checkpoints) the head is one linear layer over that vector, so the two are the same family of functions;
reading the score keeps the head in use, follows the ``pooler`` setting, and lets a model start from a
trained monoBERT checkpoint with its score intact: the kernel weights start at zero, the score's at one.

Example (a recipe's ``architecture``)::

    scorer: cedr_knrm
    scorer_params: {}            # CEDR's 11 kernels; mus / sigmas to change them
"""

from __future__ import annotations

import torch
from torch import nn

from auxir.models.scorers.base import Scorer, register_scorer
from auxir.models.scorers.similarity import similarity_matrices

CEDR_MUS = (-0.9, -0.7, -0.5, -0.3, -0.1, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
CEDR_SIGMAS = (0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.001)


class KernelPooling(nn.Module):
    """KNRM's soft-match features of similarity matrices, with fixed kernels."""

    def __init__(self, mus: tuple[float, ...], sigmas: tuple[float, ...]):
        super().__init__()
        if len(mus) != len(sigmas) or not mus or min(sigmas) <= 0:
            raise ValueError(
                f"kernel pooling needs as many mus as sigmas (≥ 1) and every sigma > 0; found mus={list(mus)}, "
                f"sigmas={list(sigmas)}"
            )
        # Not saved: the config holds them. Fixed as in KNRM; CEDR makes them trainable at lr 1e-3, where one
        # Adam step is as large as the exact-match kernel's σ.
        self.register_buffer("mus", torch.tensor(mus, dtype=torch.float32), persistent=False)
        self.register_buffer("sigmas", torch.tensor(sigmas, dtype=torch.float32), persistent=False)

    def forward(
        self,
        similarity: torch.Tensor,  # (n, V, Q, D)
        query_valid: torch.Tensor,  # (n, Q)
        doc_valid: torch.Tensor,  # (n, D)
    ) -> torch.Tensor:  # (n, V, K)
        with torch.autocast(similarity.device.type, enabled=False):
            z = (similarity.float().unsqueeze(-1) - self.mus) / self.sigmas  # (n, V, Q, D, K)
            kernels = torch.exp(-0.5 * z * z) * doc_valid[:, None, None, :, None]
            soft_counts = kernels.sum(3)  # (n, V, Q, K) over the document
            per_term = torch.log(soft_counts + 1e-6) * query_valid[:, None, :, None]
            return per_term.sum(2)  # (n, V, K) over the query


@register_scorer("cedr_knrm")
class CedrKnrmScorer(Scorer):
    needs_hidden_states = True

    def __init__(
        self,
        hidden_size: int,
        num_layers: int,
        mus: tuple[float, ...] = CEDR_MUS,
        sigmas: tuple[float, ...] = CEDR_SIGMAS,
    ):
        super().__init__()
        self.kernels = KernelPooling(tuple(mus), tuple(sigmas))
        self.views = num_layers + 1  # the embedding output and every layer
        self.combine = nn.Linear(self.views * len(mus) + 1, 1)
        with torch.no_grad():  # start as the [CLS] score alone
            self.combine.weight.zero_()
            self.combine.weight[0, -1] = 1.0
            self.combine.bias.zero_()

    def forward(self, logits, hidden_states, attention_mask, query_mask, doc_mask) -> torch.Tensor:
        if len(hidden_states) != self.views:
            raise ValueError(f"cedr_knrm: built for {self.views} hidden states, got {len(hidden_states)}")
        sim = similarity_matrices(hidden_states, query_mask, doc_mask)
        features = self.kernels(sim.values, sim.query_valid, sim.doc_valid).flatten(1)  # (n, V*K)
        combined = torch.cat([features, logits.float().unsqueeze(1)], dim=1)  # (n, V*K + 1)
        # float32: the features reach hundreds, where bfloat16 keeps no fractional part
        with torch.autocast(combined.device.type, enabled=False):
            return self.combine(combined).squeeze(-1)  # (n,)
