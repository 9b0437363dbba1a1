"""Model families: what a recipe's ``family`` names, i.e. the model, its training batches and how it ranks.

``run_experiment`` is the same for every family: ``check`` → first stage → query split → ``build_model`` →
``batch_source`` → the trainer (validation ranks with ``rank``) → ``load_model(best)`` → ``rank`` on the
test queries → evaluation and fusion. A family is one module in this package and one
``@register_family`` line; the recipe's ``architecture`` section is its ``Config`` dataclass.

    @register_family("bi_encoder")
    class BiEncoderFamily(Family):
        Config = BiEncoderConfig
        def build_model(self, ctx): ...
        def load_model(self, path, ctx): ...
        def batch_source(self, model, ctx): ...
        def rank(self, model, ctx, first_stage): ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from auxir.data.records import Qrel, ScoredDoc

if TYPE_CHECKING:
    from torch import nn

    from auxir.data.dataset import Dataset
    from auxir.recipe import Recipe
    from auxir.training.distributed import DistEnv
    from auxir.training.trainer import BatchSource


@dataclass
class QuerySplit:
    train: list[str]
    valid: list[str]
    test: list[str]
    train_qrels: list[Qrel]  # judgements of the training and validation queries
    test_qrels: list[Qrel]


@dataclass
class Context:
    """What every family step may read: the recipe, the data, the split and the first-stage run."""

    recipe: Recipe
    ds: Dataset
    split: QuerySplit
    run: list[ScoredDoc]  # the first stage over train + valid + test queries
    env: DistEnv
    out: Path
    cache: dict[str, Any] = field(default_factory=dict)  # a family's shared state (token caches, ...)

    def run_for(self, query_ids: list[str]) -> list[ScoredDoc]:
        wanted = set(query_ids)
        return [s for s in self.run if s.query_id in wanted]

    def query_text(self, query_id: str) -> str:
        return self.ds.queries[query_id].text

    def doc_text(self, doc_id: str) -> str:
        return self.ds.docs[doc_id].full_text()


@dataclass
class Ranking:
    run: list[ScoredDoc]
    pairs: int  # (query, document) scores computed, for throughput
    seconds: float = 0.0


class Family:
    """One kind of model. Subclasses set ``Config`` and implement the four steps."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]

    def check(self, recipe: Recipe) -> None:
        """Refuse a recipe this family cannot run, before any data is read (nothing to check by default)."""

    def build_model(self, ctx: Context) -> nn.Module:
        raise NotImplementedError

    def load_model(self, path: Path, ctx: Context) -> nn.Module:
        """The model saved in ``path`` by the trainer (``best/``), ready for ``rank``."""
        raise NotImplementedError

    def batch_source(self, model: nn.Module, ctx: Context) -> BatchSource:
        raise NotImplementedError

    def rank(self, model: nn.Module, ctx: Context, first_stage: list[ScoredDoc]) -> Ranking:
        """A run for the queries of ``first_stage``: that run reranked, or a retrieval of its queries."""
        raise NotImplementedError

    def describe(self, ctx: Context) -> dict[str, Any]:
        """Extra facts for metrics.json (e.g. an index's size); none by default."""
        return {}


FAMILIES: dict[str, type[Family]] = {}


def register_family(name: str) -> Callable[[type[Family]], type[Family]]:
    def wrap(cls: type[Family]) -> type[Family]:
        cls.name = name
        FAMILIES[name] = cls
        return cls

    return wrap


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; valid families: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]()
