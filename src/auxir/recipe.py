"""Recipes: typed dataclass sections loaded from YAML, every field overridable with ``section.field=value``.

A recipe is the whole description of an experiment (model, data, samples, objectives, weighting,
training, evaluation). Unknown sections, fields or objective names are errors that list the valid ones.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from auxir.data.samples import SampleConfig
from auxir.models.cross_encoder import CrossEncoderConfig
from auxir.training.config import TrainingConfig
from auxir.training.weighting import WeightingConfig

# Shipped in the wheel as package data; ``recipes/`` in the working directory is searched first.
RECIPE_DIR = Path(__file__).resolve().parent / "recipes"


@dataclass
class DataConfig:
    dataset: str = "../shared/data/scifact"  # a BEIR directory or irds:<id>
    train_split: str = "train"
    eval_split: str = "test"
    valid_split: str | None = None  # None: hold out ``valid_fraction`` of the training queries
    valid_fraction: float = 0.1
    # "bm25", "dense" (dense_model's embeddings in a FAISS index), a run in the dataset's runs/, or a TREC file
    first_stage: str = "bm25"
    dense_model: str | None = None  # the first stage's encoder when first_stage is "dense" (None: model)
    bm25_k1: float = 0.9
    bm25_b: float = 0.4
    first_stage_k: int = 100
    rerank_top_k: int = 100
    max_train_queries: int | None = None
    max_valid_queries: int | None = None
    max_eval_queries: int | None = None
    folds: str | None = None  # a folds file from ``auxir folds``: train/valid/test come from it
    fold: int = 0


@dataclass
class EvaluationConfig:
    metrics: list[str] = field(default_factory=lambda: ["nDCG@10", "RR@10", "P@20"])
    rel: int | None = None
    valid_metric: str = "nDCG@10"
    batch_size: int = 64
    # Interpolate reranker and first-stage scores, normalised per query, with the weight that is best on
    # the validation queries; reported beside the pure reranker ("none": no fusion).
    fusion: Literal["minmax", "zscore", "none"] = "minmax"


@dataclass
class ObjectiveConfig:
    name: str
    weight: float = 1.0
    start_step: int = 0
    stop_step: int | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recipe:
    name: str = "custom"
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    family: str = "cross_encoder"  # a registered model family (auxir.families); architecture is its Config
    architecture: Any = field(default_factory=CrossEncoderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    samples: SampleConfig = field(default_factory=SampleConfig)
    objectives: list[ObjectiveConfig] = field(default_factory=lambda: [ObjectiveConfig("pairwise_hinge")])
    weighting: WeightingConfig = field(default_factory=WeightingConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "recipe") -> Recipe:
        if not isinstance(values, dict):
            raise ValueError(f"{where}: expected a mapping, found {type(values).__name__}")
        values = dict(values)
        config = family_config(values.get("family", "cross_encoder"), f"{where}.family")
        architecture = _build(config, values.pop("architecture", None) or {}, f"{where}.architecture")
        recipe = _build(cls, values, where)
        recipe.architecture = architecture
        return recipe


def family_config(name: Any, where: str = "family") -> type:
    """The ``architecture`` dataclass of the model family ``name``."""
    from auxir.families import FAMILIES

    if name not in FAMILIES:
        raise ValueError(f"{where}: unknown family {name!r}; valid families: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name].Config


def _build(cls, values: Any, where: str):
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping, found {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    valid = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; valid fields: {sorted(valid)}")
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _convert(hints[name], value, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ValueError(f"{where}: {error}") from None


def _convert(hint, value, where: str):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, found {value!r}")
        return [_convert(item, v, f"{where}.{i}") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where) if len(args) == 1 else value
    if origin is typing.Literal:
        if isinstance(value, bool) and str(value).lower() in typing.get_args(hint):
            value = str(value).lower()  # YAML reads `bf16: true` (or --set training.bf16=true) as a bool
        if value not in typing.get_args(hint):
            raise ValueError(f"{where}: {value!r} is not one of {list(typing.get_args(hint))}")
        return value
    if hint is float and not isinstance(value, bool):
        # YAML 1.1 reads "5e-5" (no dot) as a string; accept every spelling float() accepts.
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected a number, found {value!r}") from None
    if hint in (int, str, bool) and not isinstance(value, hint):
        raise ValueError(f"{where}: expected {hint.__name__}, found {value!r}")
    return value


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["training.learning_rate=3e-5", "objectives.1.weight=0.05"]`` applied to a recipe dict."""
    values = copy.deepcopy(values)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r}: expected section.field=value")
        key, raw = item.split("=", 1)
        parts = key.split(".")
        target: Any = values
        for depth, part in enumerate(parts[:-1]):
            if isinstance(target, list):
                target = target[_list_index(target, part, parts[:depth], item)]
            elif isinstance(target, dict):
                if part not in target:
                    raise ValueError(f"override {item!r}: no section {part!r}; valid: {sorted(target)}")
                target = target[part]
            else:
                raise ValueError(
                    f"override {item!r}: expected a section at {'.'.join(parts[:depth])!r}, found the value {target!r}"
                )
        last = parts[-1]
        if isinstance(target, list):
            target[_list_index(target, last, parts[:-1], item)] = yaml.safe_load(raw)
        elif isinstance(target, dict):
            target[last] = yaml.safe_load(raw)
        else:
            raise ValueError(
                f"override {item!r}: expected a section at {'.'.join(parts[:-1])!r}, found the value {target!r}"
            )
    return values


