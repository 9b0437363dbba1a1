"""A mistyped model fails in seconds with a message naming the path, not after ~50 s of network retries."""

from __future__ import annotations

import time

import pytest

from auxir.models.hf import check_model_available, load_tokenizer_and_model


@pytest.mark.parametrize("name", ["./outputs/bset", "/tmp/nope/model", "outputs/bset/model", "~/nope/model"])
def test_a_mistyped_local_path_fails_fast_saying_it_does_not_exist(name):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"does not exist; to load a local model, pass the directory"):
        load_tokenizer_and_model(name)
    assert time.perf_counter() - start < 5


def test_an_uncached_hub_name_fails_fast_offline(monkeypatch):
    # Offline: no request at all. (The online path makes one request; not tested here, where DNS may hang.)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"auxir-tests/no-such-model.*there is no local directory"):
        load_tokenizer_and_model("auxir-tests/no-such-model")
    assert time.perf_counter() - start < 5


def test_a_directory_without_config_is_not_a_model(tmp_path):
    with pytest.raises(ValueError, match="has no config.json"):
        check_model_available(str(tmp_path))


def test_an_existing_model_directory_passes(tiny_bert):
    assert check_model_available(str(tiny_bert)) == str(tiny_bert)


def test_run_experiment_checks_the_model_before_the_first_stage(tiny_beir, tmp_path):
    from auxir.experiment import run_experiment
    from auxir.recipe import load_recipe

    out = tmp_path / "out"
    recipe = load_recipe(
        "monobert", [f"model={tmp_path / 'bset'}", f"data.dataset={tiny_beir}", f"training.output_dir={out}"]
    )
    with pytest.raises(ValueError, match="does not exist"):
        run_experiment(recipe)
    assert not (out / "first_stage.trec").exists()
