"""monoBERT: the [CLS] vector through a linear layer (Nogueira & Cho, 2019).

The linear layer is the backbone's own sequence-classification head (pooler + classifier for BERT), so
a model trained with this scorer is a plain ``AutoModelForSequenceClassification`` checkpoint that
sentence-transformers' ``CrossEncoder`` loads as is.
"""

from __future__ import annotations

import torch

from auxir.models.scorers.base import Scorer, register_scorer


@register_scorer("cls")
class ClsScorer(Scorer):
    def __init__(self, hidden_size: int, num_layers: int):
        super().__init__()

    def forward(self, logits, hidden_states, attention_mask, query_mask, doc_mask) -> torch.Tensor:
        return logits  # (n,)
