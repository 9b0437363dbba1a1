"""Generative auxiliary tasks of GDMTL (Liu et al., WWW 2021): query generation and answer generation.

Each packs a source and a target into one pair, runs the encoder under mixed attention (§4.2, eq. 7: the
source bidirectional, the target causal; ``CrossEncoder.mixed_attention``) and decodes, with the model's token
head, every target token from the state one position before it. The loss is eq. 5: the sum over a target's
tokens of −log P(tokenᵗ | source, tokens before t), averaged over the batch's targets (eq. 4, one positive a
group; ``reduction: mean`` averages over tokens instead, as seq2seq libraries do).

* ``query_generation`` (§4.1): source = the group's positive document, target = the query, passage first:
  ``[CLS] P [SEP] Q [SEP]``.
* ``answer_generation`` (§5.2, GDMTL+): source = the positive passage ⊕ the query, target = the query's
  answer, read from the query metadata field ``field`` (PubMedQA: ``long_answer``):
  ``[CLS] P [SEP] Q [SEP] A [SEP]``. The answers are tokenised once, before training, by ``prepare``.
  ``passage_field`` reads P from a query metadata field instead of the positive document: for answer
  sentence selection (WikiQA), where the positive document *is* the answer, P is the page it came from.

``stop: true`` also trains the end of the target: the state after its last token predicts the ``[SEP]`` that
closes it, so that ``auxir generate-queries`` learns where a query ends. Eq. 5 sums over the query's own
tokens only (the default, ``stop: false``); a model trained that way never predicts the end and every
generated query runs to ``--max-length`` tokens. (An encoder–decoder's labels end with it either way.)

``prefix: true`` puts the task identifier of §5.2 before the source as text (``sum:`` for query generation,
``answer:`` for answers); ``rank:`` for the ranking pairs is ``architecture.task_prefix``. Sources are cut
so that a pair stays within ``architecture.max_length``. The ranking objective keeps plain bidirectional
attention: only these views use the mixed mask. Example (a recipe entry)::

    objectives:
      - {name: pairwise_hinge, weight: 1.0}
      - {name: query_generation, weight: 1.0, params: {prefix: true}}
      - {name: answer_generation, weight: 1.0, params: {field: long_answer, prefix: true}}
    weighting: {strategy: uncertainty}     # eq. 6

Input: a ``GroupBatch`` (document 0 of each group its positive) and a ``CrossEncoder`` (its token head
decodes; ``mixed_attention`` needs the eager or sdpa attention implementation) or a ``Seq2SeqRanker``
(GDMTL_S / GDMTL_C, §4.3: the source goes to its encoder, the target to its decoder; ``next_token_loss``).

>>> from auxir.objectives import build_objective
>>> loss = build_objective("query_generation", {"prefix": True})  # loss(model, batch) -> scalar
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch.nn import functional as F

from auxir.data.collate import GroupBatch
from auxir.data.records import Query
from auxir.data.token_cache import TokenCache, pad_stack
from auxir.models.cross_encoder import prepend
from auxir.objectives.base import Objective, register_objective

if TYPE_CHECKING:
    from auxir.families.base import Context

Reduction = Literal["sum", "mean"]


def concat_texts(
    first: torch.Tensor, first_len: torch.Tensor, second: torch.Tensor, second_len: torch.Tensor, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's first text followed by its second, both right-padded: (n, W) ids and (n,) lengths."""
    n = first.shape[0]
    total = first_len + second_len  # (n,)
    width = max(int(total.max()), 1)
    pos = torch.arange(width, device=first.device).expand(n, width)  # (n, W)
    pad = torch.full((n, 1), pad_id, dtype=first.dtype, device=first.device)
    source = torch.cat([first, second.to(first.dtype), pad], dim=1)  # (n, L1 + L2 + 1)
    start = first_len.unsqueeze(1)  # (n, 1)
    index = torch.where(pos < start, pos, first.shape[1] + pos - start)
    index = torch.where(pos < total.unsqueeze(1), index, source.shape[1] - 1)
    return source.gather(1, index), total


