"""BiEncoder: sentence-transformers loads what it saves and encodes alike; reload is exact; clear config errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from auxir.models.bi_encoder import BiEncoder, BiEncoderConfig, config_from_sentence_transformers

QUERIES = ["cat kitten purr", "bank loan interest rate", "gene", ""]
DOCS = [
    "the cat is a kitten with fur",
    "money loan credit at the bank " * 12,  # longer than max_length: both cut it alike
    "gene mutation in the cell",
    "star planet orbit",
]


def tiny_bi_encoder(path, **settings) -> BiEncoder:
    torch.manual_seed(0)
    return BiEncoder.from_pretrained(path, BiEncoderConfig(max_length=24, max_query_length=8, **settings))


def perturb(module: torch.nn.Module) -> None:
    """Move every weight a little, so that a tower no longer equals the checkpoint it started from."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))


def scores(model: BiEncoder) -> torch.Tensor:
    """Every query against every document: (len(QUERIES) * len(DOCS),)."""
    q = model.tokenize([q for q in QUERIES for _ in DOCS], "query")
    d = model.tokenize(DOCS * len(QUERIES), "document")
    from auxir.data.token_cache import pad_stack

    (qi, ql), (di, dl) = pad_stack(q, model.template.pad_id), pad_stack(d, model.template.pad_id)
    with torch.no_grad():
        return model.score(*(torch.from_numpy(a) for a in (qi, ql, di, dl)))


@pytest.fixture(scope="module")
def sentence_transformers():
    return pytest.importorskip("sentence_transformers")


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_sentence_transformers_encodes_as_auxir(
    tiny_bert, tmp_path, sentence_transformers, pooling, similarity
):
    model = tiny_bi_encoder(tiny_bert, pooling=pooling, similarity=similarity)
    model.save_pretrained(tmp_path / "m")
    st = sentence_transformers.SentenceTransformer(str(tmp_path / "m"), device="cpu", local_files_only=True)
    assert st.max_seq_length == 24
    assert st.similarity_fn_name == similarity
    expected = model.encode(DOCS, "document")
    np.testing.assert_allclose(st.encode(DOCS, convert_to_numpy=True), expected, atol=1e-5)
    if similarity == "cosine":
        np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-5)
    # Queries within max_query_length encode alike too (sentence-transformers cuts them at max_length).
    np.testing.assert_allclose(
        st.encode(QUERIES, convert_to_numpy=True), model.encode(QUERIES, "query"), atol=1e-5
    )


def test_separate_towers_save_the_document_tower_at_the_root_and_the_query_tower_in_query(
    tiny_bert, tmp_path, sentence_transformers
):
    model = tiny_bi_encoder(tiny_bert, towers="separate")
    perturb(model.query_encoder)
    model.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m" / "document").exists()
    documents = sentence_transformers.SentenceTransformer(
        str(tmp_path / "m"), device="cpu", local_files_only=True
    )
    queries = sentence_transformers.SentenceTransformer(
        str(tmp_path / "m" / "query"), device="cpu", local_files_only=True
    )
    assert (documents.max_seq_length, queries.max_seq_length) == (24, 8)
    np.testing.assert_allclose(documents.encode(DOCS), model.encode(DOCS, "document"), atol=1e-5)
    np.testing.assert_allclose(queries.encode(QUERIES), model.encode(QUERIES, "query"), atol=1e-5)
    assert np.abs(model.encode(QUERIES, "query") - model.encode(QUERIES, "document")).max() > 1e-3


@pytest.mark.parametrize("towers", ["shared", "separate"])
def test_reload_gives_identical_scores(tiny_bert, tmp_path, towers):
    model = tiny_bi_encoder(tiny_bert, towers=towers, pooling="cls", similarity="dot", scale=3.0).eval()
    if towers == "separate":
        perturb(model.query_encoder)
    model.save_pretrained(tmp_path / "m")
    again = BiEncoder.from_pretrained(tmp_path / "m").eval()
    assert again.config == model.config
    assert torch.equal(scores(again), scores(model))
    assert json.loads((tmp_path / "m" / "auxir.json").read_text())["format"] == "auxir-bi-encoder"


def test_score_is_scale_times_the_similarity_of_the_encoded_texts(tiny_bert):
    model = tiny_bi_encoder(tiny_bert).eval()  # cosine, scale None -> 20
    assert model.scale == 20.0 and BiEncoderConfig(similarity="dot").logit_scale == 1.0
    q, d = model.encode(QUERIES, "query"), model.encode(DOCS, "document")
    expected = 20.0 * (q[:, None, :] * d[None, :, :]).sum(-1).flatten()
    np.testing.assert_allclose(scores(model).numpy(), expected, atol=1e-5)
    assert model.new_parameter_names() == set()
    last = model.encoder.encoder.layer[-1]
    assert {id(p) for p in model.shared_parameters()} == {id(p) for p in last.parameters()}


def test_a_sentence_transformers_folder_gives_the_config_it_states(tiny_bert, tmp_path):
    tiny_bi_encoder(tiny_bert, pooling="cls", similarity="dot").save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "bi_encoder.json").unlink()  # as any sentence-transformers model
    config = config_from_sentence_transformers(tmp_path / "m")
    assert (config.pooling, config.similarity, config.max_length) == ("cls", "dot", 24)
    plain = BiEncoder.from_pretrained(
        tiny_bert
    )  # no sentence-transformers files: defaults, cut to 128 positions
    assert (plain.config.pooling, plain.config.similarity, plain.config.max_length) == ("mean", "cosine", 128)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"pooling": "max"}, r"BiEncoderConfig.pooling: expected one of \('cls', 'mean'\), found 'max'"),
        ({"similarity": "l2"}, r"BiEncoderConfig.similarity: expected one of \('cosine', 'dot'\)"),
        ({"towers": "two"}, r"BiEncoderConfig.towers"),
        ({"evaluate": "search"}, r"BiEncoderConfig.evaluate"),
        ({"scale": 0.0}, r"BiEncoderConfig.scale: expected None or a number > 0, found 0.0"),
        ({"max_query_length": 1}, r"BiEncoderConfig.max_query_length: expected an integer >= 2, found 1"),
        ({"retrieve_k": 0}, r"BiEncoderConfig.retrieve_k: expected an integer >= 1, found 0"),
        ({"index": " "}, r"BiEncoderConfig.index: expected a FAISS factory string"),
    ],
)
def test_bad_config_values_are_clear_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        BiEncoderConfig(**settings)


def test_lengths_that_do_not_fit_the_encoder_are_clear_errors(tiny_bert):
    with pytest.raises(ValueError, match=r"query length 2 leaves no room for text beside 2 special tokens"):
        BiEncoder.from_pretrained(tiny_bert, BiEncoderConfig(max_query_length=2, max_length=24))
    with pytest.raises(
        ValueError, match=r"document length 256 exceeds the encoder's 128 position embeddings"
    ):
        BiEncoder.from_pretrained(tiny_bert, BiEncoderConfig(max_length=256))
    model = tiny_bi_encoder(tiny_bert)
    with pytest.raises(ValueError, match=r"side must be one of \('query', 'document'\), found 'passage'"):
        model.encode(DOCS, "passage")


def test_saved_config_with_unknown_fields_is_a_clear_error(tiny_bert, tmp_path):
    tiny_bi_encoder(tiny_bert).save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "bi_encoder.json").write_text(json.dumps({"pooling": "mean", "heads": 2}))
    with pytest.raises(ValueError, match=r"bi_encoder.json: unknown BiEncoderConfig field\(s\) \['heads'\]"):
        BiEncoder.from_pretrained(tmp_path / "m")
