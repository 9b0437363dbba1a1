"""``auxir explain`` and ``auxir.explain``: a madrm model's aspect predictions, presence, fusion weights and score
for one query and one document (MADRM's Table 8), on a tiny MADRAL trained for two steps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import auxir.cli
from auxir.data.records import ScoredDoc
from auxir.explain import explain, load_aspect_encoder, plot_explanation
from auxir.models.aspect_encoder import AspectEncoder, AspectEncoderConfig
from auxir.recipe import load_recipe

from .test_experiment import tiny_overrides
from .test_madrm_family import ESCI_LABELS, tiny_esci  # noqa: F401  (tiny_esci: a fixture)

SLOTS = ["category", "brand", "color", "other"]


@pytest.fixture(scope="module")
def madral_dir(tiny_bert, tiny_esci, tmp_path_factory) -> Path:  # noqa: F811
    """A tiny MADRAL (category, brand, color + OTHER, presence weighting) trained for two steps."""
    from auxir.experiment import run_experiment

    out = tmp_path_factory.mktemp("madral")
    overrides = tiny_overrides(
        tiny_bert,
        tiny_esci,
        out,
        ESCI_LABELS,
        "architecture.aspects=3",
        "training.max_steps=2",
        "data.valid_fraction=0",
        "evaluation.fusion=none",
    )
    run_experiment(load_recipe("madral", overrides))
    return out / "model"


def _texts(tiny_esci):  # noqa: F811
    from auxir.data.dataset import load_dataset

    ds = load_dataset(str(tiny_esci))
    return ds.queries["dog-q3"], ds.docs["dog-d1"]


def test_the_explanation_has_predictions_presence_weights_and_the_rankings_score(madral_dir, tiny_esci):  # noqa: F811
    from auxir.reranking import rerank

    query, doc = _texts(tiny_esci)
    model = load_aspect_encoder(madral_dir)
    found = explain(model, query.text, doc.full_text(), 2, query.metadata, doc.metadata, str(madral_dir))
    assert found.slots == SLOTS
    for side in (found.query, found.document):
        assert sum(side.weights.values()) == pytest.approx(1.0, abs=1e-5)
        assert list(side.weights) == SLOTS and all(w >= 0 for w in side.weights.values())
        assert list(side.presence) == SLOTS and all(0.0 <= p <= 1.0 for p in side.presence.values())
        assert list(side.predictions) == SLOTS[:3]  # OTHER is never predicted
        for aspect, top in side.predictions.items():
            assert len(top) == 2 and top[0].probability >= top[1].probability
            assert all(0.0 <= v.probability <= 1.0 for v in top)
            assert top[0].value in model.vocabulary.values[aspect]
    assert found.query.gold == {"category": ["dog"], "brand": [query.metadata["brand"]], "color": []}
    assert found.document.gold["color"] == doc.metadata["color"]
    # The score is the model's own: what auxir rerank gives this pair, scale × the vectors' cosine.
    ranked = rerank(
        model, [ScoredDoc("q", "d", 0.0)], {"q": query.text}, {"d": doc.full_text()}.__getitem__, 1
    )
    assert found.score == pytest.approx(ranked.run[0].score, rel=1e-5, abs=1e-5)
    assert found.score == pytest.approx(found.scale * found.similarity) and found.scale == 20.0
    assert -1.0 <= found.similarity <= 1.0 and found.similarity_kind == "cosine"
    text = found.to_text()
    for expected in (
        "score:",
        "presence",
        "weight",
        "top 2",
        "gold",
        found.query.predictions["brand"][0].value,
    ):
        assert expected in text
    assert json.loads(json.dumps(found.to_dict()))["query"]["weights"] == found.query.weights


def test_cli_prints_the_table_or_json_and_writes_the_plot(madral_dir, tiny_esci, tmp_path, capsys):  # noqa: F811
    png = tmp_path / "figures" / "explain.png"
    args = [
        "explain",
        str(madral_dir),
        "--query-id",
        "dog-q3",
        "--doc-id",
        "dog-d1",
        "--dataset",
        str(tiny_esci),
    ]
    assert auxir.cli.main([*args, "--top", "1", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"model: {madral_dir}\nscore: ") and "query (3 tokens):" in out and "top 1" in out
    assert "top 2" not in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert (
        auxir.cli.main(["explain", str(madral_dir), "--query", "dog bark", "--doc", "a puppy", "--json"]) == 0
    )
    found = json.loads(capsys.readouterr().out)
    assert found["slots"] == SLOTS and found["query"]["text"] == "dog bark" and found["query"]["gold"] is None
    assert len(found["document"]["predictions"]["category"]) == 3  # --top 3 by default


@pytest.mark.parametrize(
    ("settings", "slots"),
    [
        ({"aspects": 3, "fusion": "presence"}, ["aspect_1", "aspect_2", "aspect_3", "other"]),  # MADR
        ({"aspects": 2, "fusion": "cls_gating", "towers": "separate"}, ["aspect_1", "aspect_2", "other"]),
        ({"aspects": 0}, ["text"]),  # BiBERT
    ],
)
def test_a_model_without_labels_explains_its_weights(tiny_bert, tmp_path, settings, slots):
    AspectEncoder.from_pretrained(
        tiny_bert, AspectEncoderConfig(max_length=40, max_query_length=10, **settings)
    ).save_pretrained(tmp_path / "model")
    found = explain(load_aspect_encoder(tmp_path / "model"), "cat kitten", "the cat is a kitten with fur")
    assert found.slots == slots and found.query.predictions == {} and found.query.gold is None
    for side in (found.query, found.document):
        assert sum(side.weights.values()) == pytest.approx(1.0, abs=1e-5)
        assert (side.presence is not None) == (
            settings.get("fusion") == "presence" and settings["aspects"] > 0
        )
    assert math.isfinite(found.score) and "top 1" not in found.to_text()
    assert plot_explanation(found, tmp_path / "weights.png").stat().st_size > 0


def test_bad_model_folders_and_ids_are_refused_naming_the_path(tiny_bert, madral_dir, tmp_path, capsys):
    from auxir.models.bi_encoder import BiEncoder, BiEncoderConfig

    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=rf"{missing}: no such model folder"):
        load_aspect_encoder(missing)
    assert auxir.cli.main(["explain", str(missing), "--query", "q", "--doc", "d"]) == 2
    assert f"auxir explain: error: {missing}: no such model folder" in capsys.readouterr().err

    with pytest.raises(
        ValueError, match=rf"{tiny_bert}: expected a model saved by the madrm family .* found no auxir.json"
    ):
        load_aspect_encoder(tiny_bert)  # a plain Hugging Face encoder
    BiEncoder.from_pretrained(tiny_bert, BiEncoderConfig(max_length=40)).save_pretrained(tmp_path / "bi")
    with pytest.raises(
        ValueError,
        match=rf"{tmp_path / 'bi' / 'auxir.json'}: expected a multi-aspect model .* found format 'auxir-bi-encoder'",
    ):
        load_aspect_encoder(tmp_path / "bi")

    assert auxir.cli.main(["explain", str(madral_dir), "--query-id", "q1", "--doc", "d"]) == 2
    assert (
        "--query-id and --doc-id read their texts from --dataset, which is missing" in capsys.readouterr().err
    )
    with pytest.raises(ValueError, match=r"explain: top_k must be >= 1, found 0"):
        explain(load_aspect_encoder(madral_dir), "q", "d", top_k=0)
