"""CODER's model: aggregation g(Z), eq. 2 scores, the permutation-invariant transformer scorer, persistence."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from auxir.data.candidates import CandidateBatch
from auxir.models.coder import CoderConfig, CoderModel

QUERIES = ["cat kitten purr", "bank loan interest rate", "gene"]
ROOT = Path(__file__).resolve().parents[2]


def tiny_coder(path, doc_dim=None, **config) -> CoderModel:
    torch.manual_seed(0)
    settings = {"pooling": "first", "normalize": False, "max_query_length": 8, "scorer_heads": 4, **config}
    return CoderModel.from_pretrained(str(path), CoderConfig(**settings), doc_dim=doc_dim).eval()


def candidate_batch(model: CoderModel, n: int = 5, seed: int = 0) -> CandidateBatch:
    ids, lengths = model.tokenize(QUERIES)
    generator = torch.Generator().manual_seed(seed)
    docs = torch.randn(len(QUERIES), n, model.doc_dim, generator=generator)
    mask = torch.ones(len(QUERIES), n, dtype=torch.bool)
    mask[0, -2:] = False  # the first query has two candidates fewer
    labels = torch.zeros(len(QUERIES), n)
    labels[:, 0] = 1.0
    return CandidateBatch(
        torch.from_numpy(ids), torch.from_numpy(lengths), docs, labels, mask, ["a", "b", "c"]
    )


def hidden_states(model: CoderModel, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's last layer for ``[CLS] text [SEP]`` as the tokenizer frames it, and its attention mask."""
    enc = model.tokenizer(texts, padding=True, truncation=True, max_length=10, return_tensors="pt")
    with torch.no_grad():
        return model.encoder(**enc).last_hidden_state, enc["attention_mask"]


def test_first_token_aggregation_is_the_cls_vector(tiny_bert) -> None:
    model = tiny_coder(tiny_bert, pooling="first")
    hidden, _ = hidden_states(model, QUERIES)
    vectors = model.encode_queries(QUERIES)
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, hidden[:, 0].numpy(), atol=1e-5)


def test_mean_aggregation_averages_every_attended_token(tiny_bert) -> None:
    model = tiny_coder(tiny_bert, pooling="mean")
    hidden, mask = hidden_states(model, QUERIES)
    expected = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    np.testing.assert_allclose(model.encode_queries(QUERIES), expected.numpy(), atol=1e-5)
    normalized = tiny_coder(tiny_bert, pooling="mean", normalize=True).encode_queries(QUERIES)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0, atol=1e-6)


def test_a_new_model_encodes_queries_as_the_document_encoder_does(tiny_bert) -> None:
    """CODER starts from the base bi-encoder: before training its g(Z) is the DenseEncoder's vector."""
    from auxir.retrieval.dense import DenseEncoder, EncoderConfig

    model = CoderModel.from_pretrained(str(tiny_bert), CoderConfig(max_query_length=8))
    assert (model.config.pooling, model.config.normalize) == (
        "first",
        False,
    )  # no sentence-transformers files
    base = DenseEncoder(EncoderConfig(str(tiny_bert), device="cpu"))
    np.testing.assert_allclose(model.encode_queries(QUERIES), base.encode(QUERIES), atol=1e-5)


def test_scores_are_eq2_inner_products_with_masked_candidates_at_minus_inf(tiny_bert) -> None:
    model = tiny_coder(tiny_bert)
    batch = candidate_batch(model)
    with torch.no_grad():
        out = model(batch)
    expected = torch.einsum("bnd,bd->bn", batch.doc_emb, out.query_embeddings)
    assert out.scores.shape == (3, 5) and out.scores.dtype == torch.float32
    assert torch.equal(torch.isinf(out.scores), ~batch.mask) and bool((out.scores[~batch.mask] < 0).all())
    torch.testing.assert_close(out.scores[batch.mask], expected[batch.mask])
    torch.testing.assert_close(out.query_embeddings, torch.from_numpy(model.encode_queries(QUERIES)))
    half = CandidateBatch(**{**batch.__dict__, "doc_emb": batch.doc_emb.half()})
    with torch.no_grad():  # a float16 store scores in float32, as its exact float32 values
        torch.testing.assert_close(
            model.score_candidates(half)[batch.mask],
            (half.doc_emb.float() @ out.query_embeddings.unsqueeze(-1)).squeeze(-1)[batch.mask],
        )


def randomise_heads(model: CoderModel) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.heads().parameters():
            p.normal_(0.0, 0.3)


def test_transformer_scorer_starts_as_eq2_and_is_permutation_invariant(tiny_bert) -> None:
    dot, transformer = tiny_coder(tiny_bert), tiny_coder(tiny_bert, scorer="transformer")
    batch = candidate_batch(dot)
    with torch.no_grad():
        torch.testing.assert_close(transformer.score_candidates(batch), dot.score_candidates(batch))
    randomise_heads(transformer)
    with torch.no_grad():
        scores = transformer.score_candidates(batch)
        assert not torch.allclose(scores[batch.mask], dot.score_candidates(batch)[batch.mask])
        # permuting the candidates permutes the scores: no positional encoding
        order = torch.tensor([2, 0, 1, 4, 3])
        permuted = CandidateBatch(
            **{
                **batch.__dict__,
                "doc_emb": batch.doc_emb[:, order],
                "labels": batch.labels[:, order],
                "mask": batch.mask[:, order],
            }
        )
        torch.testing.assert_close(transformer.score_candidates(permuted), scores[:, order])
        # masked candidates do not change the others' scores
        noisy = batch.doc_emb.clone()
        noisy[~batch.mask] = 100.0
        other = CandidateBatch(**{**batch.__dict__, "doc_emb": noisy})
        torch.testing.assert_close(transformer.score_candidates(other), scores)


