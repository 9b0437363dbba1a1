"""The seq2seq family (GDMTL §4.3): an encoder-decoder reranker, GDMTL_S or GDMTL_C (``architecture.layout``).

Everything but the model is the cross-encoder family's: groups of one positive and first-stage negatives as
token ids (``group_batches``), ranking by reranking the first-stage run. Ranking objectives score through
``Seq2SeqRanker.score``; ``query_generation`` (and ``answer_generation``) put the loss on the decoder.
"""

from __future__ import annotations

from pathlib import Path

import torch

from auxir.families.base import register_family
from auxir.families.cross_encoder import CrossEncoderFamily
from auxir.models.seq2seq import Seq2SeqRanker, Seq2SeqRankerConfig

# Objectives that need only ``score`` (every ranking objective) or a decoder (the generation objectives).
_GENERATION_OBJECTIVES = ("query_generation", "answer_generation")


@register_family("seq2seq")
class Seq2SeqFamily(CrossEncoderFamily):
    Config = Seq2SeqRankerConfig

    def check(self, recipe) -> None:
        """Ranking objectives and the generation objectives only: the others read encoder-only heads."""
        from auxir.objectives import OBJECTIVES, RankingObjective

        refused = [
            o.name
            for o in recipe.objectives
            if o.name in OBJECTIVES
            and not issubclass(OBJECTIVES[o.name][0], RankingObjective)
            and o.name not in _GENERATION_OBJECTIVES
        ]
        if refused:
            valid = sorted(n for n, (cls, _) in OBJECTIVES.items() if issubclass(cls, RankingObjective))
            raise ValueError(
                f"family seq2seq: objective(s) {refused} need an encoder-only model; expected ranking "
                f"objectives ({', '.join(valid)}) or {', '.join(_GENERATION_OBJECTIVES)}"
            )

    def build_model(self, ctx) -> Seq2SeqRanker:
        torch.manual_seed(ctx.recipe.training.seed)  # new weights start the same for a given seed
        return Seq2SeqRanker.from_pretrained(ctx.recipe.model, config=ctx.recipe.architecture)

    def load_model(self, path: Path, ctx) -> Seq2SeqRanker:
        return Seq2SeqRanker.from_pretrained(path)
