"""MQP (SJTF §3.1): the label is the masked query token; special and document tokens are never masked."""

from __future__ import annotations

import pytest
import torch

from auxir.data.collate import GroupBatch, GroupCollator
from auxir.data.token_cache import TokenCache
from auxir.objectives import OBJECTIVES, build_objective, masked_token_prediction
from auxir.objectives.masked_token_prediction import MaskedTokenPrediction, choose_masked_positions

from .helpers import tiny_batch, tiny_cross_encoder


class Spy:
    """Wraps the model to record what the objective fed it and which vectors it decoded."""

    def __init__(self, model):
        self.model, self.template, self.token_head_inputs = model, model.template, []
        self.packed = None

    def pack(self, *args):
        self.packed = self.model.pack(*args)
        return self.packed

    def document_in_pair(self, *args):
        return self.model.document_in_pair(*args)

    def query_in_pair(self, *args):
        return self.model.query_in_pair(*args)

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


# -- empty target segments (e.g. Cranfield doc 995: empty, yet judged relevant) ---------------------------
MASKED = sorted(name for name, (cls, _) in OBJECTIVES.items() if cls is MaskedTokenPrediction)
ORDERS = ["query_first", "doc_first"]
EMPTY_QUERIES = {
    "short": "gene",
    "mid": "cat kitten purr",
    "long": "bank loan interest rate credit money the a",
    "long2": "tree forest leaf green branch root the a",
    "empty": "",
}
EMPTY_DOCS = {
    "pos": "the cat is a kitten with fur and purr of mouse",
    "neg": "green tree leaf",
    "long": " ".join(["sea fish swim wave salt boat star planet orbit light"] * 2),
    "long2": " ".join(["dog dogs puppy bark leash bone gene mutation cell dna"] * 2),
    "empty": "",
}


def empty_target_batch(model, name: str, context: str = "long", whole: bool = False) -> GroupBatch:
    """Two ordinary groups and one whose target segment is empty (all three with ``whole``).

    The empty row gets the longest context, the others long targets: the shape where an arbitrary
    position of the empty row, offset by its context, points past the packed width.
    """
    if OBJECTIVES[name][1]["target"] == "query":
        groups = [("long", ["pos", "neg"], [1, 0]), ("mid", ["neg", "pos"], [1, 0])]
        groups += [("empty", [context, context], [1, 0])]
        if whole:
            groups = [("empty", ds, labels) for _, ds, labels in groups]
    else:
        groups = [("short", ["long", "neg"], [1, 0]), ("mid", ["pos", "neg"], [1, 0])]
        groups += [(context, ["empty", "neg"], [1, 0])]
        if whole:
            groups = [(q, ["empty", *ds[1:]], labels) for q, ds, labels in groups]
    queries = TokenCache(model.tokenizer, model.config.max_query_length)
    docs = TokenCache(model.tokenizer, 32)
    queries.add(EMPTY_QUERIES, EMPTY_QUERIES.__getitem__)
    docs.add(EMPTY_DOCS, EMPTY_DOCS.__getitem__)
    return GroupCollator(queries, docs, model.template.pad_id)(groups)


def worst_case_positions(monkeypatch) -> None:
    """Invalid positions are arbitrary by contract; put them on the target's last column, the farthest."""
    real = masked_token_prediction.choose_masked_positions

    def choose(lengths, width, count):
        positions, valid = real(lengths, width, count)
        return positions.masked_fill(~valid, width - 1), valid

    monkeypatch.setattr(masked_token_prediction, "choose_masked_positions", choose)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("name", MASKED)
@pytest.mark.parametrize("whole", [False, True], ids=["one_row", "whole_batch"])
@pytest.mark.parametrize("worst", [False, True], ids=["drawn", "worst"])
def test_empty_target_gives_a_finite_loss_with_a_gradient(tiny_bert, monkeypatch, name, order, whole, worst):
    if worst:
        worst_case_positions(monkeypatch)
    model = tiny_cross_encoder(tiny_bert, segment_order=order)
    batch = empty_target_batch(model, name, whole=whole)
    for seed in range(8):  # the positions drawn for an empty row are arbitrary: try several
        model.zero_grad()
        torch.manual_seed(seed)
        loss = build_objective(name)(model, batch)
        assert torch.isfinite(loss) and loss.requires_grad
        loss.backward()  # the graph is kept even when nothing is maskable (DDP waits for every gradient)
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        if whole:
            assert loss.item() == 0.0


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("name", MASKED)
def test_empty_target_row_contributes_nothing(tiny_bert, monkeypatch, name, order):
    """Changing the empty row's context (same length, so same shapes and random draws) leaves the loss alone."""
    worst_case_positions(monkeypatch)
    model = tiny_cross_encoder(tiny_bert, segment_order=order)
    for seed in range(4):
        losses = []
        for context in ("long", "long2"):
            spy = Spy(model)
            torch.manual_seed(seed)
            losses.append(build_objective(name)(spy, empty_target_batch(model, name, context)).item())
            assert not (spy.packed.input_ids[2] == model.template.mask_id).any(), "nothing to mask there"
        assert losses[0] == pytest.approx(losses[1], rel=1e-6)
