"""Query by document: queries longer than max_query_length, cut into passages and scored pair by pair."""

from __future__ import annotations

import pytest
import torch

from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig
from auxir.reranking import token_caches


def model(tiny_bert, **config) -> CrossEncoder:
    torch.manual_seed(0)
    settings = {"max_length": 40, "max_query_length": 4, **config}
    return CrossEncoder.from_pretrained(str(tiny_bert), config=CrossEncoderConfig(**settings)).eval()


def ids(m: CrossEncoder, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = m.tokenizer(text, add_special_tokens=False)["input_ids"]
    return torch.tensor([tokens]), torch.tensor([len(tokens)])


QUERY = "cat cats kitten fur purr mouse dog bone leash"  # 9 tokens: passages 0-3, 4-7, 8
DOC = "cat kitten purr"


@pytest.mark.parametrize("mode", ["max", "mean"])
def test_a_long_query_scores_as_its_passages_aggregated(tiny_bert, mode) -> None:
    long = model(tiny_bert, long_queries=mode)
    short = model(tiny_bert)  # the same weights (same seed): scores one pair, the query cut at 4 tokens
    query, query_len = ids(long, QUERY)
    doc, doc_len = ids(long, DOC)
    with torch.no_grad():
        got = long.score(query, query_len, doc, doc_len)
        parts = torch.stack(
            [short.score(query[:, s : s + 4], (query_len - s).clamp(max=4), doc, doc_len) for s in (0, 4, 8)]
        )
    expected = parts.max(dim=0).values if mode == "max" else parts.mean(dim=0)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert token_caches(long)[0].max_length == 4 * 8  # the cache keeps what the passages can cover


def test_truncate_reads_the_first_passage_only_and_rows_do_not_mix(tiny_bert) -> None:
    m = model(tiny_bert, long_queries="max", query_stride=2, max_query_passages=3)
    assert m.max_query_tokens == 4 + 2 * 2
    query, query_len = ids(m, QUERY)
    short_q, short_len = ids(m, "cat cats")
    doc, doc_len = ids(m, DOC)
    pad = torch.zeros((1, query.shape[1] - short_q.shape[1]), dtype=short_q.dtype)
    both = torch.cat([query, torch.cat([short_q, pad], dim=1)]), torch.cat([query_len, short_len])
    with torch.no_grad():
        together = m.score(*both, doc.expand(2, -1), doc_len.expand(2))
        alone = torch.cat(
            [m.score(query, query_len, doc, doc_len), m.score(short_q, short_len, doc, doc_len)]
        )
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    truncating = model(tiny_bert)
    with torch.no_grad():
        first = truncating.score(query, query_len, doc, doc_len)
        cut = truncating.score(query[:, :4], torch.tensor([4]), doc, doc_len)
    torch.testing.assert_close(first, cut)


def test_long_queries_refuse_what_would_read_the_whole_query(tiny_bert) -> None:
    with pytest.raises(ValueError, match="long_queries='max' cannot be combined"):
        model(tiny_bert, long_queries="max", bi_encoder="separate")
    with pytest.raises(ValueError, match="1 ≤ query_stride ≤ max_query_length .* found query_stride=9"):
        CrossEncoderConfig(long_queries="mean", max_query_length=4, query_stride=9)


@pytest.mark.parametrize("objective", ["mqp", "mpp", "query_generation", "doc_representation"])
def test_objectives_read_a_long_query_s_first_passage(tiny_bert, objective) -> None:
    """Token objectives pack one pair: a long query's first passage, never past max_length (no crash)."""
    from auxir.data.collate import GroupBatch
    from auxir.objectives import build_objective

    m = model(tiny_bert, long_queries="max").train()
    query, query_len = ids(m, QUERY)
    doc, doc_len = ids(m, DOC + " leash bone")
    docs = torch.stack([doc[0], torch.cat([doc[0][2:], doc[0][:2]])]).unsqueeze(0)
    batch = GroupBatch(
        query,
        query_len,
        docs,
        doc_len.expand(2).unsqueeze(0),
        torch.tensor([[1.0, 0.0]]),
        ["q"],
        [["a", "b"]],
    )
    torch.manual_seed(1)
    loss = build_objective(objective)(m, batch)
    assert torch.isfinite(loss)
    loss.backward()
