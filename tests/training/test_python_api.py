"""The package-level Python API: lazy exports, ``CrossEncoder.predict``/``rank``, and docs/python-api.md run as a test."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import auxir
from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig

DOC_PAGE = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"

EXPORTS = {
    "BiEncoder": "auxir.models.bi_encoder",
    "BiEncoderConfig": "auxir.models.bi_encoder",
    "CrossEncoder": "auxir.models.cross_encoder",
    "CrossEncoderConfig": "auxir.models.cross_encoder",
    "load_dataset": "auxir.data.dataset",
    "load_recipe": "auxir.recipe",
    "run_experiment": "auxir.experiment",
    "evaluate": "auxir.evaluation.metrics",
    "compare": "auxir.evaluation.compare",
    "BM25Index": "auxir.retrieval.bm25",
    "rerank": "auxir.reranking",
    "fuse": "auxir.evaluation.fusion",
    "choose_weight": "auxir.evaluation.fusion",
    "Trainer": "auxir.training.trainer",
}


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_top_level_name_is_the_implementation(name: str) -> None:
    import importlib

    assert getattr(auxir, name) is getattr(importlib.import_module(EXPORTS[name]), name)


def test_all_lists_every_export() -> None:
    assert sorted(auxir.__all__) == sorted(EXPORTS) == sorted(auxir._EXPORTS)


def test_models_package_exports_cross_encoder() -> None:
    from auxir.models import CrossEncoder as Exported
    from auxir.models import CrossEncoderConfig as ExportedConfig

    assert Exported is CrossEncoder and ExportedConfig is CrossEncoderConfig


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        auxir.nope  # noqa: B018


def test_import_auxir_does_not_import_torch() -> None:
    code = "import sys, auxir, auxir.models; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.fixture(scope="module")
def model(tiny_bert: Path) -> CrossEncoder:
    torch.manual_seed(0)
    return CrossEncoder.from_pretrained(tiny_bert, CrossEncoderConfig(max_length=32, max_query_length=8))


PAIRS = [
    ("cat kitten", "cat cats kitten fur purr"),
    ("cat kitten", "bank money loan interest"),
    ("star moon", "star planet orbit light space moon sea fish swim wave"),
    ("dog", "dog"),
]


def test_predict_equals_score_on_the_same_tokens(model: CrossEncoder) -> None:
    tokenizer = model.tokenizer

    def ids(texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [
            tokenizer(t, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
            for t in texts
        ]
        width = max(len(r) for r in rows)
        padded = [r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows]
        return torch.tensor(padded), torch.tensor([len(r) for r in rows])

    q, q_len = ids([p[0] for p in PAIRS], model.config.max_query_length)
    budget = model.config.max_length - model.config.max_query_length - model.template.num_special
    d, d_len = ids([p[1] for p in PAIRS], budget)
    model.eval()
    with torch.no_grad():
        expected = model.score(q, q_len, d, d_len).tolist()
    model.train()

    predicted = model.predict(PAIRS, batch_size=3)
    assert model.training, "predict must restore train mode"
    assert predicted == pytest.approx(expected, abs=1e-5)
    assert model.predict(PAIRS[1:2]) == pytest.approx(expected[1:2], abs=1e-5)
    assert model.predict([]) == []


def test_rank_orders_by_predict(model: CrossEncoder) -> None:
    docs = [d for _, d in PAIRS]
    scores = model.predict([("cat kitten", d) for d in docs])
    ranking = model.rank("cat kitten", docs)
    assert [hit["corpus_id"] for hit in ranking] == sorted(range(len(docs)), key=lambda i: -scores[i])
    assert [hit["score"] for hit in ranking] == pytest.approx(sorted(scores, reverse=True), abs=1e-6)
    assert model.rank("cat kitten", docs, top_k=2) == ranking[:2]
    with pytest.raises(ValueError, match="top_k"):
        model.rank("cat kitten", docs, top_k=0)


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_python_api_page_runs(tiny_bert: Path, tiny_beir: Path) -> None:
    blocks = python_blocks(DOC_PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, f"{DOC_PAGE}: expected its python blocks, found {len(blocks)}"
    namespace = {"MODEL_DIR": str(tiny_bert), "DATA_DIR": str(tiny_beir), "__name__": "python_api_page"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{DOC_PAGE.name}[block {number}]", "exec"), namespace)
