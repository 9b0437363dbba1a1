"""The ``madrm`` family: multi-aspect dense retrieval (Kong et al., KDD 2022) and its baselines.

An ``AspectEncoder`` (``architecture``: an ``AspectEncoderConfig``) trained on the bi-encoder's groups
(positive + first-stage hard negatives), usually with ``in_batch_softmax`` plus λ·``aspect_prediction`` and
λ·``aspect_presence`` (eq. 8); it ranks as the ``bi_encoder`` family does (FAISS over the fused vectors, or
reranking), whose code it reuses. With ``architecture.labels`` the aspect vocabularies are built from the
corpus and the training and validation queries (never the test queries), and the batches carry every text's
labels (``AspectGroupBatch``). ``describe`` adds, for the test queries and their judged documents, each
aspect's Accuracy@1 and mean per-text AUC and the mean fusion weight of each slot.

With ``architecture.pretraining.steps`` > 0, ``build_model`` first pre-trains the model on single texts
(documents of the corpus and training queries) with MLM + the aspect losses (§7.1, eq. 7; see
``PretrainingConfig``); each record goes to ``pretrain_log.jsonl`` and its summary to ``describe``'s
``pretraining``. A resumed run does not pre-train again (its checkpoint holds the weights).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from auxir.data.aspects import (
    AspectCollator,
    AspectLabeler,
    AspectVocabulary,
    TextAspects,
    aspect_accuracy_at_1,
    aspect_auc,
)
from auxir.data.group_source import GroupBatchSource
from auxir.data.records import ScoredDoc
from auxir.data.token_cache import TokenCache, pad_stack
from auxir.families.base import Context, Ranking, register_family
from auxir.families.bi_encoder import BiEncoderFamily, token_caches
from auxir.families.cross_encoder import training_samples
from auxir.io import atomic_write
from auxir.models.aspect_encoder import (
    AspectEncoder,
    AspectEncoderConfig,
    MaskedLmHeads,
    PretrainingConfig,
    masked_lm_heads,
    masked_lm_loss,
)
from auxir.models.bi_encoder import Side
from auxir.objectives.aspects import prediction_term, presence_term

log = logging.getLogger(__name__)

_ASPECT_OBJECTIVES = ("aspect_prediction", "aspect_presence")


def aspect_labeler(ctx: Context) -> AspectLabeler:
    """The recipe's label sources, read once per experiment (kept in ``ctx.cache``)."""
    if "aspect_labeler" not in ctx.cache:
        ctx.cache["aspect_labeler"] = AspectLabeler(ctx.recipe.architecture.labels)
    return ctx.cache["aspect_labeler"]


def build_vocabulary(ctx: Context) -> AspectVocabulary:
    """The vocabulary of every aspect: from the corpus and the training and validation queries."""
    labeler = aspect_labeler(ctx)

    def texts():
        for doc in ctx.ds.docs:
            yield labeler.labels(doc.metadata, f"document {doc.doc_id!r}")
        for query_id in ctx.split.train + ctx.split.valid:
            yield labeler.labels(ctx.ds.queries[query_id].metadata, f"query {query_id!r}")

    vocabulary = AspectVocabulary.build(labeler, texts() if ctx.recipe.architecture.labels.fields else ())
    log.info("aspect vocabularies: %s", {name: len(values) for name, values in vocabulary.values.items()})
    return vocabulary


def query_aspects(ctx: Context, vocabulary: AspectVocabulary, query_ids) -> dict[str, TextAspects]:
    labeler = aspect_labeler(ctx)
    return {
        q: vocabulary.encode(labeler.labels(ctx.ds.queries[q].metadata, f"query {q!r}"))
        for q in dict.fromkeys(query_ids)
    }


def doc_aspects(ctx: Context, vocabulary: AspectVocabulary, doc_ids) -> dict[str, TextAspects]:
    labeler = aspect_labeler(ctx)
    docs = ctx.ds.docs.get_many(list(dict.fromkeys(doc_ids)))
    return {d.doc_id: vocabulary.encode(labeler.labels(d.metadata, f"document {d.doc_id!r}")) for d in docs}


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


# ---- pre-training: MLM + aspect losses on single texts (§7.1, eq. 7) ---------------------------------
@dataclass
class TextBatch:
    """Single texts of one side with their aspect labels (None without ``architecture.labels``)."""

    side: Side
    ids: torch.Tensor  # (n, L) token ids without special tokens
    lengths: torch.Tensor  # (n,)
    gold: dict[str, torch.Tensor] | None = None  # aspect → (n, |V_a|) bool
    present: torch.Tensor | None = None  # (n, A) bool

    def to(self, device: torch.device | str) -> TextBatch:
        gold = {k: v.to(device) for k, v in self.gold.items()} if self.gold is not None else None
        present = self.present.to(device) if self.present is not None else None
        return TextBatch(self.side, self.ids.to(device), self.lengths.to(device), gold, present)


