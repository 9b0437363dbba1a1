"""``auxir --version`` and the CLI's log levels, through ``auxir.cli.main``."""

from __future__ import annotations

import io
import logging
import sys
from importlib import metadata
from types import SimpleNamespace

import pytest
import torch

import auxir
import auxir.cli
from auxir.data.records import ScoredDoc
from auxir.reranking import rerank

QRELS = "q1 0 d1 1\nq1 0 d2 0\n"
RUN = "q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 1.0 t\n"


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        auxir.cli.main(["--version"])
    try:
        expected = metadata.version("auxir")
    except metadata.PackageNotFoundError:
        expected = auxir.__version__
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"auxir {expected}"


def _evaluate(tmp_path, *flags: str) -> int:
    (tmp_path / "qrels.txt").write_text(QRELS)
    (tmp_path / "run.trec").write_text(RUN)
    args = ["evaluate", "--run", str(tmp_path / "run.trec"), "--qrels", str(tmp_path / "qrels.txt")]
    return auxir.cli.main([*flags, *args, "--metrics", "RR@10"])


@pytest.fixture
def restore_auxir_level():
    logger = logging.getLogger("auxir")
    level = logger.level
    yield
    logger.setLevel(level)


def _emit_debug() -> None:
    for name in ("auxir.probe", "urllib3.connectionpool", "filelock", "transformers.modeling_utils"):
        logging.getLogger(name).debug("debug from %s", name)


def test_default_level_logs_no_debug(tmp_path, caplog, restore_auxir_level) -> None:
    # caplog opens the root logger to DEBUG, as an embedding application might; the CLI must close it again.
    with caplog.at_level(logging.DEBUG):
        assert _evaluate(tmp_path) == 0
        _emit_debug()
    debug = [(r.name, r.getMessage()) for r in caplog.records if r.levelno <= logging.DEBUG]
    assert debug == []


def test_verbose_logs_debug_of_auxir_only(tmp_path, caplog, restore_auxir_level) -> None:
    with caplog.at_level(logging.DEBUG):
        assert _evaluate(tmp_path, "-v") == 0
        _emit_debug()
    debug = {r.name for r in caplog.records if r.levelno <= logging.DEBUG}
    assert debug == {"auxir.probe"}


class _StubCrossEncoder(torch.nn.Module):
    """Just what ``rerank`` reads: a config, a template, a tokenizer and ``score`` (the document length)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(max_length=16, max_query_length=4)
        self.template = SimpleNamespace(num_special=3, pad_id=0)

    @staticmethod
    def tokenizer(texts: list[str], **_: object) -> dict[str, list[list[int]]]:
        return {"input_ids": [[1] * len(text.split()) for text in texts]}

    def score(self, q, q_len, d, d_len) -> torch.Tensor:
        return d_len.float()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("progress", "terminal", "shown"), [(True, True, True), (True, False, False), (False, True, False)]
)
def test_rerank_progress_bar_only_when_asked_and_on_a_terminal(
    monkeypatch, progress, terminal, shown
) -> None:
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    run = [ScoredDoc("q1", "a", 2.0), ScoredDoc("q1", "b", 1.0)]
    docs = {"a": "one", "b": "one two three"}
    result = rerank(
        _StubCrossEncoder(),
        run,
        {"q1": "query"},
        docs.__getitem__,
        batch_size=1,
        device="cpu",
        progress=progress,
    )
    assert [(s.doc_id, s.score) for s in result.run] == [("a", 1.0), ("b", 3.0)]
    assert ("rerank" in stderr.getvalue()) is shown


def test_bm25s_debug_lines_stay_quiet_at_the_default_level() -> None:
    import logging

    from auxir.cli import configure_logging

    configure_logging(verbose=False)
    import auxir.retrieval.bm25  # noqa: F401  (bm25s sets its logger to DEBUG when imported)

    assert logging.getLogger("bm25s").getEffectiveLevel() >= logging.WARNING
    assert not logging.getLogger("bm25s").isEnabledFor(logging.DEBUG)
