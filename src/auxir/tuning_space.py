"""Search spaces of ``auxir tune``: a YAML file naming recipe fields and how to draw them.

    metric: valid            # the trial value is metrics.json's best_valid: never a test metric
    direction: maximize
    params:
      training.learning_rate: {type: float, low: 1.0e-5, high: 3.0e-4, log: true}
      objectives.0.name: {type: categorical, choices: [listwise_softmax, pairwise_hinge]}
      objectives.1.weight: {type: categorical, choices: [0.1, 1.0], also: [objectives.2.weight]}
    fixed:                   # overrides every trial gets
      objectives.0.params: {}

``also`` writes the drawn value to more fields too (one λ weighting two objectives, say).
Every bad entry is an error naming the file, the line and the parameter.
"""

from __future__ import annotations

import contextlib
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

ParamType = Literal["float", "int", "categorical"]
_KEYS: dict[str, set[str]] = {
    "float": {"type", "low", "high", "log", "step", "also"},
    "int": {"type", "low", "high", "log", "step", "also"},
    "categorical": {"type", "choices", "also"},
}


# ---- the search space ---------------------------------------------------------------------------------
@dataclass
class ParamSpec:
    """How one recipe field is drawn: a float or int range, or a list of choices."""

    name: str
    type: ParamType
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] = field(default_factory=list)
    also: list[str] = field(default_factory=list)  # more fields that take the same value

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.type == "float":
            return FloatDistribution(self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return CategoricalDistribution(self.choices)

    def probe_values(self) -> list[Any]:
        """Values checked against the recipe before any trial runs: the bounds, or every choice."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]


@dataclass
class SearchSpace:
    path: str
    params: dict[str, ParamSpec]
    metric: Literal["valid"] = "valid"
    direction: Literal["maximize", "minimize"] = "maximize"
    fixed: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the file as written, for the record in best.yaml

    def fixed_overrides(self) -> list[str]:
        return [override(key, value) for key, value in self.fixed.items()]

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """``key=value`` for a trial's drawn values, each also written to its spec's ``also`` fields."""
        return [
            override(key, value)
            for name, value in params.items()
            for key in [name, *(self.params[name].also if name in self.params else [])]
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "direction": self.direction,
            "params": {name: asdict(spec) for name, spec in self.params.items()},
            "fixed": self.fixed,
        }


def override(key: str, value: Any) -> str:
    """``key=value`` with the value written so that ``yaml.safe_load`` (as ``--set`` reads it) gives it back."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip()
    if text.endswith("\n..."):  # a scalar document ends with an explicit end marker
        text = text[: -len("\n...")].strip()
    return f"{key}={text}"


def _key_lines(text: str) -> dict[str, int]:
    """1-based line of each ``params``/``fixed`` entry, for error messages (best effort)."""
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            lines[str(key.value)] = key.start_mark.line + 1
            if key.value in ("params", "fixed") and isinstance(value, yaml.MappingNode):
                for inner, _ in value.value:
                    lines[f"{key.value}.{inner.value}"] = inner.start_mark.line + 1
    return lines


def _number(where: str, key: str, value: Any, kind: type) -> float:
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: {key} must be an integer, found {value!r}")
        return value
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError, ValueError):
            number = float(value)  # YAML 1.1 reads 1e-5 (no dot) as a string: accept what float() accepts
            if math.isfinite(number):
                return number
    raise ValueError(f"{where}: {key} must be a finite number, found {value!r}")


def _param(name: Any, raw: Any, where: str) -> ParamSpec:
    if not isinstance(name, str) or not name or any(not part for part in name.split(".")):
        raise ValueError(f"{where}: expected a recipe field such as training.learning_rate, found {name!r}")
    where = f"{where}: parameter {name!r}"
    if not isinstance(raw, dict):
        raise ValueError(
            f"{where}: expected a mapping such as {{type: float, low: ..., high: ...}}, found {raw!r}"
        )
    kind = raw.get("type")
    if kind not in _KEYS:
        raise ValueError(f"{where}: unknown type {kind!r}; expected one of {sorted(_KEYS)}")
    unknown = sorted(set(raw) - _KEYS[kind])
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for type {kind}; valid: {sorted(_KEYS[kind])}")
    spec = _param_values(name, raw, kind, where)
    also = raw.get("also", [])
    if not isinstance(also, list) or not all(
        isinstance(item, str) and item and all(item.split(".")) and item != name for item in also
    ):
        raise ValueError(f"{where}: also must be a list of other recipe fields, found {also!r}")
    spec.also = list(also)
    return spec


