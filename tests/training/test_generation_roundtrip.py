"""What query_generation trains is what generate-queries decodes: a tiny model that has learnt three
(document, query) pairs under the mixed mask writes back those queries (greedy, 'sum:' prefix), and stops
after them only when it was trained to predict the closing [SEP] (``stop: true``)."""

from __future__ import annotations

import pytest
import torch

from auxir.generation import GenerationConfig, generate_queries
from auxir.objectives import build_objective

from .helpers import DOCS, GROUPS, QUERIES, tiny_batch, tiny_cross_encoder
from .test_generation_objectives import eager_model, hand_nll, row


def learnt(tiny_bert, stop: bool):
    model = tiny_cross_encoder(tiny_bert, segment_order="doc_first", token_head="tied")
    batch = tiny_batch(model)
    objective = build_objective("query_generation", {"prefix": True, "reduction": "mean", "stop": stop})
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        optimizer.zero_grad()
        loss = objective(model, batch)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05  # the three queries (and their ends) are learnt
    positives = [DOCS[docs[0]] for _, docs, _ in GROUPS]
    config = GenerationConfig(method="greedy", prefix=True, max_length=8)
    return [q[0] for q in generate_queries(model.eval(), positives, config)]


def test_a_model_trained_with_stop_writes_back_exactly_the_queries_it_learnt(tiny_bert) -> None:
    assert learnt(tiny_bert, stop=True) == [QUERIES[q] for q, _, _ in GROUPS]


def test_without_stop_the_learnt_query_comes_first_and_never_ends(tiny_bert) -> None:
    for generated, (query_id, _, _) in zip(learnt(tiny_bert, stop=False), GROUPS, strict=True):
        assert generated.startswith(QUERIES[query_id])
        assert len(generated.split()) == 8  # eq. 5 never labels the end: every query runs to max_length


def test_stop_adds_the_closing_sep_to_each_target_by_hand(tiny_bert) -> None:
    model = eager_model(tiny_bert)
    batch = tiny_batch(model)
    sep = model.tokenizer.sep_token_id
    sums, tokens = [], 0
    for b in range(len(GROUPS)):
        doc = row(batch.docs[b, 0], batch.doc_len[b, 0])
        query = row(batch.query[b], batch.query_len[b])
        sums.append(hand_nll(model, doc, [*query, sep]))  # causal: the extra [SEP] changes no earlier state
        tokens += len(query) + 1
    with torch.no_grad():
        summed = build_objective("query_generation", {"stop": True})(model, batch)
        mean = build_objective("query_generation", {"stop": True, "reduction": "mean"})(model, batch)
    assert summed.item() == pytest.approx(sum(sums) / len(sums), abs=1e-4)
    assert mean.item() == pytest.approx(sum(sums) / tokens, abs=1e-5)


def test_stop_must_be_a_boolean() -> None:
    with pytest.raises(ValueError, match="stop must be true or false, found 'yes'"):
        build_objective("query_generation", {"stop": "yes"})
