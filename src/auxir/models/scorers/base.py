"""The scorer interfaces and their registry.

A ``Scorer`` turns one encoder pass over packed (query, document) pairs into one score per pair. A
``PassageScorer`` scores a document from the passages it is split into: the cross-encoder encodes every
(query, passage) pair of a batch in one pass and hands it the passages' [CLS] vectors, per document.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from auxir.models.scorers.passages import PassageSplit

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

    def check_fits(self, max_query_tokens: int, max_doc_tokens: int) -> None:
        """Raise ``ValueError`` if pairs of up to these many query and document tokens do not suit the
        scorer (the cross-encoder calls it once, with its ``max_query_length`` and what is left of
        ``max_length`` beside a full-length query)."""


class PassageScorer(Scorer):
    """Scores a document from its passages' [CLS] vectors (last layer), aggregated per document.

    ``passages`` says how the cross-encoder splits documents. A packed pair given to ``forward`` holds one
    passage (the cross-encoder cuts its document to the first passage), so ``forward`` scores each row as
    a document of one passage; the masked-token objectives go through it.
    """

    needs_hidden_states = True
    passages: PassageSplit

    def aggregate(
        self,
        passage_cls: torch.Tensor,  # (d, P, H) the last layer's [CLS] vector of each passage
        passage_mask: torch.Tensor,  # (d, P) true on the document's real passages
    ) -> torch.Tensor:  # (d,)
        raise NotImplementedError

    def forward(self, logits, hidden_states, attention_mask, query_mask, doc_mask) -> torch.Tensor:
        cls = hidden_states[-1][:, :1]  # (n, 1, H)
        return self.aggregate(cls, torch.ones(cls.shape[:2], dtype=torch.bool, device=cls.device))

    def check_fits(self, max_query_tokens: int, max_doc_tokens: int) -> None:
        if self.passages.length > max_doc_tokens:
            raise ValueError(
                f"scorer {self.name!r}: passage_length {self.passages.length} does not fit a pair: "
                f"max_length leaves {max_doc_tokens} document tokens beside a query of "
                f"max_query_length {max_query_tokens}; lower passage_length or raise max_length"
            )


def build_scorer(
    name: str, hidden_size: int, num_layers: int, params: dict[str, Any] | None = None
) -> Scorer:
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; valid scorers: {', '.join(sorted(SCORERS))}")
    cls = SCORERS[name]
    valid = [
        p
        for p in inspect.signature(cls.__init__).parameters
        if p not in ("self", "hidden_size", "num_layers")
    ]
    unknown = sorted(set(params or {}) - set(valid))
    if unknown:
        raise ValueError(f"scorer {name!r} has no parameter(s) {unknown}; valid: {valid or 'none'}")
    return cls(hidden_size=hidden_size, num_layers=num_layers, **(params or {}))
