"""The cross-encoder family: (query, document) pairs scored jointly; trained on groups of one positive and
sampled negatives from the first stage; ranks by reranking the first-stage run."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from auxir.data.collate import GroupCollator
from auxir.data.group_source import GroupBatchSource
from auxir.data.records import ScoredDoc
from auxir.data.samples import TrainingSamples, build_training_samples
from auxir.families.base import Context, Family, Ranking, register_family
from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig
from auxir.reranking import rerank, token_caches

log = logging.getLogger(__name__)


def training_samples(ctx: Context) -> TrainingSamples:
    """Groups of (query, positive, negative pool) for the training queries, from their qrels and first stage."""
    split = ctx.split
    known = [q for q in split.train_qrels if q.doc_id in ctx.ds.docs]
    if len(known) < len(split.train_qrels):
        log.warning(
            "training qrels: %d judgements name documents missing from the corpus; left out",
            len(split.train_qrels) - len(known),
        )
    samples = build_training_samples(split.train, known, ctx.run_for(split.train), ctx.recipe.samples)
    log.info(
        "training groups: %d (skipped %d queries without positive, %d without negative)",
        len(samples.groups),
        samples.skipped_no_positive,
        samples.skipped_no_negative,
    )
    return samples


def group_batches(model, ctx: Context) -> GroupBatchSource:
    """Token-id groups for any model with a ``tokenizer``, ``config.max_query_length`` and ``template``.

    The token caches are kept in ``ctx.cache`` so that ranking later reuses them.
    """
    query_cache, doc_cache = ctx.cache.setdefault("token_caches", token_caches(model))
    samples = training_samples(ctx)
    query_cache.add((g.query_id for g in samples.groups), ctx.query_text)
    doc_cache.add((d for g in samples.groups for d in [g.positive_id, *g.negative_pool]), ctx.doc_text)
    collator = GroupCollator(query_cache, doc_cache, model.template.pad_id)
    recipe = ctx.recipe
    return GroupBatchSource(
        samples, recipe.samples, collator, recipe.training.batch_size, ctx.env.rank, ctx.env.world_size
    )


@register_family("cross_encoder")
class CrossEncoderFamily(Family):
    Config = CrossEncoderConfig

    def build_model(self, ctx: Context) -> CrossEncoder:
        torch.manual_seed(ctx.recipe.training.seed)  # new heads start from the same weights for a given seed
        return CrossEncoder.from_pretrained(ctx.recipe.model, config=ctx.recipe.architecture)

    def load_model(self, path: Path, ctx: Context) -> CrossEncoder:
        return CrossEncoder.from_pretrained(path)

    def batch_source(self, model: CrossEncoder, ctx: Context) -> GroupBatchSource:
        return group_batches(model, ctx)

    def rank(self, model: CrossEncoder, ctx: Context, first_stage: list[ScoredDoc]) -> Ranking:
        caches = ctx.cache.setdefault("token_caches", token_caches(model))
        result = rerank(
            model,
            first_stage,
            ctx.query_text,
            ctx.doc_text,
            ctx.recipe.data.rerank_top_k,
            ctx.recipe.evaluation.batch_size,
            bf16=ctx.recipe.training.uses_bf16(next(model.parameters()).device.type),
            caches=caches,
            progress=ctx.recipe.training.progress and ctx.env.is_main,
        )
        return Ranking(result.run, result.pairs, result.seconds)
