"""Queries written by a cross-encoder's token head for documents (doc2query-style expansions, GDMTL §4.1).

An encoder-decoder (``Seq2SeqRanker``, GDMTL_S / GDMTL_C) generates with Hugging Face's ``generate`` instead
(``_one_seq2seq``): the document → encoder, the query from the decoder, with the same methods and settings.

A model trained with ``query_generation`` decodes a query from a document under mixed attention
(``CrossEncoder.mixed_attention``): ``[CLS] document [SEP] query so far``, the next token read from the state at
the last position. ``greedy`` writes one query, ``beam`` the ``num_queries`` best of a beam search by total
log-probability, ``sample`` ``num_queries`` independent samples (``temperature``, ``top_k``). A query ends at
the separator token or after ``max_length`` tokens. Documents are decoded ``batch_size`` at a time (similar
lengths together); sampling draws each document's queries from its own generator seeded with ``seed``, so a
document's queries do not depend on the documents decoded beside it.

The document and the query tokens already written never attend to later tokens, so their keys and values
never change: with ``kv_cache`` (the default) the document is encoded once and each step runs only the new
token through the layers (``models.mixed_attention_decoding.CachedDecoder``). Encoders the cache does not
cover are re-encoded whole at every step, as the model was trained, with a log line saying why.

    from auxir.generation import GenerationConfig, generate_queries
    queries = generate_queries(model, ["a document text"], GenerationConfig(method="beam", num_queries=3))
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Literal

import torch

from auxir.models.cross_encoder import prepend
from auxir.models.mixed_attention_decoding import (
    CachedDecoder,
    MixedAttentionDecoder,
    ReencodingDecoder,
    cache_blocker,
)

logger = logging.getLogger(__name__)


@dataclass
class GenerationConfig:
    method: Literal["greedy", "beam", "sample"] = "sample"
    num_queries: int = 5  # per document (greedy: 1)
    max_length: int = 32  # query tokens
    beam_size: int = 5
    temperature: float = 1.0
    top_k: int = 0  # sample from the k most likely tokens (0: all)
    prefix: bool = False  # "sum:" before the document, as a model trained with query_generation prefix: true
    seed: int = 0
    batch_size: int = 32  # documents decoded together (encoder-only models)
    kv_cache: bool = True  # keep the keys and values of the document and the query so far (encoder-only)

    def __post_init__(self) -> None:
        if self.method not in ("greedy", "beam", "sample"):
            raise ValueError(f"generation method: expected greedy, beam or sample, found {self.method!r}")
        if self.num_queries < 1 or self.max_length < 1 or self.beam_size < 1 or self.batch_size < 1:
            raise ValueError(
                "generation: num_queries, max_length, beam_size and batch_size must be at least 1"
            )
        if self.method == "beam" and self.num_queries > self.beam_size:
            raise ValueError(
                f"generation: beam search returns at most beam_size = {self.beam_size} queries, "
                f"asked for {self.num_queries}"
            )
        if self.temperature <= 0:
            raise ValueError(f"generation: temperature must be > 0, found {self.temperature}")


@torch.inference_mode()
def generate_queries(model, documents: list[str], config: GenerationConfig | None = None) -> list[list[str]]:
    """For each document text, its generated queries (as text), best first for ``beam``."""
    config = config or GenerationConfig()
    was_training = model.training
    model.eval()
    try:
        if hasattr(model, "generation_loss"):  # an encoder-decoder: its decoder generates
            generator = torch.Generator().manual_seed(config.seed)
            tokens = [_one_seq2seq(model, text, config, generator) for text in documents]
        else:
            tokens = _mixed_attention_queries(model, documents, config)
        return [[model.tokenizer.decode(q) for q in queries] for queries in tokens]
    finally:
        model.train(was_training)


def _mixed_attention_queries(model, documents: list[str], config: GenerationConfig) -> list[list[list[int]]]:
    """Each document's queries as token ids, the documents decoded ``batch_size`` at a time."""
    device = next(model.parameters()).device
    tokenizer = model.tokenizer
    room = model.config.max_length - model.template.num_special - config.max_length
    prefix = model.text_ids("sum:") if config.prefix else ()
    ids = [
        tokenizer(text, add_special_tokens=False)["input_ids"][: max(room - len(prefix), 1)]
        for text in documents
    ]
    decoder_class = ReencodingDecoder
    if config.kv_cache:
        blocker = cache_blocker(model)
        if blocker is None:
            decoder_class = CachedDecoder
        else:
            _log_reencoding(blocker)
    stop = tokenizer.sep_token_id
    banned = [i for i in tokenizer.all_special_ids if i != stop]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))  # similar lengths together: less padding
    queries: list[list[list[int]]] = [[] for _ in ids]
    for first in range(0, len(order), config.batch_size):
        chunk = order[first : first + config.batch_size]
        lengths = torch.tensor([len(ids[i]) for i in chunk], device=device)  # (n,)
        source = torch.full((len(chunk), max(int(lengths.max()), 1)), model.template.pad_id, device=device)
        for row, i in enumerate(chunk):
            source[row, : len(ids[i])] = torch.tensor(ids[i], device=device)
        source, lengths = prepend(prefix, source, lengths)  # (n, Ls) right-padded, (n,)
        for i, found in zip(
            chunk, _search(decoder_class(model, source, lengths, config.max_length), config, stop, banned)
        ):
            queries[i] = found
    return queries


