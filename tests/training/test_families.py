"""Model families: the recipe's ``family`` picks the architecture section's type; a dense first stage."""

from __future__ import annotations

import pytest

from auxir.families import FAMILIES, get_family
from auxir.models.cross_encoder import CrossEncoderConfig
from auxir.recipe import Recipe, load_recipe
from tests.training.test_experiment import tiny_overrides


def test_cross_encoder_is_the_default_family() -> None:
    recipe = load_recipe("monobert")
    assert recipe.family == "cross_encoder"
    assert isinstance(recipe.architecture, CrossEncoderConfig)
    assert "cross_encoder" in FAMILIES and get_family("cross_encoder").Config is CrossEncoderConfig


def test_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown family 'cross-encoder'; valid families: .*cross_encoder"):
        load_recipe("monobert", ["family=cross-encoder"])
    with pytest.raises(ValueError, match=r"recipe.family: unknown family 'nope'"):
        Recipe.from_dict({"family": "nope"})


def test_architecture_fields_are_checked_against_the_family() -> None:
    with pytest.raises(ValueError, match=r"architecture: unknown field\(s\) \['towers'\]"):
        load_recipe("monobert", ["architecture.towers=shared"])


def test_recipe_round_trips_through_its_dict() -> None:
    recipe = load_recipe("monobert", ["architecture.pooler=skip"])
    again = Recipe.from_dict(recipe.to_dict())
    assert again == recipe and again.architecture.pooler == "skip"


def test_dense_first_stage_ranks_with_the_model_embeddings(tiny_bert, tiny_beir, tmp_path) -> None:
    from auxir.data.trec import read_run
    from auxir.experiment import run_experiment

    overrides = tiny_overrides(
        tiny_bert, tiny_beir, tmp_path, "data.first_stage=dense", "data.valid_fraction=0"
    )
    result = run_experiment(load_recipe("monobert", overrides))
    run = read_run(tmp_path / "first_stage.trec")
    per_query = {}
    for s in run:
        per_query[s.query_id] = per_query.get(s.query_id, 0) + 1
    assert set(per_query.values()) == {20}  # first_stage_k documents for every query, from the whole corpus
    assert 0.0 <= result.first_stage["nDCG@10"] <= 1.0
