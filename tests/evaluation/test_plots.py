"""Plots: each function writes a PNG of the expected size from hand-made inputs; a run folder gets its files;
``auxir plot`` prints their paths and names the file and line of a malformed log."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from matplotlib.image import imread

import auxir.cli
from auxir.data.errors import DataFormatError
from auxir.data.trec import read_run
from auxir.plots import (
    _score_groups,
    plot_per_query_differences,
    plot_run_dir,
    plot_score_distributions,
    plot_training,
    read_train_log,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 120  # auxir.plots writes every figure at this resolution


def training_log(path: Path) -> Path:
    """Two components with uncertainty weights every 10 steps, validation every 20; step 20 logged twice."""
    lines = []
    for step in range(10, 61, 10):
        lines.append(
            {
                "step": step,
                "epoch": 0,
                "lr": 1e-5,
                "listwise_softmax": 2.0 / step,
                "mqp": 300.0 / step,
                "loss": 2.0 / step + 0.05 * 300.0 / step,
                "sigma2/listwise_softmax": 1.0,
                "sigma2/mqp": 1.0 + step / 100,
            }
        )
        if step % 20 == 0:
            lines.append({"step": step, "valid/nDCG@10": 0.5 + step / 1000, "valid/RR@10": 0.4})
    lines.append({"step": 20, "valid/nDCG@10": 0.9, "valid/RR@10": 0.4})  # a resumed run logs it again
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def assert_png(path: Path, height: int, width: int) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert imread(path).shape == (height, width, 4)


@pytest.fixture
def run_dir(trec_files: Path) -> Path:
    """A folder as ``auxir train`` writes it, on the inline run and qrels of conftest."""
    folder = trec_files / "run"
    folder.mkdir()
    training_log(folder / "train_log.jsonl")
    recipe = {
        "data": {"dataset": str(trec_files / "no-such-dataset"), "eval_split": "test", "rerank_top_k": 4},
        "evaluation": {"valid_metric": "nDCG@10", "rel": None},
        "weighting": {"strategy": "uncertainty"},
        "objectives": [{"name": "listwise_softmax"}, {"name": "mqp", "weight": 0.05}],
    }
    (folder / "recipe.json").write_text(json.dumps(recipe))
    run = (trec_files / "run.trec").read_text()
    (folder / "reranked.trec").write_text(run)
    # the first stage puts q2's grade-0 d5 last, so it beats the reranked run on q2
    (folder / "first_stage.trec").write_text(run.replace("q2 Q0 d5 1 3.0", "q2 Q0 d5 1 0.5"))
    return folder


def test_read_train_log_sorts_and_keeps_the_last_record_of_a_step(tmp_path: Path) -> None:
    log = read_train_log(training_log(tmp_path / "train_log.jsonl"))
    assert [r["step"] for r in log.training] == [10, 20, 30, 40, 50, 60]
    assert log.components == ["listwise_softmax", "mqp"]
    assert log.valid_metrics == ["nDCG@10", "RR@10"]
    assert log.series(log.validation, "valid/nDCG@10") == ([20, 40, 60], [0.9, 0.54, 0.56])


def test_plot_training_writes_three_panels(tmp_path: Path) -> None:
    out = plot_training(training_log(tmp_path / "train_log.jsonl"), tmp_path / "training.png")
    assert out == tmp_path / "training.png"
    assert_png(out, height=(1 + 3 * 3) * DPI, width=9 * DPI)
    assert not list(tmp_path.glob(".training.png.*"))  # no temporary left by the atomic write


def test_plot_training_skips_panels_without_data(tmp_path: Path) -> None:
    log = tmp_path / "train_log.jsonl"
    log.write_text('{"step": 5, "valid/nDCG@10": 0.3}\n{"step": 10, "valid/nDCG@10": 0.4}\n')
    assert_png(plot_training(log, tmp_path / "training.png"), height=(1 + 3) * DPI, width=9 * DPI)


def test_fixed_weights_come_from_the_objectives(tmp_path: Path) -> None:
    log = tmp_path / "train_log.jsonl"
    log.write_text(
        '{"step": 10, "a": 1.0, "b": 2.0, "loss": 1.1}\n{"step": 20, "a": 0.5, "b": 1.0, "loss": 0.6}\n'
    )
    objectives = [{"name": "a", "weight": 1.0}, {"name": "b", "weight": 0.05, "start_step": 10}]
    out = plot_training(log, tmp_path / "training.png", objectives=objectives)
    assert_png(out, height=(1 + 3 * 2) * DPI, width=9 * DPI)


def test_malformed_log_line_names_file_and_line(tmp_path: Path) -> None:
    log = tmp_path / "train_log.jsonl"
    log.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": \n')
    with pytest.raises(DataFormatError, match=r"train_log.jsonl, line 2: expected one JSON object per line"):
        read_train_log(log)
    log.write_text('{"step": 1, "loss": 1.0}\n{"loss": 2.0}\n')
    with pytest.raises(DataFormatError, match=r"line 2: expected an integer 'step', found None"):
        read_train_log(log)


def test_score_groups_by_grade_and_min_max(trec_files: Path) -> None:
    from auxir.data.trec import group_by_query

    grades = {"q1": {"d1": 3, "d2": 0, "d3": 1, "d4": 2, "d9": 2}, "q2": {"d1": 1, "d5": 0, "d6": 2}}
    per_query = {q: d for q, d in group_by_query(read_run(trec_files / "run.trec")).items() if q in grades}
    # q1 scores d2 9, d1 8, d3 7, d5 6, d4 5; q2 d5 3, d1 2, d6 1; q4 is not judged and left out
    assert _score_groups(per_query, grades, rel=2, normalise=False) == {
        "relevant": [8.0, 5.0, 1.0],
        "judged non-relevant": [9.0, 7.0, 3.0, 2.0],
        "unjudged": [6.0],
    }
    assert _score_groups(per_query, grades, rel=2, normalise=True)["relevant"] == [0.75, 0.0, 0.0]


def test_plot_score_distributions(trec_files: Path, run, qrels) -> None:
    out = plot_score_distributions(run, qrels, trec_files / "scores.png", rel=2, first_stage=run, top_k=3)
    assert_png(out, height=round((1.2 + 3.4 * 2) * DPI), width=round(5.2 * 2 * DPI))
    single = plot_score_distributions(run, qrels, trec_files / "one.png", scales=["minmax"])
    assert_png(single, height=round((1.2 + 3.4) * DPI), width=round(5.2 * DPI))


def test_score_distributions_need_judged_queries(trec_files: Path, run) -> None:
    from auxir.data.records import Qrel

    with pytest.raises(ValueError, match="reranked run to share queries with the qrels, found none"):
        plot_score_distributions(run, [Qrel("q9", "d1", 1)], trec_files / "scores.png")


def test_plot_per_query_differences(tmp_path: Path) -> None:
    a = {"q1": 1.0, "q2": 0.5, "q3": 0.2, "q4": 0.7}
    b = {"q1": 0.5, "q2": 0.5, "q3": 0.4, "q5": 1.0}
    out = plot_per_query_differences(a, b, "nDCG@10", tmp_path / "diff.png", names=("A", "B"))
    assert_png(out, height=round(4.8 * DPI), width=10 * DPI)
    with pytest.raises(ValueError, match="'A' and 'B' to share evaluated queries"):
        plot_per_query_differences({"q1": 1.0}, {"q2": 1.0}, "nDCG@10", tmp_path / "x.png", names=("A", "B"))


def test_plot_run_dir_with_qrels(run_dir: Path, qrels) -> None:
    written = plot_run_dir(run_dir, qrels)
    assert written == [run_dir / name for name in ("training.png", "scores.png", "vs-first-stage.png")]
    for path in written:
        assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_plot_run_dir_without_the_dataset_skips_the_qrels_plots(
    run_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="auxir.plots"):
        assert plot_run_dir(run_dir) == [run_dir / "training.png"]
    assert "score and per-query plots skipped" in caplog.text and "no-such-dataset" in caplog.text


def test_plot_run_dir_reads_the_recipe_dataset(run_dir: Path, trec_files: Path) -> None:
    beir = trec_files / "no-such-dataset"
    (beir / "qrels").mkdir(parents=True)
    docs = {"d1", "d2", "d3", "d4", "d5", "d6", "d7", "d9"}
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "text": d}) + "\n" for d in sorted(docs))
    )
    queries = ["q1", "q2", "q3", "q4"]
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": q}) + "\n" for q in queries))
    rows = [line.split() for line in (trec_files / "qrels.txt").read_text().splitlines()]
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q, _, d, g in rows)
    )
    assert [p.name for p in plot_run_dir(run_dir)] == ["training.png", "scores.png", "vs-first-stage.png"]


def test_plot_run_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere: no such run folder"):
        plot_run_dir(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no train_log.jsonl here"):
        plot_run_dir(tmp_path)


def test_cli_prints_the_paths(run_dir: Path, trec_files: Path, capsys: pytest.CaptureFixture) -> None:
    out_dir = trec_files / "figures"
    code = auxir.cli.main(
        [
            "plot",
            str(run_dir),
            "--qrels",
            str(trec_files / "qrels.txt"),
            "--out",
            str(out_dir),
            "--baseline",
            str(run_dir / "first_stage.trec"),
            "--metric",
            "RR@10",
        ]
    )
    assert code == 0
    names = ["training.png", "scores.png", "vs-first-stage.png", "vs-first_stage.png"]
    assert capsys.readouterr().out.splitlines() == [str(out_dir / name) for name in names]


def test_cli_baseline_run_folder(run_dir: Path, trec_files: Path, capsys: pytest.CaptureFixture) -> None:
    other = trec_files / "other-run"
    other.mkdir()
    (other / "reranked.trec").write_text((run_dir / "first_stage.trec").read_text())
    args = ["plot", str(run_dir), "--qrels", str(trec_files / "qrels.txt"), "--baseline", str(other)]
    assert auxir.cli.main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(run_dir / "vs-other-run.png")


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert auxir.cli.main(["plot", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"auxir plot: error: {tmp_path / 'nowhere'}: no such run folder\n"
    assert auxir.cli.main(["plot", str(tmp_path)]) == 2
    assert "no train_log.jsonl here" in capsys.readouterr().err
    (tmp_path / "train_log.jsonl").write_text('{"step": 1, "loss": 1.0}\n\n{"step": 2,\n')
    assert auxir.cli.main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"auxir plot: error: {tmp_path / 'train_log.jsonl'}, line 3: expected one JSON object"
    )
    assert err.count("\n") == 1


def test_compare_plot_option(trec_files: Path, capsys: pytest.CaptureFixture) -> None:
    run = (trec_files / "run.trec").read_text()
    (trec_files / "other.trec").write_text(run.replace("q2 Q0 d5 1 3.0", "q2 Q0 d5 1 0.5"))
    png = trec_files / "compare.png"
    args = ["compare", "--baseline", str(trec_files / "run.trec"), "--runs", str(trec_files / "other.trec")]
    args += ["--qrels", str(trec_files / "qrels.txt"), "--metrics", "RR@10", "--plot", str(png)]
    assert auxir.cli.main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"plot: {png}"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