def next_token_loss(
    model,
    source: torch.Tensor,  # (n, Ls) right-padded ids
    source_len: torch.Tensor,  # (n,)
    target: torch.Tensor,  # (n, Lt)
    target_len: torch.Tensor,  # (n,)
    reduction: Reduction = "sum",
    stop: bool = False,
) -> torch.Tensor:
    """Eq. 5 under mixed attention: each target token decoded from the state one position before it (the
    frame token before the target for the first). ``sum``: per-target sums averaged over the targets that
    have a token; ``mean``: the mean over all target tokens. Padding and empty targets add nothing.
    ``stop``: each target's closing ``[SEP]`` is one more label (decoded from the state of its last token),
    counted as a token of the target.

    An encoder-decoder (``Seq2SeqRanker``, GDMTL §4.3) has a decoder for this: it computes the loss itself,
    ``source`` → encoder and ``target`` → decoder (``generation_loss``), with no mixed attention."""
    if hasattr(model, "generation_loss"):
        return model.generation_loss(source, source_len, target, target_len, reduction)
    # Cut each source so that the pair fits in max_length beside its target and the frame tokens.
    room = model.config.max_length - model.template.num_special - target_len  # (n,)
    source_len = torch.minimum(source_len, room.clamp(min=0))
    out = model.mixed_attention(source, source_len, target, target_len)
    hidden = out.last_hidden_state  # (n, W, H)
    steps = torch.arange(target.shape[1], device=target.device)  # (Lt,)
    rows, cols = (steps < target_len.unsqueeze(1)).nonzero(as_tuple=True)  # (N,) each: real target tokens
    labels = target[rows, cols].long()  # (N,)
    if stop:  # one more label per target: the [SEP] after its last token
        every = torch.arange(len(target), device=target.device)  # (n,)
        rows, cols = torch.cat([rows, every]), torch.cat([cols, target_len.to(cols.dtype)])
        labels = torch.cat([labels, torch.full_like(every, model.tokenizer.sep_token_id)])
    if rows.numel() == 0:  # no target token in this batch; keep the head in the graph for DDP
        return model.token_head(hidden[:, 0]).float().sum() * 0.0
    where = out.target_start[rows, 0] - 1 + cols  # (N,) the position before each label
    logits = model.token_head(hidden[rows, where]).float()  # (N, V)
    nll = F.cross_entropy(logits, labels, reduction="none")  # (N,)
    if reduction == "mean":
        return nll.mean()
    return nll.sum() / ((target_len > 0) | stop).sum()


