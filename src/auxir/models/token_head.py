"""Token-prediction head: hidden states to vocabulary logits (the MQP decoder, SJTF §3.2).

SJTF's decoder is "one linear layer". By default its weight is tied to the encoder's input embeddings
(only a bias is new), which keeps the head small and gives it a meaningful start when no MLM head was
pretrained, as with sentence-transformers checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class TokenHead(nn.Module):
    def __init__(self, hidden_size: int, vocab_size: int, tied_to: nn.Embedding | None, transform: bool):
        super().__init__()
        self.transform = (
            nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.LayerNorm(hidden_size))
            if transform
            else nn.Identity()
        )
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        # A tied head must not register the embedding as its own parameter (it would be saved twice).
        self._tied = [tied_to] if tied_to is not None else None
        self.weight = (
            None if tied_to is not None else nn.Parameter(torch.randn(vocab_size, hidden_size) * 0.02)
        )

    @property
    def decoder_weight(self) -> torch.Tensor:
        return self._tied[0].weight if self._tied is not None else self.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (..., H) -> (..., V)
        return F.linear(self.transform(hidden), self.decoder_weight, self.bias)
