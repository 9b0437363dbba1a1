"""The CODER family (Zerveas et al., EMNLP 2022): a query encoder fine-tuned against frozen document embeddings.

1. The corpus is encoded **once** by the document encoder (the base bi-encoder, ``DenseEncoder`` with its
   sentence-transformers settings) into an ``EmbeddingStore`` in the run's ``doc_embeddings/``; a second
   run on the same corpus with the same encoder links it from ``$AUXIR_CACHE`` instead of encoding again.
   ``architecture.embeddings`` names a precomputed store to use instead.
2. Each training query gets its top-N first-stage candidates as rows of that store, judged positives put
   in where the first stage missed them (``candidates.npz``, :mod:`auxir.data.candidates`).
3. The trainer fine-tunes the query encoder (and the optional scorer) on batches of (query, N candidate
   embeddings), usually with ``listnet_kl``.
4. Ranking reranks each query's top-N first-stage candidates from the stored embeddings (``rerank``), or
   searches the whole store with the fine-tuned query encoder through FAISS (``retrieve``, single stage).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from auxir.data.candidates import PAD_ROW, CandidateBatchSource, CandidateLists, build_candidate_lists
from auxir.data.docstore import cache_dir
from auxir.data.records import ScoredDoc
from auxir.data.token_cache import TokenCache
from auxir.data.trec import group_by_query
from auxir.families.base import Context, Family, Ranking, register_family
from auxir.models.coder import CoderConfig, CoderModel
from auxir.models.hf import resolve_model_name
from auxir.reranking import with_tail
from auxir.retrieval.dense import DenseEncoder, EncoderConfig
from auxir.retrieval.embeddings import EmbeddingStore
from auxir.retrieval.index_files import corpus_fingerprint, read_manifest
from auxir.training.checkpoint import link_model
from auxir.training.distributed import barrier

if TYPE_CHECKING:
    from auxir.recipe import Recipe

log = logging.getLogger(__name__)

STORE_DIR = "doc_embeddings"  # in the run's output folder
CANDIDATES_FILE = "candidates.npz"
CACHE_SUBDIR = "coder_doc_embeddings"  # in $AUXIR_CACHE
_KEY_FIELD = "coder_store_key"  # in the store's metadata


@dataclass
class DocEmbeddings:
    """The document-embedding store of a run, where it lives and how it was had."""

    store: EmbeddingStore
    directory: Path
    source: str  # "encoded", "cache" (linked from $AUXIR_CACHE), "run" (already in the run folder), "given"
    encode_seconds: float = 0.0

    def row_of(self) -> dict[str, int]:
        return {doc_id: row for row, doc_id in enumerate(self.store.ids)}


def check_depth(recipe: Recipe) -> None:
    """N candidates a training query must come from the first stage's ``first_stage_k`` documents."""
    n, k = recipe.architecture.num_candidates, recipe.data.first_stage_k
    if n > k:
        raise ValueError(
            f"architecture.num_candidates: expected at most data.first_stage_k = {k} (a query's candidates are "
            f"its top first-stage documents), found {n}; lower architecture.num_candidates or raise "
            "data.first_stage_k"
        )


def corpus_ids(ctx: Context) -> list[str]:
    docs = ctx.ds.docs
    return list(docs.ids()) if hasattr(docs, "ids") else [doc.doc_id for doc in docs]


def check_covers(store: EmbeddingStore, doc_ids: list[str], where: str | Path) -> None:
    """Refuse a store that lacks embeddings for documents of the corpus."""
    have = set(store.ids)
    missing = [d for d in doc_ids if d not in have]
    if missing:
        raise ValueError(
            f"{where}: expected an embedding for every document of the corpus ({len(doc_ids)}), found "
            f"{len(missing)} missing (first: {', '.join(repr(d) for d in missing[:3])}); the store holds "
            f"{len(store)} embeddings of another corpus or a part of it; encode this corpus (leave "
            "architecture.embeddings unset) or pass its store"
        )


def encoder_config(recipe: Recipe) -> EncoderConfig:
    """The document encoder M_D: ``architecture.doc_encoder`` or the recipe's model, as sentence-transformers."""
    return EncoderConfig(
        model=recipe.architecture.doc_encoder or recipe.model,
        device=recipe.training.device,
        batch_size=recipe.evaluation.batch_size,
    )