class _Generation(Objective):
    """The positive document of each group, the view's source and target, and the loss of eq. 5."""

    task_prefix = ""

    def __init__(self, params):
        super().__init__(params)
        if not isinstance(params.prefix, bool):
            raise ValueError(f"{type(self).__name__}: prefix must be true or false, found {params.prefix!r}")
        if not isinstance(params.stop, bool):
            raise ValueError(f"{type(self).__name__}: stop must be true or false, found {params.stop!r}")
        if params.reduction not in ("sum", "mean"):
            raise ValueError(
                f"{type(self).__name__}: reduction must be 'sum' or 'mean', found {params.reduction!r}"
            )

    def positives(self, model, batch: GroupBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Each group's positive document (document 0), as one pair holds it: (B, Ld) ids, (B,) lengths."""
        prefix = model.text_ids(self.task_prefix) if self.params.prefix else ()
        doc, doc_len = model.document_in_pair(batch.docs[:, 0], batch.doc_len[:, 0])
        return prepend(prefix, doc, doc_len)


@register_objective("query_generation")
class QueryGeneration(_Generation):
    """Query generation (GDMTL §4.1, eqs. 4–5): the query decoded from its positive document."""

    @dataclass
    class Params:
        prefix: bool = False  # "sum:" before the passage (§5.2 task conditioning)
        reduction: Reduction = "sum"
        stop: bool = False  # also learn the [SEP] that ends the query (needed to generate queries)

    task_prefix = "sum:"

    def __call__(self, model, batch: GroupBatch) -> torch.Tensor:
        source, source_len = self.positives(model, batch)
        query, query_len = model.query_in_pair(
            batch.query, batch.query_len
        )  # a long query: its first passage
        return next_token_loss(
            model, source, source_len, query, query_len, self.params.reduction, self.params.stop
        )


def answers_from_queries(
    queries: Mapping[str, Query],
    query_ids: Iterable[str],
    field: str,
    what: str = "answer",
    param: str = "field",
) -> dict[str, str]:
    """The ``what`` text (answer, passage) of each query: its metadata ``field``, a non-empty string."""
    answers, missing = {}, []
    for query_id in query_ids:
        value = queries[query_id].metadata.get(field)
        if isinstance(value, str) and value.strip():
            answers[query_id] = value
        else:
            missing.append(query_id)
    if missing:
        first = queries[missing[0]]
        raise ValueError(
            f"answer_generation: query {first.query_id!r} has no {what} in metadata field {field!r} "
            f"(found {first.metadata.get(field)!r}; its metadata fields: {sorted(first.metadata) or 'none'}); "
            f"{len(missing)} of {len(missing) + len(answers)} training queries lack it "
            f"(first ids: {', '.join(missing[:5])}); set the objective's params.{param}"
        )
    return answers


@register_objective("answer_generation")
class AnswerGeneration(_Generation):
    """Answer generation (GDMTL+ §5.2): the query's answer decoded from its positive passage ⊕ the query."""

    requires = (
        "the answer texts of the batch's queries, given by prepare(model, ctx) or set_answers(model, answers)"
    )

    @dataclass
    class Params:
        field: str = "long_answer"  # the query metadata field holding the answer text
        prefix: bool = False  # "answer:" before the passage (§5.2 task conditioning)
        max_answer_length: int = 56  # answer tokens kept (the paper's decoder input: 56 tokens, §5.4)
        reduction: Reduction = "sum"
        stop: bool = False  # also learn the [SEP] that ends the answer
        passage_field: str | None = None  # P from this query metadata field, not the positive document

    task_prefix = "answer:"

    def __init__(self, params: Params):
        super().__init__(params)
        if params.max_answer_length < 1:
            raise ValueError(
                f"answer_generation: max_answer_length must be ≥ 1, got {params.max_answer_length}"
            )
        self._answers: TokenCache | None = None
        self._passages: TokenCache | None = None

    def prepare(self, model, ctx: Context) -> None:
        """Read the training queries' answers (and passages) from ``ctx``'s dataset; tokenise them once."""
        queries, train, field = ctx.ds.queries, ctx.split.train, self.params.passage_field
        passages = answers_from_queries(queries, train, field, "passage", "passage_field") if field else None
        self.set_answers(model, answers_from_queries(queries, train, self.params.field), passages)

    def set_answers(
        self, model, answers: Mapping[str, str], passages: Mapping[str, str] | None = None
    ) -> None:
        """Answer texts by query id, tokenised once (as queries and documents are) for ``model``; with
        ``passage_field``, each query's passage too (cut to the model's ``max_length``)."""
        cache = TokenCache(model.tokenizer, self.params.max_answer_length)
        cache.add(answers, answers.__getitem__)
        self._answers = cache
        if self.params.passage_field:
            if passages is None:
                raise ValueError(
                    f"answer_generation: passage_field is {self.params.passage_field!r}; "
                    "give set_answers the passages too"
                )
            self._passages = TokenCache(model.tokenizer, model.config.max_length)
            self._passages.add(passages, passages.__getitem__)

    def passages(self, model, batch: GroupBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Each group's passage: its positive document, or its query's ``passage_field`` text."""
        if self._passages is None:
            return self.positives(model, batch)
        absent = [q for q in batch.query_ids if q not in self._passages]
        if absent:
            raise ValueError(
                f"answer_generation: query {absent[0]!r} has no passage (metadata field "
                f"{self.params.passage_field!r}) among the passages given to prepare/set_answers"
            )
        ids, lengths = pad_stack([self._passages[q] for q in batch.query_ids], model.template.pad_id)
        device = batch.query.device
        prefix = model.text_ids(self.task_prefix) if self.params.prefix else ()
        ids, lengths = torch.from_numpy(ids).to(device), torch.from_numpy(lengths).to(device)
        return prepend(prefix, ids, lengths)

    def answer_tokens(self, batch: GroupBatch, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's answers, right-padded: (B, La) ids and (B,) lengths on the batch's device."""
        if self._answers is None:
            raise ValueError(
                "answer_generation: no answers; call prepare(model, ctx) or set_answers(model, answers) "
                "before training (answers come from the query metadata field "
                f"{self.params.field!r})"
            )
        absent = [q for q in batch.query_ids if q not in self._answers]
        if absent:
            raise ValueError(
                f"answer_generation: query {absent[0]!r} has no answer (metadata field {self.params.field!r}) "
                "among the answers given to prepare/set_answers"
            )
        ids, lengths = pad_stack([self._answers[q] for q in batch.query_ids], pad_id)
        device = batch.query.device
        return torch.from_numpy(ids).to(device), torch.from_numpy(lengths.astype(np.int64)).to(device)

    def __call__(self, model, batch: GroupBatch) -> torch.Tensor:
        pad = model.template.pad_id
        answer, answer_len = self.answer_tokens(batch, pad)
        passage, passage_len = self.passages(model, batch)
        # Passage and query are joined as the pair template joins two segments ([SEP] for BERT). The
        # passage is cut first: the query and the answer stay whole within max_length.
        middle = torch.tensor(model.template.middle, dtype=passage.dtype, device=passage.device)
        middle = middle.expand(len(passage), len(model.template.middle))  # (B, m)
        room = (
            model.config.max_length
            - model.template.num_special
            - middle.shape[1]
            - batch.query_len
            - answer_len
        )
        passage_len = torch.minimum(passage_len, room.clamp(min=0))
        middle_len = torch.full_like(passage_len, middle.shape[1])
        source, source_len = concat_texts(passage, passage_len, middle, middle_len, pad)
        source, source_len = concat_texts(source, source_len, batch.query, batch.query_len, pad)
        return next_token_loss(
            model, source, source_len, answer, answer_len, self.params.reduction, self.params.stop
        )
