"""Every objective on a tiny model: finite, non-negative, gradient reaching the encoder; exact loss values."""

from __future__ import annotations

import math

import pytest
import torch

from auxir.objectives import OBJECTIVES, build_objective
from auxir.objectives.listwise_softmax import ListwiseSoftmax
from auxir.objectives.pairwise_hinge import PairwiseHinge
from auxir.objectives.pairwise_softmax import PairwiseSoftmax
from auxir.objectives.pointwise_bce import PointwiseBCE

from .helpers import tiny_batch, tiny_cross_encoder


@pytest.mark.parametrize("name", sorted(n for n, (cls, _) in OBJECTIVES.items() if cls.requires is None))
def test_objective_is_finite_and_reaches_the_encoder(name, tiny_bert):
    model = tiny_cross_encoder(tiny_bert)
    batch = tiny_batch(model)
    loss = build_objective(name)(model, batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() >= 0
    loss.backward()
    layer = model.backbone.bert.encoder.layer[0].attention.self.query.weight
    assert layer.grad is not None and layer.grad.abs().sum() > 0


def test_hinge_matches_sjtf_eq5_by_hand():
    scores = torch.tensor([[2.0, 1.5, 0.0], [0.0, 0.5, -2.0]])
    # row 1: max(0, 1-(2-1.5))=0.5, max(0, 1-2)=0 ; row 2: max(0,1-(0-0.5))=1.5, max(0,1-2)=0 -> mean 0.5
    assert PairwiseHinge(PairwiseHinge.Params(margin=1.0)).loss(scores, None).item() == pytest.approx(0.5)


def test_softmax_losses_by_hand():
    scores = torch.tensor([[1.0, 0.0, -1.0]])
    pair = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(-2.0))) / 2
    assert PairwiseSoftmax(PairwiseSoftmax.Params()).loss(scores, None).item() == pytest.approx(
        pair, abs=1e-6
    )
    listwise = -(1.0 - math.log(math.e + 1 + math.exp(-1)))
    assert ListwiseSoftmax(ListwiseSoftmax.Params()).loss(scores, None).item() == pytest.approx(
        listwise, abs=1e-6
    )
    bce = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(0.0)) + math.log1p(math.exp(-1.0))) / 3
    labels = torch.tensor([[2.0, 0.0, 0.0]])
    assert PointwiseBCE(PointwiseBCE.Params()).loss(scores, labels).item() == pytest.approx(bce, abs=1e-6)


def test_unknown_objective_lists_valid_names():
    with pytest.raises(ValueError, match="valid objectives: .*mqp.*pairwise_hinge"):
        build_objective("mqq")


def test_unknown_objective_parameter_lists_valid_ones():
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['alpha'\].*num_masked"):
        build_objective("mqp", {"alpha": 0.2})


def test_num_masked_must_be_positive():
    with pytest.raises(ValueError, match="num_masked"):
        build_objective("mqp", {"num_masked": 0})
