"""The ``madrm`` family: multi-aspect dense retrieval (Kong et al., KDD 2022) and its baselines.

An ``AspectEncoder`` (``architecture``: an ``AspectEncoderConfig``) trained on the bi-encoder's groups
(positive + first-stage hard negatives), usually with ``in_batch_softmax`` plus λ·``aspect_prediction`` and
λ·``aspect_presence`` (eq. 8); it ranks as the ``bi_encoder`` family does (FAISS over the fused vectors, or
reranking), whose code it reuses. With ``architecture.labels`` the aspect vocabularies are built from the
corpus and the training and validation queries (never the test queries), and the batches carry every text's
labels (``AspectGroupBatch``). ``describe`` adds, for the test queries and their judged documents, each
aspect's Accuracy@1 and mean per-text AUC and the mean fusion weight of each slot.

With ``architecture.pretraining.steps`` > 0, ``build_model`` first runs the MLM + aspect pre-training stage
(§7.1, eq. 7; ``auxir.families.madrm_pretraining``); its summary goes to ``describe``'s ``pretraining``. A
resumed run does not pre-train again (its checkpoint holds the weights).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from auxir.data.aspects import (
    AspectCollator,
    AspectLabeler,
    aspect_accuracy_at_1,
    aspect_auc,
)
from auxir.data.group_source import GroupBatchSource
from auxir.data.records import ScoredDoc
from auxir.families.base import Context, Ranking, register_family
from auxir.families.bi_encoder import BiEncoderFamily, token_caches
from auxir.families.cross_encoder import training_samples
from auxir.families.madrm_labels import build_vocabulary, doc_aspects, query_aspects
from auxir.families.madrm_pretraining import pretrain
from auxir.models.aspect_encoder import AspectEncoder, AspectEncoderConfig

log = logging.getLogger(__name__)

_ASPECT_OBJECTIVES = ("aspect_prediction", "aspect_presence")


@register_family("madrm")
class MadrmFamily(BiEncoderFamily):
    Config = AspectEncoderConfig

    def check(self, recipe) -> None:
        """Aspect objectives need labels (and ``aspect_presence`` a presence head); labelled aspects fill
        exactly ``aspects`` slots. The label sources (a mapping file) are read here, before any data."""
        config: AspectEncoderConfig = recipe.architecture
        names = [o.name for o in recipe.objectives]
        wanted = [n for n in names if n in _ASPECT_OBJECTIVES]
        if wanted and not config.labels.enabled:
            raise ValueError(
                f"objective(s) {wanted} learn aspect labels: expected architecture.labels.fields or "
                "architecture.labels.mapping, found neither (MADR without labels trains in_batch_softmax only)"
            )
        if "aspect_presence" in names and (config.aspects == 0 or config.fusion != "presence"):
            raise ValueError(
                "objective 'aspect_presence' trains the presence head of eq. 5: expected architecture.fusion "
                f"'presence' with aspects > 0, found fusion {config.fusion!r} with aspects {config.aspects}"
            )
        if config.labels.enabled:
            labelled = AspectLabeler(config.labels).names
            if config.aspects not in (0, len(labelled)):
                raise ValueError(
                    f"architecture.aspects: the labels name {len(labelled)} aspects {list(labelled)}, so expected "
                    f"{len(labelled)} (one slot each) or 0 (MtBERT), found {config.aspects}"
                )

    def build_model(self, ctx: Context) -> AspectEncoder:
        torch.manual_seed(ctx.recipe.training.seed)
        config: AspectEncoderConfig = ctx.recipe.architecture
        vocabulary = build_vocabulary(ctx) if config.labels.enabled else None
        model = AspectEncoder.from_pretrained(ctx.recipe.model, config=config, vocabulary=vocabulary)
        if config.pretraining.steps:
            if ctx.recipe.training.resume:
                log.info("pre-training skipped: the resumed run's checkpoint holds the weights")
            else:
                ctx.cache["pretraining"] = pretrain(model, ctx)
        return model

    def load_model(self, path: Path, ctx: Context) -> AspectEncoder:
        return AspectEncoder.from_pretrained(path)

    def batch_source(self, model: AspectEncoder, ctx: Context) -> GroupBatchSource:
        if model.vocabulary is None:  # no labels: the bi-encoder's batches
            return super().batch_source(model, ctx)
        queries, docs = token_caches(model, ctx)
        samples = training_samples(ctx)
        query_ids = [g.query_id for g in samples.groups]
        doc_ids = [d for g in samples.groups for d in [g.positive_id, *g.negative_pool]]
        queries.add(query_ids, ctx.query_text)
        docs.add(doc_ids, ctx.doc_text)
        collator = AspectCollator(
            queries,
            docs,
            model.template.pad_id,
            model.vocabulary,
            query_aspects(ctx, model.vocabulary, query_ids),
            doc_aspects(ctx, model.vocabulary, doc_ids),
        )
        recipe = ctx.recipe
        return GroupBatchSource(
            samples, recipe.samples, collator, recipe.training.batch_size, ctx.env.rank, ctx.env.world_size
        )

    def rank(self, model: AspectEncoder, ctx: Context, first_stage: list[ScoredDoc]) -> Ranking:
        ctx.cache["aspect_model"] = model  # the model last ranked is the one evaluated: ``describe`` reads it
        return super().rank(model, ctx, first_stage)

    def describe(self, ctx: Context) -> dict[str, Any]:
        """The bi-encoder's retrieval facts and ``aspects``: on the test queries and their judged documents,
        the mean fusion weight of each slot and, per labelled aspect, Accuracy@1, mean AUC and the number of
        texts with a label."""
        facts = super().describe(ctx)
        model = ctx.cache.get("aspect_model")
        if model is not None and ctx.split.test:
            tested = set(ctx.split.test)
            judged = [q.doc_id for q in ctx.split.test_qrels if q.query_id in tested]
            facts["aspects"] = aspect_facts(model, ctx, ctx.split.test, judged)
        if "pretraining" in ctx.cache:
            facts["pretraining"] = ctx.cache["pretraining"]
        return facts


def aspect_facts(
    model: AspectEncoder, ctx: Context, query_ids: list[str], doc_ids: list[str]
) -> dict[str, Any]:
    """Fusion weights and aspect prediction quality of ``model`` on these queries and documents."""
    query_ids = list(dict.fromkeys(query_ids))
    doc_ids = [d for d in dict.fromkeys(doc_ids) if d in ctx.ds.docs]
    queries, docs = token_caches(model, ctx)
    queries.add(query_ids, ctx.query_text)
    docs.add(doc_ids, ctx.doc_text)
    batch_size = ctx.recipe.evaluation.batch_size
    facts: dict[str, Any] = {"slots": list(model.slot_names)}
    for side, ids, cache in (("query", query_ids, queries), ("document", doc_ids, docs)):
        predicted = model.predict_tokens([cache[i] for i in ids], side, batch_size)
        side_facts: dict[str, Any] = {
            "texts": len(ids),
            "mean_weight": dict(
                zip(model.slot_names, predicted.weights.mean(0, dtype=np.float64).round(4).tolist())
            )
            if ids
            else {},
        }
        if model.vocabulary is not None and ids:
            texts = (query_aspects if side == "query" else doc_aspects)(ctx, model.vocabulary, ids)
            gold, _ = model.vocabulary.multi_hot([texts[i] for i in ids])
            side_facts["labelled"] = {name: int(hot.any(1).sum()) for name, hot in gold.items()}
            side_facts["accuracy@1"] = {
                name: aspect_accuracy_at_1(predicted.probabilities[name], gold[name].numpy())
                for name in model.vocabulary.names
            }
            side_facts["auc"] = {
                name: aspect_auc(predicted.probabilities[name], gold[name].numpy())
                for name in model.vocabulary.names
            }
        facts[side] = side_facts
    return facts
