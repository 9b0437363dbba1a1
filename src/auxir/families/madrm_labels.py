"""The madrm family's aspect labels: the recipe's label sources, the aspect vocabularies and each text's labels.

Shared by the family (training batches, evaluation) and its pre-training stage (``madrm_pretraining``).
"""

from __future__ import annotations

import logging

from auxir.data.aspects import AspectLabeler, AspectVocabulary, TextAspects
from auxir.families.base import Context

log = logging.getLogger(__name__)


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
