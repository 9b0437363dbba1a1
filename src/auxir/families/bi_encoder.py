"""The bi-encoder family: queries and documents encoded separately; trained on the same groups as the
cross-encoder (positive + first-stage hard negatives), usually with ``in_batch_softmax``; ranks by
retrieving from the whole corpus through FAISS (``architecture.evaluate: retrieve``) or by reranking the
first-stage run (``rerank``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from auxir.data.collate import GroupCollator
from auxir.data.group_source import GroupBatchSource
from auxir.data.records import ScoredDoc
from auxir.data.token_cache import TokenCache
from auxir.families.base import Context, Family, Ranking, register_family
from auxir.families.cross_encoder import training_samples
from auxir.models.bi_encoder import BiEncoder, BiEncoderConfig
from auxir.reranking import rerank
from auxir.reranking import token_caches as reranking_token_caches

if TYPE_CHECKING:
    from auxir.retrieval.faiss_index import DenseIndex

log = logging.getLogger(__name__)

_CORPUS_CHUNK = 4096  # documents read and tokenised at a time


def token_caches(model: BiEncoder, ctx: Context) -> tuple[TokenCache, TokenCache]:
    """Query and document token caches, each cut at its own side's length (kept in ``ctx.cache``)."""
    if "token_caches" not in ctx.cache:
        ctx.cache["token_caches"] = reranking_token_caches(model)
    return ctx.cache["token_caches"]


