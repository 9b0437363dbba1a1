"""BM25 first stage over bm25s (no JVM), with Anserini's defaults.

Scoring is bm25s (Lù, 2024, "BM25S: Orders of magnitude faster lexical search via eager sparse
scoring"); the default variant ``lucene`` is Lucene's BM25 (idf ``log(1 + (N - df + 0.5) / (df + 0.5))``),
and the defaults ``k1=0.9, b=0.4`` are Anserini's (Yang et al., 2017; the parameters of its BEIR
regressions). ``k1=1.2, b=0.75`` (Robertson et al., Okapi at TREC-3; Elasticsearch's and Lucene's
own defaults) are a configuration away. Analysis is bm25s's: lower-casing, the token pattern
``\\b\\w\\w+\\b`` (single characters dropped), Lucene's English stop words, a Snowball stemmer from PyStemmer.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

# bm25s probes JAX when imported; on a GPU machine JAX then reserves most of the GPU's memory, and the
# reranker's torch (or a second run sharing the GPU) fails. auxir's BM25 uses bm25s's numpy path.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
import bm25s  # noqa: E402
import Stemmer  # noqa: E402

from auxir.data.records import Doc, ScoredDoc
from auxir.retrieval.contract import QueryInput, check_doc_ids, check_k, query_texts, sort_run
from auxir.retrieval.index_files import atomic_directory, read_ids, read_manifest, write_ids, write_manifest

logger = logging.getLogger(__name__)

# bm25s sets its own logger to DEBUG on import, so its per-call DEBUG lines would reach any handler; it
# inherits the root logger's level instead (the CLI's: WARNING).
logging.getLogger("bm25s").setLevel(logging.NOTSET)

BM25Method = Literal["lucene", "robertson", "atire", "bm25l", "bm25+"]
_METHODS = get_args(BM25Method)
_DOC_IDS_FILE = "doc_ids.json"


@dataclass
class BM25Config:
    """How documents and queries are analysed and scored.

    ``stemmer`` is a PyStemmer (Snowball) algorithm (``"english"`` is Porter2, ``"porter"`` the original
    Porter stemmer that Anserini uses) or ``None``; ``stopwords`` a bm25s stop-word list name
    (``"en"``: Lucene's 33 English stop words, as in Anserini; ``"en_plus"``: a longer NLTK-based list)
    or ``None``; ``use_title`` joins title and text as one field. ``token_pattern`` is bm25s's default,
    which drops one-character tokens (Lucene keeps them: ``r"(?u)\\b\\w+\\b"`` is closer to Anserini).
    """

    k1: float = 0.9
    b: float = 0.4
    method: BM25Method = "lucene"
    stemmer: str | None = "english"
    stopwords: str | None = "en"
    use_title: bool = True
    token_pattern: str = r"(?u)\b\w\w+\b"

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"BM25Config.method: expected one of {_METHODS}, found {self.method!r}")
        if self.k1 < 0:
            raise ValueError(f"BM25Config.k1: expected a number >= 0, found {self.k1!r}")
        if not 0 <= self.b <= 1:
            raise ValueError(f"BM25Config.b: expected a number in [0, 1], found {self.b!r}")
        if self.stemmer is not None and self.stemmer not in Stemmer.algorithms():
            raise ValueError(
                f"BM25Config.stemmer: expected None or one of {sorted(Stemmer.algorithms())}, "
                f"found {self.stemmer!r}"
            )
        if self.stopwords is not None:
            try:
                bm25s.tokenization._infer_stopwords(self.stopwords)
            except ValueError as error:
                raise ValueError(
                    f"BM25Config.stopwords: expected None or a bm25s list name such as 'en', "
                    f"found {self.stopwords!r}"
                ) from error

        try:
            re.compile(self.token_pattern)
        except re.error as error:
            raise ValueError(
                f"BM25Config.token_pattern: expected a regular expression, found {self.token_pattern!r} ({error})"
            ) from error

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BM25Config:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


class BM25Index:
    """A bm25s index over a corpus, with the doc ids and the configuration it was built with.

    >>> docs = [Doc("d1", "the cat sat on the mat"), Doc("d2", "dogs chase cats")]
    >>> index = BM25Index.build(docs, BM25Config())
    >>> [row.doc_id for row in index.search({"q1": "mat"}, k=10)]
    ['d1']
    """

    def __init__(self, retriever: bm25s.BM25, doc_ids: list[str], config: BM25Config):
        self.retriever = retriever
        self.doc_ids = doc_ids
        self.config = config
        self._stemmer = Stemmer.Stemmer(config.stemmer) if config.stemmer else None

    def __len__(self) -> int:
        return len(self.doc_ids)

    @classmethod
    def build(
        cls, docs: Iterable[Doc], config: BM25Config | None = None, show_progress: bool = False
    ) -> BM25Index:
        """Tokenise and index ``docs`` (title and text joined, unless ``config.use_title`` is off)."""
        config = config or BM25Config()
        doc_ids: list[str] = []
        texts: list[str] = []
        for doc in docs:
            doc_ids.append(doc.doc_id)
            texts.append(doc.full_text() if config.use_title else doc.text)
        check_doc_ids(doc_ids, "BM25Index.build")
        index = cls(bm25s.BM25(k1=config.k1, b=config.b, method=config.method), doc_ids, config)
        tokens = bm25s.tokenize(
            texts,
            token_pattern=config.token_pattern,
            stopwords=config.stopwords,
            stemmer=index._stemmer,
            return_ids=True,
            show_progress=show_progress,
        )
        if not tokens.vocab:
            raise ValueError(
                f"BM25Index.build: expected documents with at least one term, found none in {len(doc_ids)} "
                f"documents after tokenisation (token_pattern {config.token_pattern!r}, stopwords {config.stopwords!r})"
            )
        index.retriever.index(tokens, show_progress=show_progress)
        logger.info("BM25 index: %d documents, %d terms", len(doc_ids), len(tokens.vocab))
        return index

    def search(
        self, queries: QueryInput, k: int = 1000, n_threads: int = 0, show_progress: bool = False
    ) -> list[ScoredDoc]:
        """Top-``k`` documents per query, best first; documents sharing no term with the query are left out.

        ``queries`` maps query ids to texts or :class:`~auxir.data.records.Query`. ``n_threads`` is
        bm25s's thread pool over queries (0: in this thread, -1: one per CPU).
        """
        check_k(k)
        query_ids, texts = query_texts(queries)
        if not query_ids:
            return []
        tokens = bm25s.tokenize(
            texts,
            token_pattern=self.config.token_pattern,
            stopwords=self.config.stopwords,
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )
        k = min(k, len(self.doc_ids))
        # numpy top-k: bm25s would otherwise pick JAX when it is installed, and JAX reserves most of the
        # GPU's memory on first use (seen under torchrun: NCCL then failed with out-of-memory).
        indices, scores = self.retriever.retrieve(
            tokens, k=k, n_threads=n_threads, show_progress=show_progress, backend_selection="numpy"
        )
        rows: list[ScoredDoc] = []
        for query_id, query_indices, query_scores in zip(query_ids, indices, scores, strict=True):
            matched = query_scores > 0  # bm25s pads with zero-score documents when fewer than k match
            for doc_index, score in zip(query_indices[matched], query_scores[matched], strict=True):
                rows.append(ScoredDoc(query_id, self.doc_ids[int(doc_index)], float(score)))
        return sort_run(rows)

    def save(self, directory: str | Path) -> None:
        """Write the index, its doc ids and its configuration into ``directory`` (atomically)."""
        with atomic_directory(directory) as tmp:
            self.retriever.save(str(tmp), show_progress=False)
            write_ids(tmp / _DOC_IDS_FILE, self.doc_ids)
            write_manifest(
                tmp,
                "bm25",
                self.config.to_dict(),
                doc_ids=self.doc_ids,
                num_docs=len(self.doc_ids),
                bm25s_version=bm25s.__version__,
            )

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = False) -> BM25Index:
        """Open an index written by :meth:`save` (``mmap``: keep the score matrix on disk)."""
        manifest = read_manifest(directory, kind="bm25")
        config = BM25Config.from_dict(manifest["config"])
        retriever = bm25s.BM25.load(str(directory), mmap=mmap, show_progress=False)
        doc_ids = read_ids(Path(directory) / _DOC_IDS_FILE, expected_count=retriever.scores["num_docs"])
        return cls(retriever, doc_ids, config)