@functools.cache
def _log_reencoding(reason: str) -> None:
    """Once per reason: the command line calls ``generate_queries`` once per document."""
    logger.warning("generate_queries: %s; re-encoding the whole pair at every step (slow)", reason)


def _search(
    decoder: MixedAttentionDecoder, config: GenerationConfig, stop: int, banned: list[int]
) -> list[list[list[int]]]:
    """Each document's queries (token ids, without the stop token), best first for ``beam``.

    Rows are grouped by document, ``width`` rows a document in ``active`` order: one at the start, then
    ``rows_per_doc`` (beam: slots whose ended or unused hypotheses score -inf). A document leaves the batch
    when it is done (greedy / sample: every row has stopped; beam: ``beam_size`` ended hypotheses or none
    left alive)."""
    rows_per_doc = {"greedy": 1, "beam": config.beam_size, "sample": config.num_queries}[config.method]
    logits = decoder.start()  # (n, V): one row per document
    n_docs, vocab = logits.shape
    device = logits.device
    active = list(range(n_docs))
    width = 1
    target = torch.zeros((n_docs, 0), dtype=torch.long, device=device)  # (rows, t) the queries so far
    scores = torch.zeros((n_docs, 1), device=device)  # beam: each row's total log-probability
    alive = torch.ones((n_docs, 1), dtype=torch.bool, device=device)  # greedy / sample: no stop token yet
    generators = [torch.Generator().manual_seed(config.seed) for _ in range(n_docs)]
    ended: list[list[tuple[float, list[int]]]] = [[] for _ in range(n_docs)]  # beam: (score, tokens)
    queries: list[list[list[int]]] = [[] for _ in range(n_docs)]
    for step in range(config.max_length):
        docs = len(active)
        logits[:, banned] = float("-inf")
        logp = torch.log_softmax(logits / config.temperature, dim=-1).view(docs, width, vocab)
        if config.method == "beam":
            total = (scores.unsqueeze(2) + logp).flatten(1)  # (docs, width * V)
            scores, best = total.topk(min(rows_per_doc, total.shape[1]), dim=1)  # (docs, k), best first
            parent, token = best // vocab, best % vocab  # (docs, k) the slot extended, the token added
            finished = (token == stop) & scores.isfinite()
            if finished.any():
                values, parents = scores.tolist(), parent.tolist()
                for d, j in finished.nonzero().tolist():
                    ended[active[d]].append((values[d][j], target[d * width + parents[d][j]].tolist()))
            scores = scores.masked_fill(finished, float("-inf"))  # an ended hypothesis is not extended
            full = torch.tensor([len(ended[doc]) >= rows_per_doc for doc in active], device=device)
            done = full | ~scores.isfinite().any(dim=1)  # (docs,)
        else:
            if width < rows_per_doc:  # the first step: a document's rows all start from its one state
                logp = logp.expand(docs, rows_per_doc, vocab)
            parent = torch.arange(width, device=device).expand(
                docs, rows_per_doc
            )  # (docs, k): 1 or k rows before
            token = (
                logp.argmax(dim=-1) if config.method == "greedy" else _draw(logp, active, generators, config)
            )
            alive = alive.expand(docs, rows_per_doc)
            token = torch.where(alive, token, torch.full_like(token, stop))  # (docs, k)
            alive = alive & (token != stop)
            done = ~alive.any(dim=1)  # (docs,)
        rows = torch.arange(docs, device=device).unsqueeze(1) * width + parent  # (docs, k) the rows extended
        target = torch.cat([target[rows.flatten()], token.reshape(-1, 1)], dim=1)  # (docs * k, t + 1)
        reordered = config.method == "beam" or width != rows_per_doc
        width = rows_per_doc
        if bool(done.any()):
            for d in done.nonzero().flatten().tolist():
                queries[active[d]] = _finish(
                    target.view(docs, width, -1)[d], scores[d], ended[active[d]], config, stop
                )
            keep = ~done
            active = [doc for doc, kept in zip(active, keep.tolist()) if kept]
            rows, token, scores, alive = rows[keep], token[keep], scores[keep], alive[keep]
            target = target.view(docs, width, -1)[keep].flatten(0, 1)
            reordered = True
        if not active or step == config.max_length - 1:
            break
        logits = decoder.step(token.flatten(), rows.flatten() if reordered else None)
    for d, doc in enumerate(active):  # out of length: the rows as they stand
        queries[doc] = _finish(target.view(len(active), width, -1)[d], scores[d], ended[doc], config, stop)
    return queries