def test_projection_and_scorer_are_the_new_parameters(tiny_bert) -> None:
    model = tiny_coder(tiny_bert, doc_dim=16, scorer="transformer")
    assert model.projection is not None and model.projection.out_features == 16
    new = model.new_parameter_names()
    assert new and all(n.startswith(("projection.", "scorer.")) for n in new)
    assert "projection.weight" in new and any(n.startswith("scorer.blocks.") for n in new)
    shared = model.shared_parameters()
    assert shared and all(any(p is q for q in model.encoder.encoder.layer[-1].parameters()) for p in shared)
    assert model.encode_queries(QUERIES).shape == (3, 16)
    assert tiny_coder(tiny_bert).new_parameter_names() == set()  # eq. 2 with equal widths: nothing new


def test_save_and_reload_give_identical_scores(tiny_bert, tmp_path) -> None:
    model = tiny_coder(tiny_bert, doc_dim=16, scorer="transformer", pooling="mean", normalize=True)
    randomise_heads(model)
    batch = candidate_batch(model)
    with torch.no_grad():
        before = model.score_candidates(batch)
    model.save_pretrained(tmp_path / "coder")
    saved = json.loads((tmp_path / "coder" / "auxir.json").read_text())
    assert (
        saved["format"] == "auxir-coder"
        and saved["doc_dim"] == 16
        and saved["config"]["scorer"] == "transformer"
    )
    again = CoderModel.from_pretrained(tmp_path / "coder").eval()
    assert again.config == model.config and again.new_parameter_names() == set()
    with torch.no_grad():
        torch.testing.assert_close(again.score_candidates(batch), before, rtol=0, atol=0)
    with pytest.raises(ValueError, match="dimension 8, found one for dimension 16"):
        CoderModel.from_pretrained(tmp_path / "coder", doc_dim=8)


@pytest.mark.parametrize(
    "settings", [{"pooling": "first"}, {"pooling": "mean", "normalize": True, "doc_dim": 16}]
)
def test_sentence_transformers_loads_the_query_encoder(tiny_bert, tmp_path, settings) -> None:
    st = pytest.importorskip("sentence_transformers")
    doc_dim = settings.pop("doc_dim", None)
    model = tiny_coder(tiny_bert, doc_dim=doc_dim, **settings)
    randomise_heads(model)
    model.save_pretrained(tmp_path / "coder")
    encoder = st.SentenceTransformer(str(tmp_path / "coder"), device="cpu")
    assert encoder.max_seq_length == 10  # 8 query tokens + [CLS] + [SEP]
    np.testing.assert_allclose(encoder.encode(QUERIES), model.encode_queries(QUERIES), atol=1e-5)


def test_invalid_settings_are_clear_errors(tiny_bert) -> None:
    with pytest.raises(ValueError, match="evaluate='retrieve' .* needs scorer='dot'"):
        CoderConfig(scorer="transformer", evaluate="retrieve")
    with pytest.raises(ValueError, match=r"CoderConfig.num_candidates: expected an integer >= 1, found 0"):
        CoderConfig(num_candidates=0)
    with pytest.raises(
        ValueError, match="scorer_heads: expected a divisor of the embedding dimension 32, found 5"
    ):
        tiny_coder(tiny_bert, scorer="transformer", scorer_heads=5)


def test_latency_bench_runs_on_cpu(tmp_path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("coder_latency", ROOT / "bench" / "coder_latency.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "latency.json"
    bench.main(
        [
            "--tiny",
            "--device",
            "cpu",
            "--num-docs",
            "500",
            "--num-candidates",
            "50",
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--batch-sizes",
            "1",
            "4",
            "--out",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["num_candidates"] == 50
    cases = {(r["case"], r["batch"]) for r in report["results"]}
    assert cases == {(c, b) for c in ("scores", "encode+scores", "text+encode+scores") for b in (1, 4)}
    assert all(r["ms_per_query"] > 0 and r["queries_per_s"] > 0 for r in report["results"])
    assert "5.5" in capsys.readouterr().out  # the paper's anchor beside ours


def test_only_the_query_side_learns(tiny_bert) -> None:
    """CODER fine-tunes the query encoder alone: the candidates' stored embeddings are data, not parameters
    (no gradient, unchanged by a step), while the query encoder gets its gradient and moves."""
    from auxir.objectives import build_objective

    model = tiny_coder(tiny_bert).train()
    batch = candidate_batch(model)
    stored = batch.doc_emb.clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.encoder.parameters()]
    loss = build_objective("listnet_kl")(model, batch)
    loss.backward()
    assert not batch.doc_emb.requires_grad and batch.doc_emb.grad is None
    assert all(p.data_ptr() != batch.doc_emb.data_ptr() for p in model.parameters())
    optimizer.step()
    torch.testing.assert_close(batch.doc_emb, stored)  # the document side is exactly as stored
    moved = [not torch.equal(a, p) for a, p in zip(before, model.encoder.parameters())]
    assert sum(moved) > len(moved) // 2  # the query encoder learned
