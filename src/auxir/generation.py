"""Queries written by a cross-encoder's token head for documents (doc2query-style expansions, GDMTL §4.1).

An encoder-decoder (``Seq2SeqRanker``, GDMTL_S / GDMTL_C) generates with Hugging Face's ``generate`` instead
(``_one_seq2seq``): the document → encoder, the query from the decoder, with the same methods and settings.

A model trained with ``query_generation`` decodes a query from a document under mixed attention
(``CrossEncoder.mixed_attention``): ``[CLS] document [SEP] query so far``, the next token read from the state at
the last position. ``greedy`` writes one query, ``beam`` the ``num_queries`` best of a beam search by total
log-probability, ``sample`` ``num_queries`` independent samples (``temperature``, ``top_k``). A query ends at
the separator token or after ``max_length`` tokens. No key-value cache: each step re-encodes the pair, which
is fine for expansion-sized outputs (tens of tokens) and keeps the mask the one training used.

    from auxir.generation import GenerationConfig, generate_queries
    queries = generate_queries(model, ["a document text"], GenerationConfig(method="beam", num_queries=3))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from auxir.models.cross_encoder import prepend


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

    def __post_init__(self) -> None:
        if self.method not in ("greedy", "beam", "sample"):
            raise ValueError(f"generation method: expected greedy, beam or sample, found {self.method!r}")
        if self.num_queries < 1 or self.max_length < 1 or self.beam_size < 1:
            raise ValueError("generation: num_queries, max_length and beam_size must be at least 1")
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
    generator = torch.Generator().manual_seed(config.seed)
    was_training = model.training
    model.eval()
    try:
        return [
            [model.tokenizer.decode(q) for q in _one(model, text, config, generator)] for text in documents
        ]
    finally:
        model.train(was_training)


def _one(model, text: str, config: GenerationConfig, generator: torch.Generator) -> list[list[int]]:
    if hasattr(model, "generation_loss"):  # an encoder-decoder: its decoder generates
        return _one_seq2seq(model, text, config, generator)
    device = next(model.parameters()).device
    tokenizer = model.tokenizer
    room = model.config.max_length - model.template.num_special - config.max_length
    prefix = model.text_ids("sum:") if config.prefix else ()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: max(room - len(prefix), 1)]
    source, source_len = prepend(
        prefix, torch.tensor([ids], device=device), torch.tensor([len(ids)], device=device)
    )
    rows = {"greedy": 1, "beam": config.beam_size, "sample": config.num_queries}[config.method]
    stop = tokenizer.sep_token_id
    banned = [i for i in tokenizer.all_special_ids if i != stop]
    target = torch.zeros((rows, 0), dtype=torch.long, device=device)
    scores = torch.zeros(rows, device=device)
    done: list[tuple[float, list[int]]] = []
    alive = torch.ones(rows, dtype=torch.bool, device=device)
    for step in range(config.max_length):
        n = target.shape[0]
        out = model.mixed_attention(
            source.expand(n, -1), source_len.expand(n), target, torch.full((n,), step, device=device)
        )
        where = out.target_start[:, 0] - 1 + step  # the last position: it predicts the next target token
        logits = model.token_head(out.last_hidden_state[torch.arange(n, device=device), where]).float()
        logits[:, banned] = float("-inf")
        logp = torch.log_softmax(logits / config.temperature, dim=-1)  # (n, V)
        if config.method == "beam":
            total = (scores.unsqueeze(1) + logp).flatten()  # (n * V,)
            best = total.topk(min(config.beam_size, total.numel())).indices
            parent, token = best // logp.shape[1], best % logp.shape[1]
            target = torch.cat([target[parent], token.unsqueeze(1)], dim=1)
            scores = total[best]
            ended = token == stop
            done += [(float(scores[i]), target[i, :-1].tolist()) for i in ended.nonzero().flatten().tolist()]
            target, scores = target[~ended], scores[~ended]
            if len(done) >= config.beam_size or target.shape[0] == 0:
                break
            continue
        if config.method == "greedy":
            token = logp.argmax(dim=-1)
        else:
            weights = logp.exp()
            if config.top_k:
                kth = weights.topk(min(config.top_k, weights.shape[1]), dim=-1).values[:, -1:]
                weights = torch.where(weights >= kth, weights, torch.zeros_like(weights))
            token = torch.multinomial(weights.cpu(), 1, generator=generator).flatten().to(device)
        token = torch.where(alive, token, torch.full_like(token, stop))
        target = torch.cat([target, token.unsqueeze(1)], dim=1)
        alive &= token != stop
        if not alive.any():
            break
    if config.method == "beam":
        done += [(float(s), t.tolist()) for s, t in zip(scores, target)]  # unfinished beams end at max_length
        done.sort(key=lambda item: -item[0])
        return [tokens for _, tokens in done[: config.num_queries]]
    queries = []
    for row in target.tolist():
        queries.append(row[: row.index(stop)] if stop in row else row)
    return queries


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