def pretraining_losses(
    model: AspectEncoder, heads: MaskedLmHeads, batch: TextBatch, inputs: torch.Tensor, labels: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Eq. 7's terms for one side, from ONE encoding of ``inputs`` (the masked ids, (n, L)): ``mlm`` (the
    tokens ``labels`` names), and with labels ``aspect_prediction`` (eq. 3) and, with a presence head,
    ``aspect_presence`` (eq. 6), exactly as the fine-tuning objectives compute them for a side."""
    encoding = model.encode_aspects(inputs, batch.lengths, batch.side)
    losses = {"mlm": masked_lm_loss(heads.head(batch.side), encoding, labels)}
    if batch.gold is not None:
        losses["aspect_prediction"] = prediction_term(encoding, batch.gold)
        if encoding.presence_logits is not None:
            losses["aspect_presence"] = presence_term(encoding, batch.present, "pretraining")
    return losses


class TextStream:
    """Batches of one side's texts drawn without replacement (a new shuffle each pass), tokenised once."""

    def __init__(
        self,
        side: Side,
        ids: list[str],
        cache: TokenCache,
        text_of: Callable[[str], str],
        aspects: Callable[[list[str]], dict[str, TextAspects]] | None,
        vocabulary: AspectVocabulary | None,
        batch_size: int,
        steps: int,
        pad_id: int,
        seed: int,
    ):
        rng = np.random.default_rng(seed)
        wanted = steps * batch_size
        passes = -(-wanted // len(ids))
        self.order = [ids[i] for _ in range(passes) for i in rng.permutation(len(ids))][:wanted]
        cache.add(self.order, text_of)
        self.side, self.cache, self.pad_id = side, cache, pad_id
        self.vocabulary, self.batch_size = vocabulary, batch_size
        self.aspects = aspects(self.order) if aspects is not None else None  # text id → its labels

    def batch(self, step: int) -> TextBatch:
        chosen = self.order[step * self.batch_size : (step + 1) * self.batch_size]
        ids, lengths = pad_stack([self.cache[t] for t in chosen], self.pad_id)
        batch = TextBatch(self.side, torch.from_numpy(ids), torch.from_numpy(lengths))
        if self.aspects is not None:
            batch.gold, batch.present = self.vocabulary.multi_hot([self.aspects[t] for t in chosen])
        return batch


def mlm_masker(tokenizer, mlm_probability: float, seed: int):
    """transformers' BERT masking (80% [MASK], 10% a random token, 10% kept) with its own seeded generator
    (the collator seeds one only when called as a collator, not in ``torch_mask_tokens``)."""
    from transformers import DataCollatorForLanguageModeling

    masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability, seed=seed)
    masker.generator = masker.get_generator(seed)
    return masker


