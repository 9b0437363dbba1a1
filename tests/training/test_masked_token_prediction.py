"""MQP (SJTF §3.1): the label is the masked query token; special and document tokens are never masked."""

from __future__ import annotations

import pytest
import torch

from auxir.objectives import build_objective
from auxir.objectives.masked_token_prediction import choose_masked_positions

from .helpers import tiny_batch, tiny_cross_encoder


class Spy:
    """Wraps the model to record what the objective fed it and which vectors it decoded."""

    def __init__(self, model):
        self.model, self.template, self.token_head_inputs = model, model.template, []
        self.packed = None

    def pack(self, *args):
        self.packed = self.model.pack(*args)
        return self.packed

    def __call__(self, inputs):
        return self.model(inputs)

    def token_head(self, hidden):
        self.token_head_inputs.append(hidden)
        return self.model.token_head(hidden)


def run_spy(model, batch, name, **params):
    spy = Spy(model)
    torch.manual_seed(3)
    loss = build_objective(name, params)(spy, batch)
    return spy, loss


def masked_positions(spy):
    return (spy.packed.input_ids == spy.template.mask_id).nonzero().tolist()


def test_mqp_masks_one_query_token_with_the_positive_document(tiny_bert):
    model = tiny_cross_encoder(tiny_bert)
    batch = tiny_batch(model)
    spy, loss = run_spy(model, batch, "mqp")
    ids = spy.packed.input_ids
    specials = {model.tokenizer.cls_token_id, model.tokenizer.sep_token_id, model.tokenizer.pad_token_id}
    for row, col in masked_positions(spy):
        q_len = int(batch.query_len[row])
        offset = col - 1  # after [CLS]
        assert 0 <= offset < q_len, "the mask must fall on a query token"
        assert int(batch.query[row, offset]) not in specials
    assert len(masked_positions(spy)) == batch.query.shape[0]  # one per group
    # The document in the MQP input is the positive (document 0) of each group.
    for row in range(ids.shape[0]):
        q_len, d_len = int(batch.query_len[row]), int(batch.doc_len[row, 0])
        start = 1 + q_len + 1
        assert ids[row, start : start + d_len].tolist() == batch.docs[row, 0, :d_len].tolist()


def test_mqp_label_is_the_original_token(tiny_bert):
    model = tiny_cross_encoder(tiny_bert)
    batch = tiny_batch(model)
    torch.manual_seed(3)
    positions, valid = choose_masked_positions(batch.query_len, batch.query.shape[1], 1)
    spy, loss = run_spy(model, batch, "mqp")
    # Same seed → same positions: the objective's labels are the tokens originally there.
    expected = batch.query.gather(1, positions)
    for (row, col), label in zip(masked_positions(spy), expected[:, 0].tolist()):
        assert col - 1 == int(positions[row, 0])
        assert label == int(batch.query[row, col - 1])
    # And the loss equals the cross-entropy against those tokens from the decoded vectors.
    logits = model.token_head(spy.token_head_inputs[0]).float()
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), expected.flatten())
    assert loss.item() == pytest.approx(ce.item(), rel=1e-6)


def test_mpp_masks_a_document_token_only(tiny_bert):
    model = tiny_cross_encoder(tiny_bert)
    batch = tiny_batch(model)
    spy, _ = run_spy(model, batch, "mpp")
    for row, col in masked_positions(spy):
        q_len, d_len = int(batch.query_len[row]), int(batch.doc_len[row, 0])
        assert 1 + q_len + 1 <= col < 1 + q_len + 1 + d_len


def test_mqp_all_uses_any_candidate(tiny_bert):
    model = tiny_cross_encoder(tiny_bert)
    batch = tiny_batch(model)
    seen = set()
    for seed in range(12):
        spy = Spy(model)
        torch.manual_seed(seed)
        build_objective("mqp_all")(spy, batch)
        q_len = int(batch.query_len[0])
        start = 1 + q_len + 1
        doc0 = spy.packed.input_ids[0, start : start + 3].tolist()
        seen.add(tuple(doc0))
    assert len(seen) == 2  # both the positive and the negative served as context


def test_uniform_choice_covers_every_position_and_respects_length():
    lengths = torch.tensor([3, 1, 0])
    counts = torch.zeros(3, 5)
    torch.manual_seed(0)
    for _ in range(600):
        pos, valid = choose_masked_positions(lengths, 5, 1)
        assert valid.tolist() == [[True], [True], [False]]
        assert pos[0, 0] < 3 and pos[1, 0] == 0
        counts[0, pos[0, 0]] += 1
    assert (counts[0, :3] > 150).all()  # ~200 each when uniform


def test_num_masked_picks_distinct_positions():
    torch.manual_seed(0)
    pos, valid = choose_masked_positions(torch.tensor([6, 2]), 6, 3)
    assert len(set(pos[0].tolist())) == 3 and valid[0].all()
    assert valid[1].tolist() == [True, True, False]
