from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from auxir.data import DataFormatError, Qrel, Query, ScoredDoc
from auxir.data.trec import group_by_query, read_qrels, read_run, read_topics, write_run


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- qrels ----------------------------------------------------------------------------------------------
def test_read_qrels_trec_four_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "qrels.txt", "301 0 FBIS3-10082 1\n301 0 FBIS3-10169 0\n\n302 Q0 LA-1 2\n")
    assert read_qrels(path) == [
        Qrel("301", "FBIS3-10082", 1),
        Qrel("301", "FBIS3-10169", 0),
        Qrel("302", "LA-1", 2),
    ]


def test_read_qrels_beir_tsv_with_header_and_graded(tmp_path: Path) -> None:
    path = write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t3\nq1\td2\t0\nq2\td1\t-1\n")
    assert read_qrels(path) == [Qrel("q1", "d1", 3), Qrel("q1", "d2", 0), Qrel("q2", "d1", -1)]


def test_read_qrels_beir_tsv_without_header_and_float_grades(tmp_path: Path) -> None:
    path = write(tmp_path / "test.tsv", "q1\td1\t1.0\r\nq2\td3\t2\r\n")
    assert read_qrels(path) == [Qrel("q1", "d1", 1), Qrel("q2", "d3", 2)]


def test_read_qrels_gzip(tmp_path: Path) -> None:
    path = tmp_path / "qrels.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("1 0 d 1\n")
    assert read_qrels(path) == [Qrel("1", "d", 1)]


def test_qrels_wrong_column_count(tmp_path: Path) -> None:
    path = write(tmp_path / "qrels.txt", "301 0 d1 1\n301 0 d2\n")
    with pytest.raises(DataFormatError) as info:
        read_qrels(path)
    assert info.value.line == 2 and info.value.path == str(path)
    assert "4 columns" in info.value.expected and "3 columns" in info.value.found


def test_qrels_five_columns_on_first_line(tmp_path: Path) -> None:
    path = write(tmp_path / "qrels.txt", "301 0 d1 1 extra\n")
    with pytest.raises(DataFormatError, match=r"line 1: expected 4 columns .* found 5 columns"):
        read_qrels(path)


def test_qrels_non_numeric_relevance(tmp_path: Path) -> None:
    path = write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\thigh\n")
    with pytest.raises(DataFormatError, match=r"line 3: expected an integer relevance grade, found 'high'"):
        read_qrels(path)


def test_qrels_fractional_relevance(tmp_path: Path) -> None:
    path = write(tmp_path / "test.tsv", "q1\td1\t0.5\n")
    with pytest.raises(DataFormatError, match="line 1: expected an integer relevance grade, found '0.5'"):
        read_qrels(path)


def test_qrels_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "qrels.txt"
    path.write_bytes(b"1 0 d1 1\n1 0 d\xff2 1\n")
    with pytest.raises(
        DataFormatError, match=r"line 2: expected UTF-8 text, found invalid byte 0xff at byte column 6"
    ):
        read_qrels(path)


def test_qrels_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_qrels(tmp_path / "nope.txt")


# -- runs -----------------------------------------------------------------------------------------------
RUN = """\
q2 Q0 b 1 3.5 sys
q2 Q0 a 2 1.25 sys
q1 Q0 c 1 -0.5 sys
"""


def test_read_run_keeps_file_order(tmp_path: Path) -> None:
    path = write(tmp_path / "run.trec", RUN)
    assert read_run(path) == [
        ScoredDoc("q2", "b", 3.5),
        ScoredDoc("q2", "a", 1.25),
        ScoredDoc("q1", "c", -0.5),
    ]


def test_run_wrong_column_count(tmp_path: Path) -> None:
    path = write(tmp_path / "run.trec", "q1 Q0 a 1 2.0 sys\nq1 Q0 b 2 1.0\n")
    with pytest.raises(DataFormatError, match=r"run.trec, line 2: expected 6 columns .* found 5 columns"):
        read_run(path)


def test_run_non_numeric_score(tmp_path: Path) -> None:
    path = write(tmp_path / "run.trec", "q1 Q0 a 1 abc sys\n")
    with pytest.raises(DataFormatError, match=r"line 1: expected a number as score, found 'abc'"):
        read_run(path)


def test_run_non_numeric_rank(tmp_path: Path) -> None:
    path = write(tmp_path / "run.trec", "q1 Q0 a 1 2.0 sys\nq1 Q0 b first 1.0 sys\n")
    with pytest.raises(DataFormatError, match=r"line 2: expected an integer rank, found 'first'"):
        read_run(path)