def mask_tokens(masker, batch: TextBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking of the text tokens (never padding): the inputs (n, L) and labels (n, L), ``IGNORE``
    where nothing is predicted. ``masker``: ``mlm_masker``'s."""
    real = torch.arange(batch.ids.shape[1]) < batch.lengths.unsqueeze(1)  # (n, L)
    return masker.torch_mask_tokens(batch.ids.clone(), special_tokens_mask=~real)


def pretraining_streams(model: AspectEncoder, ctx: Context, config: PretrainingConfig) -> list[TextStream]:
    """The documents of the corpus and (``texts: both``) the training queries, never the test queries."""
    queries, docs = token_caches(model, ctx)
    store = ctx.ds.docs
    doc_ids = store.ids() if hasattr(store, "ids") else [d.doc_id for d in store]
    vocabulary, seed = model.vocabulary, ctx.recipe.training.seed
    sides: list[tuple[Side, list[str], TokenCache, Any, Any]] = [
        ("document", doc_ids, docs, ctx.doc_text, lambda ids: doc_aspects(ctx, vocabulary, ids))
    ]
    if config.texts == "both" and ctx.split.train:
        query_ids = list(dict.fromkeys(ctx.split.train))
        sides.append(
            ("query", query_ids, queries, ctx.query_text, lambda ids: query_aspects(ctx, vocabulary, ids))
        )
    return [
        TextStream(
            side,
            ids,
            cache,
            text_of,
            aspects if vocabulary is not None else None,
            vocabulary,
            config.batch_size,
            config.steps,
            model.template.pad_id,
            seed + i,
        )
        for i, (side, ids, cache, text_of, aspects) in enumerate(sides)
        if ids
    ]


def pretrain(model: AspectEncoder, ctx: Context, heads: MaskedLmHeads | None = None) -> dict[str, Any]:
    """Pre-train ``model`` in place for ``architecture.pretraining.steps`` steps; the summary of the stage.

    Each step sums, over the sides, ``mlm + aspect_weight · (aspect_prediction + aspect_presence)``; the
    records (means since the last one) are logged and written to ``pretrain_log.jsonl``. ``heads``: the
    MLM heads to train (default: ``masked_lm_heads`` of the recipe's checkpoint).
    """
    from transformers import get_linear_schedule_with_warmup

    from auxir.training.distributed import pick_device

    recipe = ctx.recipe
    config: PretrainingConfig = recipe.architecture.pretraining
    training = recipe.training
    if model.tokenizer.mask_token is None:
        raise ValueError(f"architecture.pretraining: {recipe.model}'s tokenizer has no mask token for MLM")
    device = pick_device(training.device, ctx.env)
    bf16 = training.bf16 == "true" or (training.bf16 == "auto" and device.type == "cuda")
    heads = heads or masked_lm_heads(model, recipe.model)
    if heads.missing:
        log.warning(
            "pre-training: %s has no masked-LM head weights (%d missing, e.g. %s): a new head, its decoder "
            "tied to the word embeddings",
            recipe.model,
            len(heads.missing),
            heads.missing[0],
        )
    model.to(device)
    heads.heads.to(device)
    streams = pretraining_streams(model, ctx, config)
    masker = mlm_masker(model.tokenizer, config.mlm_probability, training.seed)
    optimizer = pretraining_optimizer(model, heads, config, training.weight_decay)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * config.steps), config.steps
    )
    model.train()
    heads.heads.train()
    records: list[dict[str, float]] = []
    sums: dict[str, float] = {}
    counted, started = 0, time.perf_counter()
    for step in range(config.steps):
        total = torch.zeros((), device=device)
        parts: dict[str, float] = {}
        for stream in streams:
            batch = stream.batch(step)
            inputs, labels = mask_tokens(masker, batch)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                losses = pretraining_losses(
                    model, heads, batch.to(device), inputs.to(device), labels.to(device)
                )
            # eq. 7 for this side: L_MLM + λ · Σ_a (L_AP^a + L_APP^a)
            total = (
                total
                + losses["mlm"]
                + config.aspect_weight
                * sum((v for k, v in losses.items() if k != "mlm"), torch.zeros((), device=device))
            )
            for name, value in losses.items():
                parts[name] = parts.get(name, 0.0) + float(value.detach())
        if not torch.isfinite(total):
            raise ValueError(f"pre-training step {step + 1}: the loss is {float(total)} ({parts})")
        total.backward()
        if training.max_grad_norm:
            nn.utils.clip_grad_norm_(
                [p for g in optimizer.param_groups for p in g["params"]], training.max_grad_norm
            )
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        parts["loss"] = float(total.detach())
        for name, value in parts.items():
            sums[name] = sums.get(name, 0.0) + value
        counted += 1
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            record = {"step": step + 1, "lr": scheduler.get_last_lr()[0]}
            record.update({k: v / counted for k, v in sums.items()})
            records.append(record)
            log.info("pre-training %s", " ".join(f"{k}={v:.4g}" for k, v in record.items()))
            sums, counted = {}, 0
    seconds = time.perf_counter() - started
    if ctx.env.is_main:
        with atomic_write(ctx.out / "pretrain_log.jsonl") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in records)
    return {
        "steps": config.steps,
        "seconds": seconds,
        "texts": {s.side: len(set(s.order)) for s in streams},
        "mlm_head": "new, decoder tied to the word embeddings" if heads.missing else "from the checkpoint",
        "first": records[0],
        "last": records[-1],
    }


def pretraining_optimizer(
    model: AspectEncoder, heads: MaskedLmHeads, config: PretrainingConfig, weight_decay: float
) -> torch.optim.Optimizer:
    """AdamW over the model and the MLM heads (a tied decoder counted once): the trainer's groups (no decay
    for biases and norms; new parameters at their own rate)."""
    new_rate = config.new_parameters_learning_rate or config.learning_rate
    new = set(model.new_parameter_names())
    named = list(model.named_parameters())
    seen = {id(p) for _, p in named}
    new_ids = {id(p) for n, p in named if n in new}
    for name, p in heads.heads.named_parameters():
        if id(p) not in seen:
            seen.add(id(p))
            named.append((f"mlm_head.{name}", p))
            if heads.missing:
                new_ids.add(id(p))
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in named:
        if p.requires_grad:
            decays = not (p.ndim < 2 or "LayerNorm" in name or "norm" in name)
            buckets.setdefault((decays, id(p) in new_ids), []).append(p)
    groups = [
        {
            "params": params,
            "weight_decay": weight_decay if decays else 0.0,
            "lr": new_rate if is_new else config.learning_rate,
        }
        for (decays, is_new), params in sorted(buckets.items())
    ]
    return torch.optim.AdamW(groups, lr=config.learning_rate)
