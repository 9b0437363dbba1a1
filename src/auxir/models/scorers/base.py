"""The scorer interface and its registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

SCORERS: dict[str, type[Scorer]] = {}


def register_scorer(name: str) -> Callable[[type[Scorer]], type[Scorer]]:
    def wrap(cls: type[Scorer]) -> type[Scorer]:
        SCORERS[name] = cls
        cls.name = name
        return cls

    return wrap


class Scorer(nn.Module):
    """Turns one forward pass of the encoder into one relevance score per packed pair.

    ``needs_hidden_states`` tells the model whether every layer's outputs must be returned (CEDR-style
    scorers read them); the CLS scorer needs only the sequence-classification logits.
    """

    name: str = ""
    needs_hidden_states: bool = False

    def forward(
        self,
        logits: torch.Tensor,  # (n,) the backbone's sequence-classification output
        hidden_states: tuple[torch.Tensor, ...] | None,  # each (n, W, H)
        attention_mask: torch.Tensor,  # (n, W)
        query_mask: torch.Tensor,  # (n, W) true on query tokens
        doc_mask: torch.Tensor,  # (n, W) true on document tokens
    ) -> torch.Tensor:  # (n,)
        raise NotImplementedError


def build_scorer(
    name: str, hidden_size: int, num_layers: int, params: dict[str, Any] | None = None
) -> Scorer:
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; valid scorers: {', '.join(sorted(SCORERS))}")
    return SCORERS[name](hidden_size=hidden_size, num_layers=num_layers, **(params or {}))
