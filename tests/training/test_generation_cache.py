"""Incremental (key-value cached) query generation against re-encoding the whole pair at every step.

The reference is ``ReencodingDecoder``: ``CrossEncoder.mixed_attention`` over ``[CLS] document [SEP] query so
far [SEP]``, as training reads it (``test_generate_queries`` pins it against a hand-written loop). The cached
decoder must give the same next-token logits at every step (to float32 rounding), including after rows are
copied, reordered and dropped, and so the same queries for every search method, on a batch of documents of
different lengths (padding in the cache).
"""

from __future__ import annotations

import logging

import pytest
import torch

from auxir import generation
from auxir.generation import GenerationConfig, generate_queries
from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig
from auxir.models.mixed_attention_decoding import CachedDecoder, ReencodingDecoder

IMPLEMENTATIONS = ("eager", "sdpa")
DOCS = [
    "cat",
    "bank money loan interest rate credit",
    "star planet orbit light space moon the sea fish swim wave salt boat",
    "gene mutation cell",
]
SETTINGS = {
    "greedy": {"method": "greedy", "num_queries": 1},
    "beam": {"method": "beam", "num_queries": 3, "beam_size": 4},
    "sample": {"method": "sample", "num_queries": 3, "top_k": 8, "seed": 1},
}


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def model(request, tiny_bert) -> CrossEncoder:
    torch.manual_seed(0)
    model = CrossEncoder.from_pretrained(str(tiny_bert), CrossEncoderConfig(max_length=48)).eval()
    try:
        model.backbone.set_attn_implementation(request.param)
    except (ValueError, ImportError) as error:
        pytest.skip(f"attention implementation {request.param!r} not available: {error}")
    assert model.backbone.config._attn_implementation == request.param
    return model


def padded_documents(model) -> tuple[torch.Tensor, torch.Tensor]:
    ids = [model.tokenizer(text, add_special_tokens=False)["input_ids"] for text in DOCS]
    lengths = torch.tensor([len(i) for i in ids])
    source = torch.full((len(ids), int(lengths.max())), model.template.pad_id)
    for row, i in enumerate(ids):
        source[row, : len(i)] = torch.tensor(i)
    return source, lengths


@torch.inference_mode()
def test_every_step_gives_the_logits_of_re_encoding(model):
    source, lengths = padded_documents(model)
    assert len(set(lengths.tolist())) == len(DOCS)  # every row of the cache has its own padding
    cached = CachedDecoder(model, source, lengths, max_new_tokens=5)
    reference = ReencodingDecoder(model, source, lengths, max_new_tokens=5)
    torch.testing.assert_close(cached.start(), reference.start(), atol=1e-5, rtol=0)
    generator = torch.Generator().manual_seed(0)
    vocab = model.token_head.bias.shape[0]
    # rows: one per document, then three per document (sampling's copies), then a beam-style reorder that
    # repeats some rows and drops others (a finished document), then unchanged
    steps = [
        torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]),
        torch.tensor([2, 2, 0, 4, 3, 3, 11, 9, 9]),
        None,
        torch.tensor([8, 0, 1, 5]),
        None,
    ]
    rows = len(DOCS)
    for parents in steps:
        rows = rows if parents is None else len(parents)
        tokens = torch.randint(5, vocab, (rows,), generator=generator)  # no special tokens
        expected = reference.step(tokens, parents)
        found = cached.step(tokens, parents)
        assert found.shape == expected.shape == (rows, vocab)
        torch.testing.assert_close(found, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="holds max_new_tokens = 5 steps"):
        cached.step(tokens)


@pytest.mark.parametrize("method", SETTINGS)
def test_cached_generation_writes_the_queries_of_re_encoding(model, method):
    config = GenerationConfig(max_length=6, **SETTINGS[method])
    cached = generate_queries(model, DOCS, config)
    reference = generate_queries(model, DOCS, GenerationConfig(**{**vars(config), "kv_cache": False}))
    assert cached == reference
    assert [len(q) for q in cached] == [config.num_queries] * len(DOCS)
    # not a trivial agreement: documents stop at different steps, some queries run to max_length
    lengths = {len(q.split()) for queries in cached for q in queries}
    assert max(lengths) == 6 and len(lengths) > 1, lengths


@pytest.mark.parametrize("method", SETTINGS)
def test_a_documents_queries_do_not_depend_on_its_batch(model, method):
    config = GenerationConfig(max_length=6, **SETTINGS[method])
    together = generate_queries(model, DOCS, config)
    alone = generate_queries(model, DOCS, GenerationConfig(**{**vars(config), "batch_size": 1}))
    assert together == alone


def test_beam_search_keeps_distinct_hypotheses(model):
    beams = generate_queries(model, DOCS, GenerationConfig(max_length=6, **SETTINGS["beam"]))
    assert all(len(set(queries)) == len(queries) for queries in beams), beams


def test_an_encoder_the_cache_does_not_cover_is_re_encoded_with_a_log_line(model, monkeypatch, caplog):
    config = GenerationConfig(max_length=4, **SETTINGS["greedy"])
    expected = generate_queries(model, DOCS, config)
    monkeypatch.setattr(model.backbone.config, "model_type", "not-cached")
    generation._log_reencoding.cache_clear()
    with caplog.at_level(logging.WARNING, logger="auxir.generation"):
        assert generate_queries(model, DOCS, config) == expected
    assert "found 'not-cached'; re-encoding the whole pair at every step" in caplog.text