def store_key(ctx: Context, encoder: EncoderConfig, doc_ids: list[str]) -> str:
    """What the embeddings depend on: the corpus (its ids' fingerprint, and its file's size and time when it
    has one), the encoder's settings and its model files; not the device or batch size."""
    source = getattr(ctx.ds.docs, "path", None)
    stat = Path(source).stat() if source is not None and Path(source).is_file() else None
    settings = {k: v for k, v in encoder.to_dict().items() if k not in ("device", "batch_size", "bf16")}
    facts = {
        "corpus": corpus_fingerprint(doc_ids),
        "corpus_file": [stat.st_size, stat.st_mtime_ns] if stat else None,
        "encoder": settings,
        "model": _model_identity(encoder.model),
        "use_title": True,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _model_identity(name: str) -> Any:
    """A local model directory by its files' names, sizes and times (a retrained model in the same folder is
    another model); a Hub name by itself."""
    path = Path(resolve_model_name(name))
    if not path.is_dir():
        return name
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return [[str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def _key_of(directory: Path) -> str | None:
    try:
        return read_manifest(directory, kind="embeddings").get("metadata", {}).get(_KEY_FIELD)
    except (FileNotFoundError, ValueError):
        return None


def _link_store(source: Path, target: Path) -> None:
    """``target`` (atomically) with the files of the store in ``source``: hard links, copies where refused."""
    link_model(source, target)


def doc_embeddings(ctx: Context) -> DocEmbeddings:
    """The run's document embeddings: given, already in the run folder, linked from the cache, or encoded
    (by the main process; the others wait and read them)."""
    if "coder.doc_embeddings" in ctx.cache:
        return ctx.cache["coder.doc_embeddings"]
    recipe, cfg = ctx.recipe, ctx.recipe.architecture
    doc_ids = corpus_ids(ctx)
    if cfg.embeddings:
        directory = Path(cfg.embeddings)
        store = EmbeddingStore.load(directory)
        check_covers(store, doc_ids, directory)
        result = DocEmbeddings(store, directory, "given")
    else:
        encoder = encoder_config(recipe)
        key = store_key(ctx, encoder, doc_ids)
        directory = ctx.out / STORE_DIR
        source, seconds = "run", 0.0
        if ctx.env.is_main:
            source, seconds = _ensure_store(ctx, directory, key, encoder, cfg.cache_embeddings)
        barrier(ctx.env)
        store = EmbeddingStore.load(directory)
        check_covers(store, doc_ids, directory)
        result = DocEmbeddings(store, directory, source, seconds)
    log.info(
        "document embeddings: %d x %d from %s (%s)",
        len(result.store),
        result.store.dim,
        result.directory,
        result.source,
    )
    ctx.cache["coder.doc_embeddings"] = result
    return result


def _ensure_store(
    ctx: Context, directory: Path, key: str, encoder: EncoderConfig, use_cache: bool
) -> tuple[str, float]:
    if _key_of(directory) == key:
        return "run", 0.0
    entry = cache_dir() / CACHE_SUBDIR / key[:32]
    if use_cache and _key_of(entry) == key:
        _link_store(entry, directory)
        return "cache", 0.0
    started = time.perf_counter()
    store = DenseEncoder(encoder).encode_docs(ctx.ds.docs, show_progress=ctx.recipe.training.progress)
    seconds = time.perf_counter() - started
    store.metadata[_KEY_FIELD] = key
    # npy: memory-mapped when opened, for corpora larger than memory
    store.save(directory, format="npy", dtype=ctx.recipe.architecture.embeddings_dtype)
    log.info("encoded %d documents in %.1f s into %s", len(store), seconds, directory)
    if use_cache:
        try:
            _link_store(directory, entry)
        except OSError as error:  # an unwritable cache costs a new encoding next time, nothing else
            log.warning("could not keep the document embeddings in %s: %s", entry, error)
    return "encoded", seconds


def embedding_matrix(ctx: Context, device: torch.device | str = "cpu") -> torch.Tensor:
    """The store as one ``(count, dim)`` tensor of ``architecture.embeddings_dtype`` on ``device`` (kept)."""
    device = torch.device(device)
    key = f"coder.embeddings.{device}"
    if key not in ctx.cache:
        if device.type == "cpu":
            dtype = np.dtype(ctx.recipe.architecture.embeddings_dtype)
            ctx.cache[key] = torch.from_numpy(np.array(doc_embeddings(ctx).store.embeddings, dtype=dtype))
        else:
            ctx.cache[key] = embedding_matrix(ctx, "cpu").to(device)
    return ctx.cache[key]


def candidate_lists(ctx: Context) -> CandidateLists:
    """The training queries' candidate lists (written to the run's ``candidates.npz`` by the main process)."""
    if "coder.candidates" in ctx.cache:
        return ctx.cache["coder.candidates"]
    cfg, split = ctx.recipe.architecture, ctx.split
    lists = build_candidate_lists(
        split.train,
        ctx.run_for(split.train),
        split.train_qrels,
        doc_embeddings(ctx).row_of(),
        cfg.num_candidates,
        cfg.inject_positives,
    )
    log.info(
        "training lists: %d queries x %d candidates; %d judged positives put in where the first stage missed "
        "them; %d queries skipped (no judged positive among their candidates)",
        len(lists),
        lists.num_candidates,
        lists.injected,
        lists.skipped_no_positive,
    )
    if ctx.env.is_main:
        lists.save(ctx.out / CANDIDATES_FILE)
    ctx.cache["coder.candidates"] = lists
    return lists


@register_family("coder")
class CoderFamily(Family):
    Config = CoderConfig

    def check(self, recipe: Recipe) -> None:
        check_depth(recipe)

    def build_model(self, ctx: Context) -> CoderModel:
        store = doc_embeddings(ctx).store
        torch.manual_seed(ctx.recipe.training.seed)  # a projection or scorer starts the same for a given seed
        return CoderModel.from_pretrained(ctx.recipe.model, config=ctx.recipe.architecture, doc_dim=store.dim)

    def load_model(self, path: Path, ctx: Context) -> CoderModel:
        return CoderModel.from_pretrained(path)

    def batch_source(self, model: CoderModel, ctx: Context) -> CandidateBatchSource:
        lists = candidate_lists(ctx)
        queries = TokenCache(model.tokenizer, model.config.max_query_length)
        queries.add(lists.query_ids, ctx.query_text)
        training = ctx.recipe.training
        return CandidateBatchSource(
            lists,
            embedding_matrix(ctx),
            queries,
            model.template.pad_id,
            training.batch_size,
            training.seed,
            ctx.env.rank,
            ctx.env.world_size,
        )

    def rank(self, model: CoderModel, ctx: Context, first_stage: list[ScoredDoc]) -> Ranking:
        if ctx.recipe.architecture.evaluate == "retrieve":
            return retrieve(model, ctx, first_stage)
        return rerank_from_store(model, ctx, first_stage)

    def describe(self, ctx: Context) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        if "coder.doc_embeddings" in ctx.cache:
            emb = ctx.cache["coder.doc_embeddings"]
            facts["doc_embeddings"] = {
                "path": str(emb.directory),
                "source": emb.source,
                "count": len(emb.store),
                "dim": emb.store.dim,
                "encode_seconds": emb.encode_seconds,
            }
        if "coder.candidates" in ctx.cache:
            lists = ctx.cache["coder.candidates"]
            facts["candidates"] = {
                "queries": len(lists),
                "num_candidates": lists.num_candidates,
                "injected": lists.injected,
                "skipped_no_positive": lists.skipped_no_positive,
            }
        facts["architecture"] = asdict(ctx.recipe.architecture)
        return facts


def rerank_from_store(model: CoderModel, ctx: Context, first_stage: list[ScoredDoc]) -> Ranking:
    """Each query's top ``num_candidates`` first-stage documents scored from the stored embeddings; the
    documents below follow in first-stage order (as :func:`auxir.reranking.rerank` keeps its tail)."""
    n = ctx.recipe.architecture.num_candidates
    batch_size = ctx.recipe.evaluation.batch_size
    row_of = doc_embeddings(ctx).row_of()
    groups: dict[str, list[ScoredDoc]] = {}
    dropped = 0
    for query_id, ranked in group_by_query(first_stage).items():
        known = [s for s in ranked if s.doc_id in row_of]
        dropped += len(ranked) - len(known)
        if known:
            groups[query_id] = known
    if dropped:
        log.warning("rerank: %d first-stage documents have no stored embedding; left out", dropped)
    if not groups:
        return Ranking([], 0, 0.0)
    device = next(model.parameters()).device
    matrix = embedding_matrix(ctx, device)
    bf16 = device.type == "cuda"
    query_ids = list(groups)
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    vectors = model.encode_queries([ctx.query_text(q) for q in query_ids], batch_size=batch_size)
    scored: list[ScoredDoc] = []
    with torch.inference_mode():
        for start in range(0, len(query_ids), batch_size):
            chunk = query_ids[start : start + batch_size]
            heads = [groups[q][:n] for q in chunk]
            rows = np.full((len(chunk), max(len(h) for h in heads)), PAD_ROW, dtype=np.int64)
            for i, head in enumerate(heads):
                rows[i, : len(head)] = [row_of[s.doc_id] for s in head]
            index = torch.from_numpy(rows).to(device)  # (b, n)
            query = torch.from_numpy(vectors[start : start + len(chunk)]).to(device)  # (b, D)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                scores = model.score_embeddings(query, matrix[index.clamp(min=0)], index != PAD_ROW)  # (b, n)
            scores = scores.float().cpu().numpy()
            for i, (query_id, head) in enumerate(zip(chunk, heads)):
                scored += [ScoredDoc(query_id, s.doc_id, float(scores[i, j])) for j, s in enumerate(head)]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    model.train(was_training)
    return Ranking(with_tail(scored, groups, n), len(scored), seconds)


def retrieve(model: CoderModel, ctx: Context, first_stage: list[ScoredDoc]) -> Ranking:
    """Single-stage retrieval for the queries of ``first_stage``: the fine-tuned query vectors searched in a
    FAISS inner-product index of the stored document embeddings (exact, built once a run)."""
    from auxir.retrieval.faiss_index import DenseIndex

    query_ids = list(dict.fromkeys(s.query_id for s in first_stage))
    if not query_ids:
        return Ranking([], 0, 0.0)
    if "coder.index" not in ctx.cache:
        store = doc_embeddings(ctx).store
        ctx.cache["coder.index"] = DenseIndex.build(store.embeddings, store.ids)
    index = ctx.cache["coder.index"]
    started = time.perf_counter()
    vectors = model.encode_queries(
        [ctx.query_text(q) for q in query_ids], batch_size=ctx.recipe.evaluation.batch_size
    )
    run = index.search(vectors, query_ids, ctx.recipe.architecture.retrieve_k)
    return Ranking(run, len(query_ids) * len(index), time.perf_counter() - started)