def _param_values(name: str, raw: dict, kind: str, where: str) -> ParamSpec:
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{where}: choices must be a non-empty list, found {choices!r}")
        for choice in choices:
            if choice is not None and not isinstance(choice, (str, int, float, bool)):
                raise ValueError(
                    f"{where}: choices must be strings, numbers, booleans or null, found {choice!r}"
                )
        if len({repr(c) for c in choices}) < len(choices):
            raise ValueError(f"{where}: choices repeat a value: {choices!r}")
        return ParamSpec(name, "categorical", choices=list(choices))
    number = int if kind == "int" else float
    for key in ("low", "high"):
        if key not in raw:
            raise ValueError(f"{where}: type {kind} needs low and high; {key} is missing")
    low, high = _number(where, "low", raw["low"], number), _number(where, "high", raw["high"], number)
    if low >= high:
        raise ValueError(f"{where}: low must be below high, found low={low!r} >= high={high!r}")
    use_log = raw.get("log", False)
    if not isinstance(use_log, bool):
        raise ValueError(f"{where}: log must be true or false, found {use_log!r}")
    if use_log and low <= 0:
        raise ValueError(f"{where}: a log scale needs low > 0, found low={low!r}")
    step = raw.get("step")
    if step is not None:
        step = _number(where, "step", step, number)
        if step <= 0:
            raise ValueError(f"{where}: step must be positive, found {step!r}")
        if use_log and kind == "float":
            raise ValueError(f"{where}: a float range takes either log or step, not both")
        if use_log and step != 1:
            raise ValueError(f"{where}: an int range on a log scale takes step 1 only, found {step!r}")
    return ParamSpec(name, kind, low=low, high=high, log=use_log, step=step)


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a search space file; every error names the file, line, parameter and what was wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"search space {path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ValueError(
            f"{path}: expected a mapping with metric, direction, params (and fixed), found {raw!r}"
        )
    lines = _key_lines(text)

    def at(key: str) -> str:
        return f"{path}:{lines[key]}" if key in lines else str(path)

    unknown = sorted(set(raw) - {"metric", "direction", "params", "fixed"})
    if unknown:
        raise ValueError(
            f"{at(unknown[0])}: unknown key(s) {unknown}; valid: direction, fixed, metric, params"
        )
    metric = raw.get("metric", "valid")
    if metric != "valid":
        raise ValueError(
            f"{at('metric')}: metric must be 'valid' (metrics.json best_valid, measured on the validation "
            f"queries; test metrics are never used to choose), found {metric!r}"
        )
    direction = raw.get("direction", "maximize")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"{at('direction')}: direction must be maximize or minimize, found {direction!r}")
    params = raw.get("params")
    if not isinstance(params, dict) or not params:
        raise ValueError(
            f"{at('params')}: params must be a non-empty mapping of recipe fields, found {params!r}"
        )
    specs = {name: _param(name, spec, at(f"params.{name}")) for name, spec in params.items()}
    fixed = raw.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise ValueError(
            f"{at('fixed')}: fixed must be a mapping of recipe fields to values, found {fixed!r}"
        )
    tied = [name for spec in specs.values() for name in spec.also]
    clash = sorted((set(fixed) | set(specs)) & set(tied)) + sorted({n for n in tied if tied.count(n) > 1})
    if clash:
        raise ValueError(f"{at('params')}: {clash} named in an also: list and searched, fixed or tied twice")
    both = sorted(set(fixed) & set(specs))
    if both:
        raise ValueError(f"{at('fixed.' + str(both[0]))}: {both} are both searched (params) and fixed")
    return SearchSpace(str(path), specs, metric, direction, {str(k): v for k, v in fixed.items()}, text)


def grid_points(space: SearchSpace, seed: int) -> list[dict[str, Any]]:
    """Every combination of the (all categorical) parameters, in an order shuffled by ``seed``."""
    ranges = [spec.name for spec in space.params.values() if spec.type != "categorical"]
    if ranges:
        raise ValueError(
            f"{space.path}: the grid sampler takes categorical parameters only; {ranges} are "
            f"{space.params[ranges[0]].type} ranges: list their values ({{type: categorical, choices: [...]}}) "
            "or use --sampler tpe/random"
        )
    points: list[dict[str, Any]] = [{}]
    for name, spec in space.params.items():
        points = [{**point, name: choice} for point in points for choice in spec.choices]
    random.Random(seed).shuffle(points)  # a search cut short still spreads over the grid
    return points
