"""Recipe mistakes give one line naming the file or the override, what was expected and what was found."""

from __future__ import annotations

from pathlib import Path

import pytest

import auxir.cli
from auxir.recipe import apply_overrides, load_recipe

VALUES = {"objectives": [{"name": "pairwise_hinge", "weight": 1.0}], "training": {"epochs": 1}}


def cli(*argv: str | Path) -> int:
    return auxir.cli.main([str(a) for a in argv])


def test_malformed_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("training:\n  epochs: 2\n  learning_rate: [1e-5\nobjectives: []\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        load_recipe(str(path))
    assert str(info.value) == (
        f"{path}, line 4, column 11: expected valid YAML, found a syntax error: "
        "expected ',' or ']', but got ':' "
        "(while parsing a flow sequence started at line 3, column 18)"
    )


def test_malformed_yaml_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: [unclosed\n", encoding="utf-8")
    assert cli("train", "--recipe", path, "--print-recipe") != 0
    err = capsys.readouterr().err
    assert err.startswith(
        f"auxir train: error: {path}, line 2, column 1: expected valid YAML, found a syntax error: "
    )
    assert err.count("\n") == 1


def test_a_recipe_with_a_bom_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbftraining:\n  epochs: 3\n")
    assert load_recipe(str(path)).training.epochs == 3


@pytest.mark.parametrize(
    ("override", "found"),
    [
        ("objectives.3.weight=0.5", "found '3' (objectives has 1 entry)"),
        ("objectives.1=x", "found '1' (objectives has 1 entry)"),
        ("objectives.-1.weight=0.5", "found '-1' (objectives has 1 entry)"),
        ("objectives.first.weight=0.5", "found 'first' (objectives has 1 entry)"),
    ],
)
def test_list_index_out_of_range_or_not_an_integer(override: str, found: str) -> None:
    with pytest.raises(ValueError) as info:
        apply_overrides(VALUES, [override])
    assert str(info.value) == f"override {override!r}: expected a list index 0..0 for 'objectives', {found}"


def test_override_into_a_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        apply_overrides(VALUES, ["training.epochs.max=3"])
    assert str(info.value) == (
        "override 'training.epochs.max=3': expected a section at 'training.epochs', found the value 1"
    )


def test_list_override_past_the_end_through_the_cli(capsys: pytest.CaptureFixture) -> None:
    assert cli("train", "--recipe", "monobert", "--set", "objectives.3.weight=0.5", "--print-recipe") != 0
    err = capsys.readouterr().err
    assert err.startswith("auxir train: error: override 'objectives.3.weight=0.5': expected a list index 0..")


def test_list_overrides_in_range_still_work() -> None:
    values = apply_overrides(VALUES, ["objectives.0.weight=0.25"])
    assert values["objectives"][0]["weight"] == 0.25 and VALUES["objectives"][0]["weight"] == 1.0


@pytest.mark.parametrize("spelling", ["true", "false", "True", "false  "])
def test_bf16_override_read_by_yaml_as_a_bool_is_accepted(spelling: str) -> None:
    # `--set training.bf16=true` reaches the recipe as the YAML bool True; the field's values are strings.
    recipe = load_recipe("monobert", [f"training.bf16={spelling}"])
    assert recipe.training.bf16 == spelling.strip().lower()


def test_bf16_false_in_a_recipe_file(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("objectives: [{name: listwise_softmax}]\ntraining: {bf16: false}\n")
    assert load_recipe(str(path)).training.bf16 == "false"


def test_a_bool_for_a_choice_without_true_or_false_is_still_an_error() -> None:
    with pytest.raises(
        ValueError, match=r"evaluation.fusion: True is not one of \['minmax', 'zscore', 'none'\]"
    ):
        load_recipe("monobert", ["evaluation.fusion=true"])


@pytest.mark.parametrize(
    ("setting", "device", "expected"),
    [("auto", "cuda", True), ("auto", "cpu", False), ("true", "cpu", True), ("false", "cuda", False)],
)
def test_bf16_setting_on_each_device(setting: str, device: str, expected: bool) -> None:
    assert load_recipe("monobert", [f"training.bf16={setting}"]).training.uses_bf16(device) is expected