def test_run_duplicate_pair_names_both_lines(tmp_path: Path) -> None:
    # The same document under another query is fine; the same pair again is not (blank lines still count).
    text = "q1 Q0 d1 1 3.0 sys\nq2 Q0 d3 1 2.0 sys\n\nq1 Q0 d3 2 1.0 sys\nq1 Q0 d3 3 0.5 sys\n"
    path = write(tmp_path / "run.trec", text)
    with pytest.raises(DataFormatError) as info:
        read_run(path)
    assert info.value.path == str(path) and info.value.line == 5
    assert "query 'q1' doc 'd3' already at line 4" in str(info.value)
    assert str(info.value).startswith(f"{path}, line 5: expected each (query, document) pair once")


def test_write_run_groups_sorts_ranks_and_breaks_ties(tmp_path: Path) -> None:
    scored = [
        ScoredDoc("q2", "x", 1.0),
        ScoredDoc("q1", "b", 0.5),
        ScoredDoc("q2", "z", 2.0),
        ScoredDoc("q1", "c", 0.5),
        ScoredDoc("q1", "a", 0.5),
        ScoredDoc("q2", "y", 2.0),
    ]
    path = tmp_path / "out" / "run.trec"
    write_run(path, scored, tag="mine")
    assert path.read_text().splitlines() == [
        "q2 Q0 z 1 2.0 mine",
        "q2 Q0 y 2 2.0 mine",
        "q2 Q0 x 3 1.0 mine",
        "q1 Q0 c 1 0.5 mine",
        "q1 Q0 b 2 0.5 mine",
        "q1 Q0 a 3 0.5 mine",
    ]
    assert not [p for p in path.parent.iterdir() if p.name != "run.trec"]  # no temp file left behind


def test_write_then_read_run_round_trips_floats(tmp_path: Path) -> None:
    scored = [
        ScoredDoc("1", "d1", 15.780599594116211),
        ScoredDoc("1", "d2", 1e-300),
        ScoredDoc("1", "d3", -3.0),
    ]
    write_run(tmp_path / "run.trec", scored)
    assert read_run(tmp_path / "run.trec") == scored


def test_write_run_rejects_whitespace_in_ids(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="doc id without whitespace"):
        write_run(tmp_path / "run.trec", [ScoredDoc("q", "a b", 1.0)])
    assert not (tmp_path / "run.trec").exists()


def test_group_by_query() -> None:
    groups = group_by_query([ScoredDoc("q1", "a", 1.0), ScoredDoc("q0", "b", 0.0), ScoredDoc("q1", "c", 2.0)])
    assert list(groups) == ["q1", "q0"]
    assert [s.doc_id for s in groups["q1"]] == ["c", "a"]


# -- topics ---------------------------------------------------------------------------------------------
TOPICS = """\
<top>
<num> Number: 301
<title> International Organized Crime

<desc> Description:
Identify organizations that participate in international
criminal activity.

<narr> Narrative:
A relevant document must as a minimum identify the organization.
</top>

<top>
<num> Number: 302 <title> Poliomyelitis and Post-Polio
<desc> Description: Is the disease of Poliomyelitis (polio) under control?
<narr> Narrative: Relevant documents report on outbreaks.
</top>
"""


def test_read_topics_trec_title(tmp_path: Path) -> None:
    topics = read_topics(write(tmp_path / "topics.301-302", TOPICS))
    assert list(topics) == ["301", "302"]
    assert topics["301"] == Query(
        "301",
        "International Organized Crime",
        {
            "desc": "Identify organizations that participate in international criminal activity.",
            "narr": "A relevant document must as a minimum identify the organization.",
        },
    )
    assert topics["302"].text == "Poliomyelitis and Post-Polio"


def test_read_topics_trec_description(tmp_path: Path) -> None:
    topics = read_topics(write(tmp_path / "topics", TOPICS), field="description")
    assert topics["302"].text == "Is the disease of Poliomyelitis (polio) under control?"
    assert topics["302"].metadata["title"] == "Poliomyelitis and Post-Polio"


def test_read_topics_missing_field(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"line 1: expected a <concept> field in topic 301"):
        read_topics(write(tmp_path / "topics", TOPICS), field="concept")


def test_read_topics_tsv(tmp_path: Path) -> None:
    topics = read_topics(
        write(tmp_path / "topics.tsv", "19335\tanthropological definition of environment\n2\tb c\n")
    )
    assert topics == {
        "19335": Query("19335", "anthropological definition of environment"),
        "2": Query("2", "b c"),
    }


def test_read_topics_tsv_wrong_column_count(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"line 2: expected 2 tab-separated columns"):
        read_topics(write(tmp_path / "topics.tsv", "1\ta\n2 b\n"))
