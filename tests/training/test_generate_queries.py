"""Generated queries (doc2query-style expansions) from a cross-encoder's token head, and the CLI that writes
them and the BM25 index that appends them."""

from __future__ import annotations

import json

import pytest
import torch

from auxir.generation import GenerationConfig, generate_queries
from auxir.models.cross_encoder import CrossEncoder, CrossEncoderConfig

DOCS = ["cat cats kitten fur purr", "bank money loan interest"]


@pytest.fixture(scope="module")
def model(tiny_bert):
    torch.manual_seed(0)
    return CrossEncoder.from_pretrained(str(tiny_bert), config=CrossEncoderConfig(max_length=48)).eval()


def test_greedy_takes_the_most_likely_token_at_every_step(model) -> None:
    (queries,) = generate_queries(model, DOCS[:1], GenerationConfig(method="greedy", max_length=4))
    assert len(queries) == 1
    # by hand: re-encode [CLS] doc [SEP] prefix and take the argmax at the last position, step by step
    tok = model.tokenizer
    source = torch.tensor([tok(DOCS[0], add_special_tokens=False)["input_ids"]])
    target: list[int] = []
    banned = [i for i in tok.all_special_ids if i != tok.sep_token_id]
    for _ in range(4):
        t = torch.tensor([target], dtype=torch.long).reshape(1, len(target))
        out = model.mixed_attention(source, torch.tensor([source.shape[1]]), t, torch.tensor([len(target)]))
        logits = model.token_head(out.last_hidden_state[0, out.target_start[0, 0] - 1 + len(target)]).float()
        logits[banned] = float("-inf")
        token = int(logits.argmax())
        if token == tok.sep_token_id:
            break
        target.append(token)
    assert queries[0] == tok.decode(target)


def test_beam_returns_the_asked_number_best_first_and_sampling_is_seeded(model) -> None:
    beams = generate_queries(
        model, DOCS, GenerationConfig(method="beam", num_queries=3, beam_size=4, max_length=5)
    )
    assert [len(q) for q in beams] == [3, 3]
    config = GenerationConfig(method="sample", num_queries=4, max_length=5, top_k=5, seed=3)
    first, again = generate_queries(model, DOCS, config), generate_queries(model, DOCS, config)
    assert first == again and [len(q) for q in first] == [4, 4]
    assert all(len(model.tokenizer(q, add_special_tokens=False)["input_ids"]) <= 5 for q in first[0])


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="expected greedy, beam or sample, found 'topp'"):
        GenerationConfig(method="topp")
    with pytest.raises(ValueError, match="at most beam_size = 2 queries, asked for 3"):
        GenerationConfig(method="beam", beam_size=2, num_queries=3)


def test_cli_writes_expansions_that_the_bm25_index_appends(tiny_bert, tiny_beir, tmp_path, capsys) -> None:
    from auxir.cli import main
    from auxir.retrieval.bm25 import BM25Index

    out = tmp_path / "expansions.jsonl"
    args = ["generate-queries", "--model", str(tiny_bert), "--dataset", str(tiny_beir), "--out", str(out)]
    assert main([*args, "--method", "greedy", "--limit", "3", "--max-length", "3", "--device", "cpu"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3 and all(set(r) == {"_id", "queries"} and len(r["queries"]) == 1 for r in records)
    # an expansion-only word makes its document retrievable by it
    first = records[0]["_id"]
    out.write_text(json.dumps({"_id": first, "queries": ["zebra"]}) + "\n")
    index_dir = tmp_path / "idx"
    code = main(["index", "--dataset", str(tiny_beir), "--out", str(index_dir), "--expansions", str(out)])
    assert code == 0
    hits = BM25Index.load(index_dir).search({"q": "zebra"}, k=3)
    assert [h.doc_id for h in hits][:1] == [first]


def test_cli_batches_documents_without_changing_their_queries(tiny_bert, tiny_beir, tmp_path) -> None:
    from auxir.cli import main

    written = {}
    for batch in (1, 2):  # 3 documents: chunks of 2 and a last chunk of 1
        out = tmp_path / f"b{batch}.jsonl"
        args = ["generate-queries", "--model", str(tiny_bert), "--dataset", str(tiny_beir), "--out", str(out)]
        flags = ["--method", "sample", "--num", "2", "--limit", "3", "--max-length", "4", "--device", "cpu"]
        assert main([*args, *flags, "--batch-size", str(batch)]) == 0
        written[batch] = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written[2]) == 3 and written[2] == written[1]


def test_expansions_file_errors_name_the_line(tiny_beir, tmp_path, capsys) -> None:
    from auxir.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "x", "queries": ["a"]}\n{"_id": 3}\n')
    assert (
        main(["index", "--dataset", str(tiny_beir), "--out", str(tmp_path / "i"), "--expansions", str(bad)])
        == 2
    )
    assert "bad.jsonl, line 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("objectives", "family", "warned"),
    [
        ([{"name": "query_generation", "params": {"prefix": True}}], "cross_encoder", True),
        ([{"name": "query_generation", "params": {"stop": True}}], "cross_encoder", False),
        ([{"name": "query_generation", "params": {}}], "seq2seq", False),
        ([{"name": "listwise_softmax", "params": {}}], "cross_encoder", False),
    ],
)
def test_a_model_that_never_learnt_to_stop_is_named(tmp_path, objectives, family, warned) -> None:
    from auxir import provenance
    from auxir.cli.generate_queries import never_learnt_to_stop

    provenance.write(tmp_path, {"recipe": {"family": family, "objectives": objectives}})
    assert never_learnt_to_stop(str(tmp_path)) is warned
    assert never_learnt_to_stop(str(tmp_path / "no-provenance")) is False
