"""Document-level representation learning beside the ranking loss, for query by document (QBD).

Abolghasemi, Verberne & Azzopardi, "Improving BERT-based Query-by-Document Retrieval with Multi-Task
Optimization", ECIR 2022 (the multi-task fine-tuning of the BERT re-ranker; only the abstract is in
``papers/``, DESIGN.md gives the method as the authors' code does it). In QBD the query is itself a
document; the re-ranker's own encoder also learns to place a query document nearer to its relevant document
than to a non-relevant one, on the ranking loss's own samples (no extra training data).

Input: a ``GroupBatch`` (document 0 of each group is the positive) and a model that encodes one text alone.
The query and the group's documents are each encoded **alone** (``[CLS] text [SEP]``, not as a pair), one
vector per text: the last layer's [CLS] vector (``pooling: cls``, as the authors) or the mean of its token
vectors (``pooling: mean``). With ``q``, ``d⁺`` and each negative ``d⁻`` of the group::

    L = mean over groups and negatives of relu(d(q, d⁺) − d(q, d⁻) + margin)

``d`` is the Euclidean distance ‖a − b‖₂ (``torch.nn.TripletMarginLoss``; its ``eps`` of 1e-6 is added to
the difference) or ``1 − cos(a, b)`` (``distance: cosine``). ``negatives: all`` makes one triplet of every
(positive, negative) pair of the group, the pairs ``pairwise_softmax`` and ``pairwise_hinge`` average over;
``first`` only the group's first negative. With one negative per group (the authors' pairwise training,
``samples.num_negatives: 1``) the two are the same.

A cross-encoder encodes the B queries and the B·g documents it needs in one forward pass of its backbone's
encoder (B + B·G rows with ``negatives: all``, B + 2B with ``first``); a passage scorer's document is its
first passage, as in its pairs. A model with ``encode_ids`` (``BiEncoder``, ``AspectEncoder``) gives its own
vectors (its own pooling and normalisation; ``pooling`` does not apply), queries from its query tower.

The weights of the QBD recipe (``recipes/qbd-multitask.yaml``), 1 and 1 as in the authors' code::

    objectives:
      - {name: pairwise_softmax, weight: 1.0}
      - {name: doc_representation, weight: 1.0, params: {distance: euclidean, margin: 1.0}}

>>> import torch
>>> q, pos, neg = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([[[0.0, 1.0]]])
>>> round(triplet_loss(q, pos, neg, "euclidean", 1.0).item(), 4)  # relu(5 − 1 + 1)
5.0
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch.nn import functional as F

from auxir.data.collate import GroupBatch
from auxir.objectives.base import Objective, register_objective
from auxir.retrieval.dense import pool

Distance = Literal["euclidean", "cosine"]
Pooling = Literal["cls", "mean"]
Negatives = Literal["all", "first"]


def distance(a: torch.Tensor, b: torch.Tensor, kind: Distance) -> torch.Tensor:  # (..., H) -> (...)
    """Distances of the (broadcast) rows of ``a`` and ``b``."""
    if kind == "euclidean":
        return F.pairwise_distance(a, b)  # ‖a − b + eps‖₂, as torch.nn.TripletMarginLoss
    return 1.0 - F.cosine_similarity(a, b, dim=-1)


def triplet_loss(
    query: torch.Tensor,  # (B, H)
    positive: torch.Tensor,  # (B, H)
    negatives: torch.Tensor,  # (B, N, H)
    kind: Distance,
    margin: float,
) -> torch.Tensor:
    """``relu(d(q, d⁺) − d(q, d⁻) + margin)`` averaged over the B groups and their N negatives, in float32
    (bf16 keeps ~3 digits of a distance). For Euclidean distances it is ``torch.nn.TripletMarginLoss``."""
    with torch.autocast(query.device.type, enabled=False):
        query, positive, negatives = query.float(), positive.float(), negatives.float()
        to_positive = distance(query, positive, kind)  # (B,)
        to_negatives = distance(query.unsqueeze(1), negatives, kind)  # (B, N)
        return torch.relu(to_positive.unsqueeze(1) - to_negatives + margin).mean()


def encode_alone(model, ids: torch.Tensor, lengths: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """One vector per text (n, H), each text encoded alone as ``prefix text suffix`` (BERT ``[CLS] x [SEP]``)
    by the cross-encoder's encoder (the backbone without its score head): its last-layer [CLS] vector
    (position 0) or the mean over the attended positions, as ``CrossEncoder.embed``."""
    packed = model.template.pack_single(ids, lengths)  # (n, W)
    encoder = model.backbone.base_model
    extra = (
        {"token_type_ids": packed.token_type_ids}
        if "token_type_ids" in inspect.signature(encoder.forward).parameters
        else {}
    )
    hidden = encoder(input_ids=packed.input_ids, attention_mask=packed.attention_mask, **extra)
    return pool(hidden.last_hidden_state, packed.attention_mask, pooling)  # (n, H)


def _pad_to(ids: torch.Tensor, width: int, pad_id: int) -> torch.Tensor:  # (n, L) -> (n, width)
    return F.pad(ids, (0, width - ids.shape[1]), value=pad_id)


@register_objective("doc_representation")
class DocRepresentation(Objective):
    @dataclass
    class Params:
        distance: Distance = "euclidean"  # the authors: ‖·‖₂
        margin: float = 1.0  # the authors: 1
        pooling: Pooling = "cls"  # the authors: the last layer's [CLS]; cross-encoders only
        negatives: Negatives = "all"  # one triplet per (positive, negative) pair, as pairwise_softmax

        def __post_init__(self) -> None:
            for name, kind in (("distance", Distance), ("pooling", Pooling), ("negatives", Negatives)):
                value = getattr(self, name)
                if value not in get_args(kind):
                    raise ValueError(
                        f"doc_representation: {name} must be one of {list(get_args(kind))}, found {value!r}"
                    )
            margin = self.margin
            if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < math.inf:
                raise ValueError(f"doc_representation: margin must be a number >= 0, found {margin!r}")

    def __call__(self, model, batch: GroupBatch) -> torch.Tensor:
        if not isinstance(batch, GroupBatch):
            raise ValueError(
                f"objective {self.name!r}: expected a GroupBatch (query and its documents as token ids), "
                f"found {type(batch).__name__}"
            )
        if batch.group_size < 2:
            raise ValueError(
                f"objective {self.name!r}: expected groups of a positive and at least one negative "
                f"(samples.num_negatives >= 1), found groups of {batch.group_size}"
            )
        columns = 2 if self.params.negatives == "first" else batch.group_size
        docs = batch.docs[:, :columns]  # (B, g, Ld)
        doc_len = batch.doc_len[:, :columns]  # (B, g)
        b, g, _ = docs.shape
        query, docs = self._vectors(
            model, batch.query, batch.query_len, docs.flatten(0, 1), doc_len.flatten()
        )
        docs = docs.view(b, g, -1)  # (B, g, H)
        return triplet_loss(query, docs[:, 0], docs[:, 1:], self.params.distance, self.params.margin)

    def _vectors(self, model, query, query_len, docs, doc_len) -> tuple[torch.Tensor, torch.Tensor]:
        """The query vectors (B, H) and the document vectors (B·g, H), each text encoded alone."""
        if hasattr(model, "encode_ids"):
            # A bi-encoder's towers may differ by side: two passes, each through the tower its scores use.
            return model.encode_ids(query, query_len, "query"), model.encode_ids(docs, doc_len, "document")
        if not (hasattr(model, "template") and hasattr(model, "backbone")):
            raise ValueError(
                f"objective {self.name!r}: expected a CrossEncoder (template and backbone) or a model with "
                f"encode_ids, found {type(model).__name__}"
            )
        if hasattr(model, "document_in_pair"):
            docs, doc_len = model.document_in_pair(docs, doc_len)  # a passage scorer: the first passage
            query, query_len = model.query_in_pair(query, query_len)  # a long query: its first passage
        width = max(query.shape[1], docs.shape[1])
        pad = model.template.pad_id
        rows = torch.cat([_pad_to(query, width, pad), _pad_to(docs, width, pad)])  # (B + B·g, L)
        vectors = encode_alone(model, rows, torch.cat([query_len, doc_len]), self.params.pooling)
        return vectors[: query.shape[0]], vectors[query.shape[0] :]
