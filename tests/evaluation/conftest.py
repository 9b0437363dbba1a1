"""Shared fixtures for the evaluation tests: inline TREC qrels and runs read through auxir.data.trec."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

try:  # the package is normally installed (pip install -e .); fall back to the source tree.
    import auxir  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from auxir.data.trec import read_qrels, read_run  # noqa: E402

# Graded judgements, TREC DL style (0..3). q3 is judged but absent from the run; q4 is run but not judged.
QRELS = """\
q1 0 d1 3
q1 0 d2 0
q1 0 d3 1
q1 0 d4 2
q1 0 d9 2
q2 0 d1 1
q2 0 d5 0
q2 0 d6 2
q3 0 d7 1
"""

# q1 ranks d2(0) d1(3) d3(1) d5(unjudged) d4(2); q2 ranks d5(0) d1(1) d6(2). Lines deliberately not in
# score order: evaluation must sort by score.
RUN = """\
q1 Q0 d1 2 8.0 t
q1 Q0 d2 1 9.0 t
q1 Q0 d3 3 7.0 t
q1 Q0 d5 4 6.0 t
q1 Q0 d4 5 5.0 t
q2 Q0 d5 1 3.0 t
q2 Q0 d1 2 2.0 t
q2 Q0 d6 3 1.0 t
q4 Q0 d1 1 1.0 t
"""


@pytest.fixture
def trec_files(tmp_path: Path) -> Path:
    """A folder with ``qrels.txt`` and ``run.trec`` holding the strings above."""
    (tmp_path / "qrels.txt").write_text(QRELS)
    (tmp_path / "run.trec").write_text(RUN)
    return tmp_path


@pytest.fixture
def qrels(trec_files: Path):
    return read_qrels(trec_files / "qrels.txt")


@pytest.fixture
def run(trec_files: Path):
    return read_run(trec_files / "run.trec")
