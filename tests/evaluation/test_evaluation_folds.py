"""Cross-validation folds: disjoint, covering, deterministic, group-respecting, with the right sizes."""

from __future__ import annotations

import json

import pytest

from auxir.data.errors import DataFormatError
from auxir.evaluation.folds import Fold, load_folds, make_folds, save_folds

IDS = [f"q{i:02d}" for i in range(43)]


def test_folds_are_disjoint_and_cover_every_query():
    folds = make_folds(IDS, k=5, seed=0)
    assert len(folds) == 5
    for fold in folds:
        train, valid, test = set(fold.train), set(fold.valid), set(fold.test)
        assert not (train & valid or train & test or valid & test)
        assert train | valid | test == set(IDS)
    # every query is tested exactly once and validated exactly once over the k rotations
    assert sorted(q for f in folds for q in f.test) == IDS
    assert sorted(q for f in folds for q in f.valid) == IDS


def test_rotation_and_sizes():
    folds = make_folds(IDS, k=5, seed=0)
    # 43 = 9 + 9 + 9 + 8 + 8; valid of fold i is the test part of fold i+1 (mod k); train is three parts
    assert sorted(len(f.test) for f in folds) == [8, 8, 9, 9, 9]
    for i, fold in enumerate(folds):
        assert fold.valid == folds[(i + 1) % 5].test
        assert len(fold.train) == 43 - len(fold.test) - len(fold.valid)


def test_deterministic_given_seed_and_independent_of_input_order():
    assert make_folds(IDS, seed=3) == make_folds(list(reversed(IDS)) + IDS[:5], seed=3)
    assert make_folds(IDS, seed=3) != make_folds(IDS, seed=4)


def test_groups_never_cross_folds():
    groups = {qid: int(qid[1:]) // 4 for qid in IDS}  # 11 groups of up to 4 queries
    folds = make_folds(IDS, k=5, seed=1, groups=groups)
    part_of = {q: i for i, f in enumerate(folds) for q in f.test}
    for group in set(groups.values()):
        members = [q for q in IDS if groups[q] == group]
        assert len({part_of[q] for q in members}) == 1
    sizes = sorted(len(f.test) for f in folds)
    assert sum(sizes) == 43 and sizes[-1] - sizes[0] <= 4


def test_bad_arguments():
    with pytest.raises(ValueError, match="k >= 3"):
        make_folds(IDS, k=2)
    with pytest.raises(ValueError, match="at least k=5 query ids"):
        make_folds(IDS[:4], k=5)
    with pytest.raises(ValueError, match="a group for every query id"):
        make_folds(IDS, groups={"q00": "a"})


def test_save_and_load_round_trip(tmp_path):
    folds = make_folds(IDS, k=5, seed=0)
    path = tmp_path / "folds.json"
    save_folds(path, folds, metadata={"seed": 0})
    assert load_folds(path) == folds
    assert json.loads(path.read_text())["metadata"] == {"seed": 0}
    assert isinstance(load_folds(path)[0], Fold)


def test_load_rejects_other_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"folds": "nope"}')
    with pytest.raises(DataFormatError, match="format 'auxir.folds/1'"):
        load_folds(path)
