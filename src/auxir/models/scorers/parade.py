"""PARADE: a document's passages encoded with the query, their [CLS] vectors aggregated into one document
representation, and a linear layer to the score (Li et al., "PARADE: Passage Representation Aggregation
for Document Reranking", 2020, §3).

Aggregations (§3.2): ``max`` and ``mean`` (element-wise over the passages), ``attention`` (a learned
weight per passage, softmax over the document's passages, the weighted sum), ``transformer`` (a learned
[CLS] vector prepended to the passage vectors, learned passage-position embeddings added, two transformer
layers; the output at the [CLS] position is the document). Every aggregation sees only one document's
real passages: padding passages are masked out of the max, the mean, the softmax and the attention.

Example (a recipe's ``architecture``)::

    scorer: parade
    scorer_params: {aggregation: transformer, passage_length: 225, stride: 200, max_passages: 16}
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

from auxir.models.scorers.base import PassageScorer, register_scorer
from auxir.models.scorers.passages import PassageSplit

Aggregation = Literal["max", "mean", "attention", "transformer"]


class PassageTransformer(nn.Module):
    """PARADE-Transformer's aggregator: (d, P, H) passages -> (d, H), read at its own [CLS] position."""

    def __init__(self, hidden_size: int, max_passages: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.cls = nn.Parameter(torch.randn(hidden_size) * 0.02)
        self.positions = nn.Parameter(torch.randn(max_passages + 1, hidden_size) * 0.02)  # [CLS] first
        layer = nn.TransformerEncoderLayer(
            hidden_size, heads, 4 * hidden_size, dropout, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, passages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        d, p, h = passages.shape
        tokens = torch.cat([self.cls.expand(d, 1, h).to(passages.dtype), passages], dim=1)  # (d, 1+P, H)
        tokens = tokens + self.positions[: p + 1].to(passages.dtype)
        keep = torch.cat([mask.new_ones(d, 1), mask], dim=1)  # (d, 1+P)
        return self.encoder(tokens, src_key_padding_mask=~keep)[:, 0]  # (d, H)


@register_scorer("parade")
class ParadeScorer(PassageScorer):
    def __init__(
        self,
        hidden_size: int,
        num_layers: int,
        aggregation: Aggregation = "transformer",
        passage_length: int = 225,
        stride: int = 200,
        max_passages: int = 16,
        transformer_layers: int = 2,
        transformer_heads: int | None = None,
        dropout: float = 0.1,
    ):
        super().__init__()
        if aggregation not in get_args(Aggregation):
            raise ValueError(
                f"parade: aggregation {aggregation!r} is not one of {list(get_args(Aggregation))}"
            )
        self.passages = PassageSplit(passage_length, stride, max_passages)
        self.aggregation = aggregation
        self.attention = nn.Linear(hidden_size, 1) if aggregation == "attention" else None
        self.transformer = None
        if aggregation == "transformer":
            heads = transformer_heads or max(1, hidden_size // 64)  # BERT's heads are 64 wide
            if hidden_size % heads:
                raise ValueError(
                    f"parade: transformer_heads {heads} does not divide hidden size {hidden_size}"
                )
            self.transformer = PassageTransformer(
                hidden_size, max_passages, transformer_layers, heads, dropout
            )
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, 1)

    def aggregate(self, passage_cls: torch.Tensor, passage_mask: torch.Tensor) -> torch.Tensor:
        mask = passage_mask.unsqueeze(-1)  # (d, P, 1)
        if self.aggregation == "max":
            document = passage_cls.masked_fill(~mask, float("-inf")).amax(dim=1)  # (d, H)
        elif self.aggregation == "mean":
            document = (passage_cls * mask).sum(1) / mask.sum(1)  # (d, H)
        elif self.aggregation == "attention":
            logits = self.attention(passage_cls).masked_fill(~mask, float("-inf"))  # (d, P, 1)
            document = (logits.softmax(dim=1) * passage_cls).sum(1)  # (d, H)
        else:
            document = self.transformer(passage_cls, passage_mask)  # (d, H)
        return self.linear(self.dropout(document)).squeeze(-1)  # (d,)