def _draw(
    logp: torch.Tensor, active: list[int], generators: list[torch.Generator], config: GenerationConfig
) -> torch.Tensor:  # (docs, k, V) -> (docs, k)
    """One token a row, each document's from its own generator (from ``temperature`` / ``top_k`` weights)."""
    weights = logp.exp()
    if config.top_k:
        kth = weights.topk(min(config.top_k, weights.shape[-1]), dim=-1).values[..., -1:]
        weights = torch.where(weights >= kth, weights, torch.zeros_like(weights))
    weights = weights.cpu()
    drawn = [torch.multinomial(weights[d], 1, generator=generators[doc]) for d, doc in enumerate(active)]
    return torch.stack(drawn).squeeze(-1).to(logp.device)


def _finish(
    rows: torch.Tensor,  # (k, t) a document's rows
    scores: torch.Tensor,  # (k,) their beam scores
    ended: list[tuple[float, list[int]]],
    config: GenerationConfig,
    stop: int,
) -> list[list[int]]:
    """A document's queries: its rows cut at the stop token, or for ``beam`` the ``num_queries`` best of the
    ended hypotheses and of the rows still alive."""
    if config.method == "beam":
        alive = [(s, row) for s, row in zip(scores.tolist(), rows.tolist()) if s != float("-inf")]
        best = sorted(ended + alive, key=lambda item: -item[0])
        return [tokens for _, tokens in best[: config.num_queries]]
    return [row[: row.index(stop)] if stop in row else row for row in rows.tolist()]


def _one_seq2seq(model, text: str, config: GenerationConfig, generator: torch.Generator) -> list[list[int]]:
    """Queries from a ``Seq2SeqRanker``'s decoder by ``generate`` of the wrapped Hugging Face model, the
    document framed for the encoder as ``query_generation`` framed it. Settings this config leaves open come
    from the checkpoint's generation config. The decoder's frame tokens (``[CLS]`` / ``<s>``, the end token)
    are not part of the returned queries; sampling draws from a seed taken from ``generator``."""
    device = next(model.parameters()).device
    prefix = model.text_ids("sum:") if config.prefix else ()
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    source, source_len = prepend(
        prefix, torch.tensor([ids], dtype=torch.long, device=device), torch.tensor([len(ids)], device=device)
    )
    framed = model.source_frame(source, source_len)
    inputs = {"input_ids": framed.input_ids, "attention_mask": framed.attention_mask}
    if model.accepts_token_types:
        inputs["token_type_ids"] = framed.token_type_ids
    template = model.template
    end = template.suffix[-1] if template.suffix else model.tokenizer.eos_token_id
    rows = {"greedy": 1, "beam": config.num_queries, "sample": config.num_queries}[config.method]
    settings = {
        "do_sample": config.method == "sample",
        "num_beams": config.beam_size if config.method == "beam" else 1,
        "num_return_sequences": rows,
        "max_new_tokens": config.max_length + len(template.prefix) + 1,  # the frame's first token and the end
        "decoder_start_token_id": model.decoder_start_id,
        "eos_token_id": end,
        "pad_token_id": template.pad_id,
    }
    if config.method == "sample":
        settings |= {"temperature": config.temperature, "top_k": config.top_k}  # 0: no top-k cut
    seed = int(torch.randint(2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        generated = model.model.generate(**inputs, **settings)  # (rows, T), decoder_start first
    special = set(model.tokenizer.all_special_ids)
    queries = []
    for row in generated[:, 1:].tolist():
        row = row[: row.index(end)] if end in row else row
        queries.append([t for t in row if t not in special])
    return queries


def write_expansions(path, expansions: dict[str, list[str]]) -> None:
    """``{"_id": doc_id, "queries": [...]}`` per line (atomically)."""
    import json

    from auxir.io import atomic_write

    with atomic_write(path) as f:
        for doc_id, queries in expansions.items():
            f.write(json.dumps({"_id": doc_id, "queries": queries}) + "\n")


def read_expansions(path) -> dict[str, list[str]]:
    """The file ``write_expansions`` writes; a malformed line is an error naming the file and line."""
    import json

    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: expected JSON, found {error.msg}") from None
            queries = record.get("queries") if isinstance(record, dict) else None
            if (
                not isinstance(record, dict)
                or not isinstance(record.get("_id"), str)
                or not (isinstance(queries, list) and all(isinstance(q, str) for q in queries))
            ):
                raise ValueError(
                    f'{path}, line {number}: expected {{"_id": "<doc id>", "queries": ["...", ...]}}, '
                    f"found {line.strip()[:120]!r}"
                )
            out[record["_id"]] = queries
    return out


def expanded(docs, expansions: dict[str, list[str]]):
    """Each document with its generated queries appended to its text (doc2query)."""
    for doc in docs:
        queries = expansions.get(doc.doc_id)
        yield doc._replace(text=f"{doc.text} {' '.join(queries)}") if queries else doc
