"""CEDR-PACRR: PACRR's n-gram convolutions and k-max pooling over every layer's similarity matrix,
combined with the [CLS] score (MacAvaney et al., CEDR, SIGIR 2019, §3; PACRR: Hui et al., EMNLP 2017).

The similarity matrices of all layers are the input channels. For each n-gram size ``g``, ``filters``
convolutions of ``g × g`` (zero padding after the last row and column) and a ReLU give, at each query
token and document position, the strongest filter response; the ``k_max`` largest over the document are
that query token's signals. The signals of ``query_length`` query positions (a shorter query is padded
with zeros) and the [CLS] score go through CEDR's two hidden layers of 32 ReLU units to the score.

As in :mod:`auxir.models.scorers.cedr_knrm`, the [CLS] evidence is the backbone's own score (its
sequence-classification head) rather than the [CLS] vector CEDR feeds in: the MLP sees the one projection
of [CLS] that is trained to rank, and the head stays in use (see that module for why).

Example (a recipe's ``architecture``)::

    scorer: pacrr
    scorer_params: {query_length: 32}   # ≥ max_query_length; CEDR: 20 (its queries are cut there)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from auxir.models.scorers.base import Scorer, register_scorer
from auxir.models.scorers.similarity import similarity_matrices


class NgramKMax(nn.Module):
    """PACRR's signals for one n-gram size: (n, V, Q, D) similarities -> (n, Q, k) strongest responses."""

    def __init__(self, ngram: int, channels: int, filters: int, k: int):
        super().__init__()
        self.ngram, self.k = ngram, k
        self.conv = nn.Conv2d(channels, filters, ngram)

    def forward(self, similarity: torch.Tensor, doc_valid: torch.Tensor) -> torch.Tensor:
        g = self.ngram
        padded = F.pad(similarity, (0, g - 1, 0, g - 1))  # (n, V, Q+g-1, D+g-1)
        response = F.relu(self.conv(padded)).amax(dim=1)  # (n, Q, D) the strongest filter
        # An n-gram starts on a document token; beyond the document there is nothing to find.
        response = response.masked_fill(~doc_valid.unsqueeze(1), float("-inf"))
        k = min(self.k, response.shape[-1])
        top = response.topk(k, dim=-1).values  # (n, Q, k)
        top = F.pad(top, (0, self.k - k), value=float("-inf"))
        return top.masked_fill(top == float("-inf"), 0.0)  # documents shorter than k: no further signal


@register_scorer("pacrr")
class PacrrScorer(Scorer):
    needs_hidden_states = True

    def __init__(
        self,
        hidden_size: int,
        num_layers: int,
        query_length: int = 32,
        min_ngram: int = 1,
        max_ngram: int = 3,
        filters: int = 32,
        k_max: int = 2,
        hidden: int = 32,
    ):
        super().__init__()
        if query_length < 1 or not 1 <= min_ngram <= max_ngram or filters < 1 or k_max < 1 or hidden < 1:
            raise ValueError(
                "pacrr needs query_length, filters, k_max, hidden ≥ 1 and 1 ≤ min_ngram ≤ max_ngram; found "
                f"query_length={query_length}, min_ngram={min_ngram}, max_ngram={max_ngram}, "
                f"filters={filters}, k_max={k_max}, hidden={hidden}"
            )
        self.query_length = query_length
        self.views = num_layers + 1  # the embedding output and every layer
        self.ngrams = nn.ModuleList(
            NgramKMax(g, self.views, filters, k_max) for g in range(min_ngram, max_ngram + 1)
        )
        n_signals = query_length * len(self.ngrams) * k_max
        self.mlp = nn.Sequential(
            nn.Linear(n_signals + 1, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def check_fits(self, max_query_tokens: int, max_doc_tokens: int) -> None:
        if max_query_tokens > self.query_length:
            raise ValueError(
                f"pacrr: query_length {self.query_length} is shorter than max_query_length {max_query_tokens}: "
                "the query tokens past it would be ignored; set scorer_params.query_length ≥ max_query_length"
            )

    def forward(self, logits, hidden_states, attention_mask, query_mask, doc_mask) -> torch.Tensor:
        if len(hidden_states) != self.views:
            raise ValueError(f"pacrr: built for {self.views} hidden states, got {len(hidden_states)}")
        sim = similarity_matrices(hidden_states, query_mask, doc_mask, self.query_length)
        signals = torch.cat([ngram(sim.values, sim.doc_valid) for ngram in self.ngrams], dim=2)  # (n, Q, G*k)
        signals = signals * sim.query_valid.unsqueeze(-1)  # padding query positions carry no signal
        combined = torch.cat([signals.flatten(1), logits.unsqueeze(1).to(signals.dtype)], dim=1)
        return self.mlp(combined).squeeze(-1)  # (n,)
