"""GDMTL's generative objectives (§4.1 eqs. 4–5, §5.2) against a hand computation, the answer field, task
prefixes, and training with uncertainty weighting (eq. 6): a few steps, then the gdmtl recipe end to end."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from auxir.data.records import Query
from auxir.models.cross_encoder import CrossEncoder
from auxir.objectives import build_objective
from auxir.objectives.generation import answers_from_queries, concat_texts
from auxir.recipe import load_recipe
from auxir.training.config import TrainingConfig
from auxir.training.trainer import Trainer
from auxir.training.weighting import ComponentSchedule, WeightingConfig

from .helpers import GROUPS, QUERIES, tiny_batch, tiny_cross_encoder
from .test_experiment import tiny_overrides

ANSWERS = {"q1": "the kitten is a cat", "q2": "money at a rate", "q3": "dna"}


def eager_model(tiny_bert, **config) -> CrossEncoder:
    model = tiny_cross_encoder(tiny_bert, segment_order="doc_first", **config)
    model.backbone.set_attn_implementation("eager")  # the hand computation adds its own -inf mask
    return model.eval()  # no dropout: both computations see the same network


def hand_nll(model, source: list[int], target: list[int]) -> float:
    """Σ_t −log P(target_t | source, target_<t) for one unpadded row: ``[CLS] source [SEP] target [SEP]``
    with a mask written from the definition (source rows see the source; target rows the source and the
    target up to themselves), the tied token head written out, the state before each token decoding it."""
    cls, sep = model.tokenizer.cls_token_id, model.tokenizer.sep_token_id
    ids = [cls, *source, sep, *target, sep]
    a = len(source) + 2  # [CLS] source [SEP]
    width = len(ids)
    bias = torch.zeros(1, 1, width, width)
    for i in range(width):
        for j in range(width):
            if not (j < a or j <= i):
                bias[0, 0, i, j] = float("-inf")
    types = torch.tensor([[0] * a + [1] * (width - a)])
    with torch.no_grad():
        hidden = model.backbone.base_model(
            input_ids=torch.tensor([ids]), attention_mask=bias, token_type_ids=types
        ).last_hidden_state[0]  # (W, H)
        weight = model.backbone.get_input_embeddings().weight
        log_p = torch.log_softmax(hidden @ weight.T + model.token_head.bias, dim=-1)  # (W, V)
    return -sum(float(log_p[a - 1 + t, token]) for t, token in enumerate(target))


def row(ids: torch.Tensor, length: torch.Tensor) -> list[int]:
    return ids[: int(length)].tolist()


def test_query_generation_matches_eq5_by_hand(tiny_bert):
    model = eager_model(tiny_bert)
    batch = tiny_batch(model)  # queries of 3, 4 and 1 tokens: padding in the target segment
    sums, tokens = [], 0
    for b in range(len(GROUPS)):
        doc = row(batch.docs[b, 0], batch.doc_len[b, 0])  # the positive
        query = row(batch.query[b], batch.query_len[b])
        sums.append(hand_nll(model, doc, query))
        tokens += len(query)
    with torch.no_grad():
        summed = build_objective("query_generation")(model, batch)
        mean = build_objective("query_generation", {"reduction": "mean"})(model, batch)
    assert summed.item() == pytest.approx(
        sum(sums) / len(sums), abs=1e-4
    )  # eq. 5 per query, mean over queries
    assert mean.item() == pytest.approx(sum(sums) / tokens, abs=1e-5)


def test_query_generation_reads_the_positive_document_under_the_mixed_mask(tiny_bert):
    model = tiny_cross_encoder(tiny_bert)
    batch = tiny_batch(model)
    seen = {}
    original = model.mixed_attention

    def spy(source, source_len, target, target_len):
        seen.update(source=source, source_len=source_len, target=target, target_len=target_len)
        return original(source, source_len, target, target_len)

    model.mixed_attention = spy
    build_objective("query_generation", {"prefix": True})(model, batch)
    prefix = list(model.text_ids("sum:"))
    for b in range(len(GROUPS)):
        doc = row(batch.docs[b, 0], batch.doc_len[b, 0])
        assert row(seen["source"][b], seen["source_len"][b]) == prefix + doc  # "sum: <passage>"
        assert row(seen["target"][b], seen["target_len"][b]) == row(batch.query[b], batch.query_len[b])


def test_rank_prefix_and_doc_first_frame_the_ranking_pair(tiny_bert, tmp_path):
    plain = tiny_cross_encoder(tiny_bert, segment_order="doc_first")
    model = tiny_cross_encoder(tiny_bert, segment_order="doc_first", task_prefix="the")
    batch = tiny_batch(model)
    inputs = model.pack(batch.query, batch.query_len, batch.docs[:, 0], batch.doc_len[:, 0])
    the = model.tokenizer.convert_tokens_to_ids("the")
    assert (inputs.input_ids[:, 1] == the).all()  # [CLS] the <passage> [SEP] <query> [SEP]
    assert (inputs.doc_start == 2).all()
    for b in range(len(GROUPS)):
        start, length = int(inputs.query_start[b]), int(batch.query_len[b])
        assert inputs.input_ids[b, start : start + length].tolist() == row(batch.query[b], batch.query_len[b])
    assert model.pair_doc_tokens == plain.pair_doc_tokens - 1
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert "task_prefix='the'" in config["auxir_sentence_transformers_note"]
    assert CrossEncoder.from_pretrained(tmp_path / "m").config.task_prefix == "the"


def test_concat_texts_joins_right_padded_rows():
    first, first_len = torch.tensor([[1, 2, 0], [3, 0, 0]]), torch.tensor([2, 1])
    second, second_len = torch.tensor([[7, 0], [8, 9]]), torch.tensor([1, 2])
    ids, lengths = concat_texts(first, first_len, second, second_len, pad_id=0)
    assert ids.tolist() == [[1, 2, 7], [3, 8, 9]] and lengths.tolist() == [3, 3]


def answer_context(queries: dict[str, Query], train: list[str]):
    return SimpleNamespace(ds=SimpleNamespace(queries=queries), split=SimpleNamespace(train=train))


def queries_with(field: str, answers: dict[str, str]) -> dict[str, Query]:
    return {
        q: Query(q, text, {field: answers[q]} if q in answers else {"year": 2020})
        for q, text in QUERIES.items()
    }


def test_answer_generation_reads_the_metadata_field_and_matches_by_hand(tiny_bert):
    model = eager_model(tiny_bert)
    batch = tiny_batch(model)
    objective = build_objective("answer_generation", {"field": "summary"})
    objective.prepare(model, answer_context(queries_with("summary", ANSWERS), list(QUERIES)))
    sep = model.tokenizer.sep_token_id
    sums = []
    for b, (query_id, _, _) in enumerate(GROUPS):
        passage = row(batch.docs[b, 0], batch.doc_len[b, 0])
        query = row(batch.query[b], batch.query_len[b])
        answer = model.tokenizer(ANSWERS[query_id], add_special_tokens=False)["input_ids"]
        sums.append(hand_nll(model, [*passage, sep, *query], answer))  # [CLS] P [SEP] Q [SEP] A [SEP]
    with torch.no_grad():
        loss = objective(model, batch)
    assert loss.item() == pytest.approx(sum(sums) / len(sums), abs=1e-4)


PAGES = {"q1": "a page about cats and kittens", "q2": "banks lend money", "q3": "genes are dna"}


def test_answer_generation_reads_its_passage_from_a_query_field_when_asked(tiny_bert):
    """passage_field (WikiQA: the answer sentence's page): P is that text, not the positive document."""
    model = eager_model(tiny_bert)
    batch = tiny_batch(model)
    objective = build_objective("answer_generation", {"field": "answer", "passage_field": "page"})
    queries = {q: Query(q, text, {"answer": ANSWERS[q], "page": PAGES[q]}) for q, text in QUERIES.items()}
    objective.prepare(model, answer_context(queries, list(QUERIES)))
    sep = model.tokenizer.sep_token_id
    sums, from_documents = [], []
    for b, (query_id, _, _) in enumerate(GROUPS):
        page = model.tokenizer(PAGES[query_id], add_special_tokens=False)["input_ids"]
        document = row(batch.docs[b, 0], batch.doc_len[b, 0])
        query = row(batch.query[b], batch.query_len[b])
        answer = model.tokenizer(ANSWERS[query_id], add_special_tokens=False)["input_ids"]
        sums.append(hand_nll(model, [*page, sep, *query], answer))
        from_documents.append(hand_nll(model, [*document, sep, *query], answer))
    with torch.no_grad():
        loss = objective(model, batch)
    assert loss.item() == pytest.approx(sum(sums) / len(sums), abs=1e-4)
    assert abs(sum(sums) - sum(from_documents)) > 1e-3  # the page, not the document, was read


def test_answer_generation_names_the_query_without_a_passage(tiny_bert):
    model = tiny_cross_encoder(tiny_bert)
    objective = build_objective("answer_generation", {"field": "answer", "passage_field": "page"})
    queries = {
        q: Query(q, text, {"answer": ANSWERS[q], **({"page": PAGES[q]} if q != "q3" else {})})
        for q, text in QUERIES.items()
    }
    with pytest.raises(
        ValueError, match=r"query 'q3' has no passage in metadata field 'page'.*params.passage_field"
    ):
        objective.prepare(model, answer_context(queries, list(QUERIES)))
    with pytest.raises(ValueError, match=r"passage_field is 'page'; give set_answers the passages"):
        objective.set_answers(model, ANSWERS)
    objective.set_answers(model, ANSWERS, {q: p for q, p in PAGES.items() if q != "q2"})
    with pytest.raises(ValueError, match=r"query 'q2' has no passage \(metadata field 'page'\)"):
        objective(model, tiny_batch(model))


def test_answer_generation_is_finite_and_reaches_the_encoder(tiny_bert):
    """What test_objectives checks of every objective that needs nothing beyond a batch."""
    model = tiny_cross_encoder(tiny_bert)
    objective = build_objective("answer_generation", {"prefix": True})
    objective.set_answers(model, ANSWERS)
    loss = objective(model, tiny_batch(model))
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() >= 0
    loss.backward()
    layer = model.backbone.bert.encoder.layer[0].attention.self.query.weight
    assert layer.grad is not None and layer.grad.abs().sum() > 0
    assert model.token_head.bias.grad.abs().sum() > 0


def test_answer_generation_names_the_query_and_field_it_lacks(tiny_bert):
    model = tiny_cross_encoder(tiny_bert)
    objective = build_objective("answer_generation")
    partial = {q: a for q, a in ANSWERS.items() if q != "q2"}
    with pytest.raises(
        ValueError, match=r"query 'q2' has no answer in metadata field 'long_answer'.*\['year'\]"
    ):
        objective.prepare(model, answer_context(queries_with("long_answer", partial), list(QUERIES)))
    empty = {**ANSWERS, "q3": "  "}
    with pytest.raises(ValueError, match=r"query 'q3' has no answer in metadata field 'long_answer'"):
        answers_from_queries(queries_with("long_answer", empty), list(QUERIES), "long_answer")


def test_answer_generation_without_answers_says_how_to_give_them(tiny_bert):
    model = tiny_cross_encoder(tiny_bert)
    batch = tiny_batch(model)
    with pytest.raises(ValueError, match=r"no answers; call prepare\(model, ctx\)"):
        build_objective("answer_generation")(model, batch)
    objective = build_objective("answer_generation")
    objective.set_answers(model, {"q1": "cat"})
    with pytest.raises(ValueError, match=r"query 'q2' has no answer \(metadata field 'long_answer'\)"):
        objective(model, batch)


def test_pubmedqa_training_queries_all_have_a_long_answer(shared_data):
    from auxir.data.dataset import load_dataset

    path = shared_data / "pubmedqa"
    if not path.is_dir():
        pytest.skip(f"real data not available: {path} does not exist")
    ds = load_dataset(str(path))
    train = sorted({q.query_id for q in ds.qrels("train")})
    answers = answers_from_queries(ds.queries, train, "long_answer")
    assert len(answers) == len(train) == 500


class RepeatedBatches:
    """The tiny batch of the helpers, ``count`` times an epoch."""

    def __init__(self, batch, count: int = 4):
        self._batch, self.count = batch, count

    def num_batches(self, epoch: int) -> int:
        return self.count

    def batch(self, epoch: int, index: int):
        return self._batch

    def units(self, batch) -> int:
        return batch.docs.shape[0] * batch.docs.shape[1]


def test_gdmtl_plus_trains_with_uncertainty_weighting_and_logs_sigma(tiny_bert, tmp_path):
    model = tiny_cross_encoder(tiny_bert, segment_order="doc_first", task_prefix="rank:")
    names = {
        "pairwise_hinge": {},
        "query_generation": {"prefix": True},
        "answer_generation": {"prefix": True},
    }
    objectives = {name: build_objective(name, params) for name, params in names.items()}
    objectives["answer_generation"].set_answers(model, ANSWERS)
    schedules = {name: ComponentSchedule() for name in names}
    config = TrainingConfig(
        output_dir=str(tmp_path), max_steps=4, log_every=1, device="cpu", progress=False, report_to="none"
    )
    trainer = Trainer(
        model,
        objectives,
        schedules,
        RepeatedBatches(tiny_batch(model)),
        config,
        WeightingConfig("uncertainty"),
    )
    # σ² lives in the module the trainer wraps in DDP, in its own optimizer group
    assert trainer.multitask.weighting.log_sigma2 in set(trainer.multitask.parameters())
    result = trainer.train()
    records = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4] and result.steps == 4
    for record in records:
        for name in names:
            assert math.isfinite(record[name]) and record[name] >= 0
            assert math.isfinite(record[f"sigma2/{name}"])
    for name in names:
        sigma2 = [r[f"sigma2/{name}"] for r in records]
        assert sigma2[0] != pytest.approx(1.0, abs=1e-4) and sigma2[-1] != pytest.approx(sigma2[0], abs=1e-4)


