"""Training samples, batching and pair packing against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from auxir.data.collate import length_grouped_batches
from auxir.data.records import Qrel, ScoredDoc
from auxir.data.samples import SampleConfig, build_training_samples
from auxir.models.cross_encoder import CrossEncoder
from auxir.models.pair_template import PairTemplate

QRELS = [Qrel("q1", "d1", 2), Qrel("q1", "d2", 0), Qrel("q2", "d3", 1), Qrel("q3", "d9", 0)]
RUN = [ScoredDoc("q1", d, 10.0 - i) for i, d in enumerate(["d1", "d2", "d4", "d5"])] + [
    ScoredDoc("q2", "d3", 5.0),
    ScoredDoc("q3", "d9", 1.0),
]


def test_groups_exclude_positives_and_count_skipped_queries(caplog):
    samples = build_training_samples(["q1", "q2", "q3", "q4"], QRELS, RUN, SampleConfig(num_negatives=2))
    assert [(g.query_id, g.positive_id, g.relevance) for g in samples.groups] == [("q1", "d1", 2)]
    assert samples.groups[0].negative_pool == ["d2", "d4", "d5"]  # judged negative d2 kept by default
    assert samples.skipped_no_positive == 2  # q3 (only a grade 0) and q4 (no judgement)
    assert samples.skipped_no_negative == 1  # q2: its only candidate is its positive
    assert "skipped 2 queries without a positive and 1 without a negative" in caplog.text


def test_judged_negatives_can_be_left_out():
    samples = build_training_samples(["q1"], QRELS, RUN, SampleConfig(judged_negatives=False))
    assert samples.groups[0].negative_pool == ["d4", "d5"]


def test_negative_sampling_is_seeded_per_epoch():
    samples = build_training_samples(["q1"] * 1, QRELS, RUN, SampleConfig(num_negatives=1, seed=3))
    samples.groups *= 20
    config = SampleConfig(num_negatives=1, seed=3)
    first, again, other = samples.epoch(0, config), samples.epoch(0, config), samples.epoch(1, config)
    assert first == again and first != other
    assert all(docs[0] == "d1" and labels == [2, 0] for _, docs, labels in first)


def test_length_grouped_batches_cover_every_item_once():
    lengths = np.random.default_rng(0).integers(5, 100, size=103)
    batches = length_grouped_batches(lengths, batch_size=8, seed=1, epoch=0, megabatch=4)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(103))
    assert [b.tolist() for b in batches] == [b.tolist() for b in length_grouped_batches(lengths, 8, 1, 0, 4)]
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 2  # batches hold similar lengths


def test_packing_equals_the_tokenizer_pair_encoding(tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    template = PairTemplate.from_tokenizer(tokenizer)
    pairs = [("cat kitten", "the dog is a puppy with a bone"), ("gene", "cell"), ("a b c about the", "sea")]
    q = [tokenizer(a, add_special_tokens=False)["input_ids"] for a, _ in pairs]
    d = [tokenizer(b, add_special_tokens=False)["input_ids"] for _, b in pairs]

    def padded(rows):
        width = max(map(len, rows))
        return torch.tensor([r + [0] * (width - len(r)) for r in rows]), torch.tensor([len(r) for r in rows])

    packed = template.pack(*padded(q), *padded(d))
    reference = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    assert torch.equal(packed.input_ids, reference["input_ids"])
    assert torch.equal(packed.attention_mask, reference["attention_mask"])
    assert torch.equal(packed.token_type_ids, reference["token_type_ids"])


def test_doc_first_order_puts_the_document_before_the_query(tiny_bert):
    from auxir.models.cross_encoder import CrossEncoderConfig

    model = CrossEncoder.from_pretrained(str(tiny_bert), CrossEncoderConfig(segment_order="doc_first"))
    query, doc = torch.tensor([[7, 8]]), torch.tensor([[9, 10, 11]])
    inputs = model.pack(query, torch.tensor([2]), doc, torch.tensor([3]))
    cls, sep = model.tokenizer.cls_token_id, model.tokenizer.sep_token_id
    assert inputs.input_ids.tolist() == [[cls, 9, 10, 11, sep, 7, 8, sep]]
    assert int(inputs.doc_start) == 1 and int(inputs.query_start) == 5


def test_fp16_checkpoint_loads_with_fp32_master_weights(tiny_bert, tmp_path):
    from transformers import BertModel

    BertModel.from_pretrained(str(tiny_bert)).half().save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(str(tiny_bert)).save_pretrained(tmp_path)
    model = CrossEncoder.from_pretrained(str(tmp_path))
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_unloadable_model_gives_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot load model"):
        CrossEncoder.from_pretrained(str(tmp_path / "no-such-model"))