def _list_index(items: list[Any], part: str, path: list[str], item: str) -> int:
    """``part`` as an index into ``items``: a non-negative integer below its length (no ``-1`` from the end)."""
    if part.isascii() and part.isdigit() and int(part) < len(items):
        return int(part)
    name = ".".join(path)
    entries = f"{len(items)} {'entry' if len(items) == 1 else 'entries'}"
    span = f"0..{len(items) - 1}" if items else "none (the list is empty)"
    raise ValueError(
        f"override {item!r}: expected a list index {span} for {name!r}, found {part!r} ({name} has {entries})"
    )


def find_recipe(name_or_path: str) -> Path:
    """A YAML file, or a recipe name looked up in ``./recipes`` and then in the recipes auxir ships."""
    path = Path(name_or_path)
    if path.exists():
        return path
    for base in (Path("recipes"), RECIPE_DIR):
        candidate = base / f"{name_or_path}.yaml"
        if candidate.exists():
            return candidate
    known = sorted(p.stem for p in RECIPE_DIR.glob("*.yaml")) if RECIPE_DIR.exists() else []
    raise FileNotFoundError(f"no recipe {name_or_path!r}; known recipes: {', '.join(known) or 'none'}")


def _read_yaml(path: Path) -> Any:
    """Parse a recipe file; a syntax error names the file, line and column (one line, not PyYAML's five)."""
    try:
        # utf-8-sig: a byte-order mark written by an editor is not part of the first key.
        return yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        found = f"a syntax error: {error.problem or error.context}"
        if error.context and error.context_mark and error.problem:
            start = error.context_mark
            found += f" ({error.context} started at line {start.line + 1}, column {start.column + 1})"
        raise ValueError(f"{where}: expected valid YAML, found {found}") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: expected valid YAML, found {' '.join(str(error).split())}") from None


def load_recipe(name_or_path: str | None = None, overrides: list[str] | None = None) -> Recipe:
    loaded: Any = {}
    if name_or_path:
        path = find_recipe(name_or_path)
        loaded = _read_yaml(path) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a recipe must be a mapping of sections")
    # The architecture defaults are those of the family the recipe (or a ``family=`` override) names.
    family = _family_override(overrides or []) or loaded.get("family", Recipe.family)
    values: dict[str, Any] = Recipe(family=family).to_dict()
    values["architecture"] = asdict(family_config(family, f"{name_or_path or 'recipe'}: family")())
    if name_or_path:
        for key, section in loaded.items():
            if isinstance(section, dict) and isinstance(values.get(key), dict):
                values[key] = {**values[key], **section}
            else:
                values[key] = section
        values.setdefault("name", path.stem)
        if "name" not in loaded:
            values["name"] = path.stem
    values = apply_overrides(values, overrides or [])
    recipe = Recipe.from_dict(values, where=str(name_or_path or "recipe"))
    from auxir.objectives import build_objective  # checks names and parameters before any work starts

    for objective in recipe.objectives:
        build_objective(objective.name, objective.params)
    return recipe


def _family_override(overrides: list[str]) -> str | None:
    """The family a ``family=...`` override sets (the last one wins, as in ``apply_overrides``)."""
    for item in reversed(overrides):
        key, _, raw = item.partition("=")
        if key == "family":
            return str(yaml.safe_load(raw))
    return None
