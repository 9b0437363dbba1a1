"""The ``madrm`` family's optional pre-training stage (Kong et al., KDD 2022, §7.1, eq. 7).

Before fine-tuning, ``pretrain`` trains the model on single texts (documents of the corpus and, with
``texts: both``, the training queries, never the test queries) with
``L_pre = L_MLM + aspect_weight · (L_aspect_prediction + L_aspect_presence)`` per side, the aspect terms
only with ``architecture.labels``. It runs when ``architecture.pretraining.steps`` > 0 (``PretrainingConfig``);
each record goes to ``pretrain_log.jsonl``. The MLM head is the checkpoint's (``masked_lm_heads``); a
checkpoint without MLM head weights gets a new head whose decoder is tied to the word embeddings.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from auxir.data.aspects import AspectVocabulary, TextAspects
from auxir.data.token_cache import TokenCache, pad_stack
from auxir.families.base import Context
from auxir.families.bi_encoder import token_caches
from auxir.families.madrm_labels import doc_aspects, query_aspects
from auxir.io import atomic_write
from auxir.models.aspect_encoder import (
    AspectEncoder,
    MaskedLmHeads,
    PretrainingConfig,
    masked_lm_heads,
    masked_lm_loss,
)
from auxir.models.bi_encoder import Side
from auxir.objectives.aspects import prediction_term, presence_term

log = logging.getLogger(__name__)


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