def test_gdmtl_recipe_end_to_end(tiny_bert, tiny_beir, tmp_path):
    from auxir.experiment import run_experiment

    recipe = load_recipe(
        "gdmtl",
        tiny_overrides(tiny_bert, tiny_beir, tmp_path, "data.valid_fraction=0.25", "training.log_every=1"),
    )
    assert recipe.weighting.strategy == "uncertainty" and recipe.architecture.segment_order == "doc_first"
    result = run_experiment(recipe)
    assert result.train.steps == 4
    records = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert len(steps) == 4
    for record in steps:
        for key in (
            "listwise_softmax",
            "query_generation",
            "sigma2/listwise_softmax",
            "sigma2/query_generation",
        ):
            assert math.isfinite(record[key]), (key, record)
    assert steps[-1]["sigma2/query_generation"] != pytest.approx(1.0, abs=1e-4)
    assert (tmp_path / "reranked.trec").exists() and json.loads((tmp_path / "metrics.json").read_text())[
        "reranked"
    ]
    saved = CrossEncoder.from_pretrained(result.train.model_dir).config
    assert saved.segment_order == "doc_first" and saved.task_prefix == "rank:"


def test_gdmtl_plus_recipe_end_to_end_reads_answers_from_query_metadata(tiny_bert, tiny_beir, tmp_path):
    """run_experiment prepares answer_generation (its answers tokenised once from the queries' metadata)."""
    import shutil

    from auxir.experiment import run_experiment

    data = tmp_path / "data"
    shutil.copytree(tiny_beir, data)
    records = [json.loads(line) for line in (data / "queries.jsonl").read_text().splitlines()]
    with (data / "queries.jsonl").open("w") as f:
        for record in records:
            record["metadata"] = {"long_answer": f"the answer about {record['text']}"}
            f.write(json.dumps(record) + "\n")
    out = tmp_path / "run"
    overrides = tiny_overrides(tiny_bert, data, out, "data.valid_fraction=0.25", "training.log_every=1")
    recipe = load_recipe("gdmtl-plus", overrides)
    result = run_experiment(recipe)
    assert result.train.steps == 4
    steps = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in steps if "loss" in r]
    assert all(math.isfinite(r["answer_generation"]) and r["answer_generation"] > 0 for r in steps)
    assert "sigma2/answer_generation" in steps[-1]