def build_index(vectors: np.ndarray, doc_ids: list[str], config: BiEncoderConfig) -> DenseIndex:
    """``config.index`` (a FAISS factory string) over ``vectors`` with the inner product (the cosine for
    normalised vectors), trained on them where the index needs it, searched with ``config.index_search``."""
    import faiss

    from auxir.retrieval.faiss_index import DenseIndex, DenseIndexConfig

    dim = vectors.shape[1]
    try:
        index = faiss.index_factory(dim, config.index, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            index.train(vectors)
        index.add(vectors)
        if config.index_search:
            faiss.ParameterSpace().set_index_parameters(index, config.index_search)
    except RuntimeError as error:  # FAISS reports a bad string or too few training vectors this way
        reason = " ".join(str(error).split())[:300]
        raise ValueError(
            f"architecture.index {config.index!r} / index_search {config.index_search!r}: FAISS cannot "
            f"build it over {len(doc_ids)} vectors of dimension {dim} ({reason})"
        ) from None
    # DenseIndex only runs the search and maps rows to doc ids here; the factory-built index carries its
    # own parameters, so the kind-based DenseIndexConfig (which would set some) stays at its default.
    return DenseIndex(index, doc_ids, DenseIndexConfig())


@dataclass
class CorpusIndex:
    key: tuple  # what encoded it: the document tower's weights, the model and index settings
    index: DenseIndex
    encode_seconds: float
    index_seconds: float = 0.0

    @property
    def docs_per_second(self) -> float:
        return len(self.index) / self.encode_seconds if self.encode_seconds > 0 else 0.0


def _fingerprint(module: torch.nn.Module) -> tuple[float, ...]:
    """The parameters' sums: a corpus encoded by the same weights can be searched again without re-encoding."""
    with torch.no_grad():
        return tuple(torch.stack([p.detach().double().sum() for p in module.parameters()]).tolist())


@register_family("bi_encoder")
class BiEncoderFamily(Family):
    Config = BiEncoderConfig

    def build_model(self, ctx: Context) -> BiEncoder:
        torch.manual_seed(ctx.recipe.training.seed)
        return BiEncoder.from_pretrained(ctx.recipe.model, config=ctx.recipe.architecture)

    def load_model(self, path: Path, ctx: Context) -> BiEncoder:
        return BiEncoder.from_pretrained(path)

    def batch_source(self, model: BiEncoder, ctx: Context) -> GroupBatchSource:
        queries, docs = token_caches(model, ctx)
        samples = training_samples(ctx)
        queries.add((g.query_id for g in samples.groups), ctx.query_text)
        docs.add((d for g in samples.groups for d in [g.positive_id, *g.negative_pool]), ctx.doc_text)
        collator = GroupCollator(queries, docs, model.template.pad_id)
        recipe = ctx.recipe
        return GroupBatchSource(
            samples, recipe.samples, collator, recipe.training.batch_size, ctx.env.rank, ctx.env.world_size
        )

    def rank(self, model: BiEncoder, ctx: Context, first_stage: list[ScoredDoc]) -> Ranking:
        caches = token_caches(model, ctx)
        if ctx.recipe.architecture.evaluate == "rerank":
            result = rerank(
                model,
                first_stage,
                ctx.query_text,
                ctx.doc_text,
                ctx.recipe.data.rerank_top_k,
                ctx.recipe.evaluation.batch_size,
                caches=caches,
            )
            return Ranking(result.run, result.pairs, result.seconds)
        return self.retrieve(model, ctx, list(dict.fromkeys(s.query_id for s in first_stage)))

    def retrieve(self, model: BiEncoder, ctx: Context, query_ids: list[str]) -> Ranking:
        """The top ``retrieve_k`` of the whole corpus for each query.

        ``seconds`` is the search alone (queries encoded and looked up), as a retriever serves them;
        ``pairs`` the (query, document) pairs it ranks, every query against the whole corpus. Encoding
        the corpus, once per set of weights, is reported by ``describe``.
        """
        if not query_ids:
            return Ranking([], 0, 0.0)
        corpus = self._corpus_index(model, ctx)
        started = time.perf_counter()
        queries, _ = token_caches(model, ctx)
        queries.add(query_ids, ctx.query_text)
        batch_size = ctx.recipe.evaluation.batch_size
        vectors = model.encode_tokens([queries[q] for q in query_ids], "query", batch_size)
        run = corpus.index.search(vectors, query_ids, ctx.recipe.architecture.retrieve_k)
        return Ranking(run, len(query_ids) * len(corpus.index), time.perf_counter() - started)

    def _corpus_index(self, model: BiEncoder, ctx: Context) -> CorpusIndex:
        """The index of the corpus as the document tower encodes it now (kept in ``ctx.cache`` until the
        weights change: the test ranking and the fusion's validation ranking share one encoding)."""
        config = ctx.recipe.architecture
        key = (_fingerprint(model.tower("document")), model.config, config.index, config.index_search)
        cached = ctx.cache.get("corpus_index")
        if cached is not None and cached.key == key:
            return cached
        _, docs = token_caches(model, ctx)
        doc_ids: list[str] = []
        chunk: dict[str, str] = {}
        for doc in ctx.ds.docs:  # one pass over the store; each text is tokenised once per experiment
            doc_ids.append(doc.doc_id)
            if doc.doc_id not in docs:
                chunk[doc.doc_id] = doc.full_text()
            if len(chunk) >= _CORPUS_CHUNK:
                docs.add(chunk, chunk.__getitem__)
                chunk = {}
        docs.add(chunk, chunk.__getitem__)
        started = time.perf_counter()
        vectors = model.encode_tokens(
            [docs[d] for d in doc_ids], "document", ctx.recipe.evaluation.batch_size
        )
        encoded = time.perf_counter()
        corpus = CorpusIndex(key, build_index(vectors, doc_ids, config), encoded - started)
        corpus.index_seconds = time.perf_counter() - encoded
        log.info(
            "corpus: %d documents encoded in %.1f s (%.0f docs/s), FAISS %s index built in %.1f s",
            len(doc_ids),
            corpus.encode_seconds,
            corpus.docs_per_second,
            config.index,
            corpus.index_seconds,
        )
        ctx.cache["corpus_index"] = corpus
        return corpus

    def describe(self, ctx: Context) -> dict[str, Any]:
        """How the model ranked: retrieval settings, and the last corpus encoding's size and speed."""
        config = ctx.recipe.architecture
        if config.evaluate == "rerank":
            return {"evaluate": "rerank"}
        facts: dict[str, Any] = {
            "evaluate": "retrieve",
            "index": config.index,
            "index_search": config.index_search,
            "retrieve_k": config.retrieve_k,
        }
        corpus = ctx.cache.get("corpus_index")
        if corpus is not None:
            facts.update(
                indexed_documents=len(corpus.index),
                encode_seconds=corpus.encode_seconds,
                encode_docs_per_second=corpus.docs_per_second,
                index_seconds=corpus.index_seconds,
            )
        return facts
