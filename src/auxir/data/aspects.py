"""Aspect labels of queries and documents (MADRM, Kong et al., KDD 2022, §5 and §8.1), their batches and scores.

An aspect (``category``, ``brand``, ``color``; ``age_group``, ``study_design``) has a vocabulary of values, and
a text has zero, one or several values of it. Labels come from each text's ``metadata`` in two ways:

* ``fields``: an aspect per metadata field, its values the field's value(s), as in ESCI-style product data::

      labels: {fields: {category: metadata.category, brand: metadata.brand, color: metadata.color}}

* ``mapping``: a versioned file that maps the terms of one metadata field to values of several aspects
  (``pubmedqa_mesh``: MeSH headings → population, sex, age group, study design; see ``aspects/``)::

      labels: {mapping: pubmedqa_mesh}

A text without any annotation of an aspect does not have that aspect (eq. 6's ``y_a = 0``); a value outside
the vocabulary still counts as present, but has no class to predict.

>>> labeler = AspectLabeler(AspectLabelsConfig(fields={"color": "metadata.color"}))
>>> labeler.labels({"color": ["white", "black"]})
{'color': ('white', 'black')}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import yaml

from auxir.data.collate import GroupBatch, GroupCollator

MAPPING_DIR = Path(__file__).resolve().parent / "aspects"  # shipped term mappings, by name
_PREFIX = "metadata."


def config_from_value(cls, value: Any, where: str):
    """A config dataclass ``cls`` given as itself or as a dict of its fields (as read back from JSON); a clear
    error naming ``where`` for anything else or for unknown fields."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__} fields, found {value!r}")
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - valid)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; valid: {sorted(valid)}")
    return cls(**value)


@dataclass
class AspectLabelsConfig:
    """Where the aspect labels of a text come from (``architecture.labels`` of the ``madrm`` family).

    ``fields`` maps an aspect to a metadata field of queries and documents (``metadata.brand``; nested keys
    as ``metadata.a.b``) holding a string or a list of strings. ``mapping`` names a term mapping shipped in
    ``auxir/data/aspects/`` (``pubmedqa_mesh``) or a path to one. Field values found in fewer than
    ``min_count`` texts are left out of the vocabulary (a mapping's vocabulary is the file's).
    """

    fields: dict[str, str] = field(default_factory=dict)
    mapping: str | None = None
    min_count: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.fields, dict):
            raise ValueError(
                f"AspectLabelsConfig.fields: expected a mapping of aspect to 'metadata.<key>', "
                f"found {self.fields!r}"
            )
        for name, path in self.fields.items():
            if not isinstance(name, str) or not name or not isinstance(path, str):
                raise ValueError(
                    f"AspectLabelsConfig.fields: expected aspect names mapped to 'metadata.<key>', "
                    f"found {name!r}: {path!r}"
                )
            metadata_keys(path, f"AspectLabelsConfig.fields.{name}")
        if self.mapping is not None and (not isinstance(self.mapping, str) or not self.mapping.strip()):
            raise ValueError(
                f"AspectLabelsConfig.mapping: expected a mapping name such as 'pubmedqa_mesh' or a YAML "
                f"path, found {self.mapping!r}"
            )
        if isinstance(self.min_count, bool) or not isinstance(self.min_count, int) or self.min_count < 1:
            raise ValueError(
                f"AspectLabelsConfig.min_count: expected an integer >= 1, found {self.min_count!r}"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.fields) or self.mapping is not None

    @classmethod
    def from_value(cls, value: Any, where: str = "AspectLabelsConfig") -> AspectLabelsConfig:
        """The config itself, or one built from its dict (as read back from JSON)."""
        return config_from_value(cls, value, where)


def metadata_keys(path: str, where: str) -> tuple[str, ...]:
    """``"metadata.a.b"`` → ``("a", "b")``: the keys to follow into a record's ``metadata``."""
    keys = tuple(path[len(_PREFIX) :].split(".")) if path.startswith(_PREFIX) else ()
    if not keys or not all(keys):
        raise ValueError(f"{where}: expected a metadata field such as 'metadata.category', found {path!r}")
    return keys


def metadata_terms(metadata: Mapping[str, Any], keys: Sequence[str], where: str) -> tuple[str, ...]:
    """The string(s) at ``keys`` in ``metadata``, stripped, empty ones dropped; none when the field is absent."""
    value: Any = metadata
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return ()
        value = value[key]
    items = value if isinstance(value, list | tuple) else [value]
    terms = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValueError(
                f"{where}: expected metadata.{'.'.join(keys)} to be a string or a list of strings, "
                f"found {type(item).__name__} {item!r}"
            )
        text = str(item).strip()
        if text:
            terms.append(text)
    return tuple(dict.fromkeys(terms))


@dataclass(frozen=True)
class TermMapping:
    """Terms of one metadata field mapped to values of several aspects (a versioned YAML file)."""

    name: str
    version: str
    field: str  # "metadata.mesh"
    aspects: dict[str, dict[str, tuple[str, ...]]]  # aspect → value → the terms that give it
    source: str

    def labels(self, terms: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Each aspect's values given by ``terms``, in the file's order of values (exact, case-sensitive)."""
        have = set(terms)
        return {
            aspect: tuple(value for value, given_by in values.items() if have.intersection(given_by))
            for aspect, values in self.aspects.items()
        }


def load_term_mapping(name_or_path: str) -> TermMapping:
    """A shipped mapping (``"pubmedqa_mesh"``) or a YAML file: ``version``, ``field``, ``aspects``."""
    path = Path(name_or_path)
    if not path.is_file():
        shipped = MAPPING_DIR / f"{name_or_path}.yaml"
        if not shipped.is_file():
            known = sorted(p.stem for p in MAPPING_DIR.glob("*.yaml"))
            raise FileNotFoundError(
                f"aspect mapping {name_or_path!r}: expected a YAML file or one of the shipped mappings "
                f"{known}, found neither"
            )
        path = shipped
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: expected valid YAML, found {' '.join(str(error).split())}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping with version, field and aspects, found {values!r}")
    missing = [key for key in ("version", "field", "aspects") if key not in values]
    if missing:
        raise ValueError(f"{path}: expected the keys version, field and aspects, found no {missing}")
    metadata_keys(str(values["field"]), f"{path}: field")
    aspects = values["aspects"]
    if not isinstance(aspects, dict) or not aspects:
        raise ValueError(f"{path}: expected 'aspects' to map aspect names to values, found {aspects!r}")
    parsed: dict[str, dict[str, tuple[str, ...]]] = {}
    for aspect, aspect_values in aspects.items():
        if not isinstance(aspect_values, dict) or not aspect_values:
            raise ValueError(
                f"{path}: aspect {aspect!r}: expected values mapped to term lists, found {aspect_values!r}"
            )
        parsed[str(aspect)] = {}
        for value, terms in aspect_values.items():
            if not isinstance(terms, list) or not terms or not all(isinstance(t, str) and t for t in terms):
                raise ValueError(
                    f"{path}: aspect {aspect!r}, value {value!r}: expected a non-empty list of terms, found {terms!r}"
                )
            parsed[str(aspect)][str(value)] = tuple(terms)
    return TermMapping(path.stem, str(values["version"]), values["field"], parsed, str(path))


class AspectLabeler:
    """The labels of each aspect of a text, from its ``metadata`` (``fields`` first, then the mapping's aspects)."""

    def __init__(self, config: AspectLabelsConfig):
        self.config = config
        self.mapping = load_term_mapping(config.mapping) if config.mapping is not None else None
        self._fields = {
            name: metadata_keys(path, f"labels.fields.{name}") for name, path in config.fields.items()
        }
        mapped = list(self.mapping.aspects) if self.mapping else []
        clash = sorted(set(self._fields) & set(mapped))
        if clash:
            raise ValueError(
                f"labels: aspect(s) {clash} named both in fields and in the mapping {self.mapping.source}"
            )
        self.names: tuple[str, ...] = (*self._fields, *mapped)

    def labels(self, metadata: Mapping[str, Any], where: str = "text") -> dict[str, tuple[str, ...]]:
        """Aspect → the text's values of it (empty when it has none), in the order of ``names``."""
        found = {name: metadata_terms(metadata, keys, where) for name, keys in self._fields.items()}
        if self.mapping is not None:
            terms = metadata_terms(metadata, metadata_keys(self.mapping.field, self.mapping.source), where)
            found.update(self.mapping.labels(terms))
        return found


class TextAspects(NamedTuple):
    """One text's labels as class ids: per aspect (vocabulary order) the ids of its in-vocabulary values,
    and whether it has any annotation of the aspect at all (eq. 6's ``y_a``)."""

    values: tuple[tuple[int, ...], ...]
    present: tuple[bool, ...]


@dataclass
class AspectVocabulary:
    """Each aspect's values; a value's position is its class id (the row of ``U_a`` in §5)."""

    values: dict[str, tuple[str, ...]]
    source: dict[str, Any] = field(default_factory=dict)  # where it came from: fields, mapping and version

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.values)

    def size(self, aspect: str) -> int:
        return len(self.values[aspect])

    @classmethod
    def build(
        cls, labeler: AspectLabeler, texts: Iterable[Mapping[str, tuple[str, ...]]]
    ) -> AspectVocabulary:
        """Field aspects: the values of ``texts`` seen in at least ``min_count`` of them, most frequent first
        (ties by value); mapping aspects: the mapping's values in file order."""
        counts: dict[str, Counter] = {name: Counter() for name in labeler.config.fields}
        for labels in texts:
            for name in counts:
                counts[name].update(labels[name])
        values: dict[str, tuple[str, ...]] = {}
        for name in labeler.names:
            if name in counts:
                kept = sorted(
                    (v for v, n in counts[name].items() if n >= labeler.config.min_count),
                    key=lambda v: (-counts[name][v], v),
                )
                if not kept:
                    raise ValueError(
                        f"aspect {name!r}: no value of {labeler.config.fields[name]} appears in "
                        f"{labeler.config.min_count} or more texts; check the field name (labels.fields)"
                    )
                values[name] = tuple(kept)
            else:
                values[name] = tuple(labeler.mapping.aspects[name])
        source: dict[str, Any] = {
            "fields": dict(labeler.config.fields),
            "min_count": labeler.config.min_count,
        }
        if labeler.mapping is not None:
            source["mapping"] = {"name": labeler.mapping.name, "version": labeler.mapping.version}
        return cls(values, source)

    @cached_property
    def _class_ids(self) -> dict[str, dict[str, int]]:
        return {name: {v: i for i, v in enumerate(values)} for name, values in self.values.items()}

    def encode(self, labels: Mapping[str, tuple[str, ...]]) -> TextAspects:
        """A text's labels (aspect → values) as class ids; values outside the vocabulary only count as present."""
        index = self._class_ids
        return TextAspects(
            tuple(tuple(index[n][v] for v in labels.get(n, ()) if v in index[n]) for n in self.names),
            tuple(bool(labels.get(n)) for n in self.names),
        )

    def multi_hot(self, texts: Sequence[TextAspects]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Per aspect a (n, |V_a|) bool tensor of each text's gold values, and the (n, A) presence labels."""
        gold = {}
        for a, name in enumerate(self.names):
            hot = torch.zeros(len(texts), self.size(name), dtype=torch.bool)
            for row, text in enumerate(texts):
                hot[row, list(text.values[a])] = True
            gold[name] = hot
        present = torch.tensor([list(t.present) for t in texts], dtype=torch.bool).view(
            len(texts), len(self.names)
        )
        return gold, present

    def to_dict(self) -> dict[str, Any]:
        return {"values": {name: list(values) for name, values in self.values.items()}, "source": self.source}

    @classmethod
    def from_dict(cls, values: Any, where: str = "aspect vocabulary") -> AspectVocabulary:
        if not isinstance(values, dict) or not isinstance(values.get("values"), dict):
            raise ValueError(f"{where}: expected {{'values': {{aspect: [value, ...]}}, 'source': ...}}")
        return cls({n: tuple(v) for n, v in values["values"].items()}, dict(values.get("source") or {}))


# ---- batches ----------------------------------------------------------------------------------------
@dataclass
class AspectGroupBatch(GroupBatch):
    """A ``GroupBatch`` with the aspect labels of its texts (multi-hot, per aspect of the vocabulary)."""

    query_gold: dict[str, torch.Tensor]  # aspect → (B, |V_a|) bool
    query_present: torch.Tensor  # (B, A) bool
    doc_gold: dict[str, torch.Tensor]  # aspect → (B, G, |V_a|) bool
    doc_present: torch.Tensor  # (B, G, A) bool
    # The texts as the model encoded them in this step, shared by the aspect objectives and in_batch_softmax
    # (one encoding a step for all of them).
    encodings: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to(self, device: torch.device | str) -> AspectGroupBatch:
        moved: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                value = value.to(device, non_blocking=True)
            elif f.name in ("query_gold", "doc_gold"):
                value = {k: v.to(device, non_blocking=True) for k, v in value.items()}
            elif f.name == "encodings":
                value = {}
            moved[f.name] = value
        return AspectGroupBatch(**moved)


class AspectCollator(GroupCollator):
    """``GroupCollator``'s batch with the aspect labels of its queries and documents."""

    def __init__(
        self,
        queries,
        docs,
        pad_id: int,
        vocabulary: AspectVocabulary,
        query_aspects: Mapping[str, TextAspects],
        doc_aspects: Mapping[str, TextAspects],
    ):
        super().__init__(queries, docs, pad_id)
        self.vocabulary, self.query_aspects, self.doc_aspects = vocabulary, query_aspects, doc_aspects

    def __call__(self, items: list[tuple[str, list[str], list[int]]]) -> AspectGroupBatch:
        base = super().__call__(items)
        b, g = base.doc_len.shape
        query_gold, query_present = self.vocabulary.multi_hot([self.query_aspects[q] for q in base.query_ids])
        doc_gold, doc_present = self.vocabulary.multi_hot(
            [self.doc_aspects[d] for ids in base.doc_ids for d in ids]
        )
        return AspectGroupBatch(
            **{f.name: getattr(base, f.name) for f in fields(base)},
            query_gold=query_gold,
            query_present=query_present,
            doc_gold={name: hot.view(b, g, -1) for name, hot in doc_gold.items()},
            doc_present=doc_present.view(b, g, -1),
        )


# ---- how well the aspects are predicted (the paper's Table 5) -----------------------------------------
def aspect_accuracy_at_1(probabilities: np.ndarray, gold: np.ndarray) -> float | None:
    """Aspect Accuracy@1 (§8.3): over the texts with at least one gold value, the share whose top predicted
    value is one of them. ``probabilities`` and ``gold`` are (n, |V_a|); None when no text has a label."""
    labelled = gold.any(axis=1)
    if not labelled.any():
        return None
    top = probabilities[labelled].argmax(axis=1)
    return float(gold[labelled][np.arange(len(top)), top].mean())


def aspect_auc(probabilities: np.ndarray, gold: np.ndarray) -> float | None:
    """The AUC of each text's predicted distribution, its gold values the positives and the rest of the
    vocabulary the negatives (ties count one half), averaged over the texts that have both; else None."""
    from scipy.stats import rankdata

    positives = gold.sum(axis=1)
    negatives = gold.shape[1] - positives
    rows = (positives > 0) & (negatives > 0)
    if not rows.any():
        return None
    ranks = rankdata(probabilities[rows], axis=1)  # average ranks: ties share
    n_pos, n_neg = positives[rows], negatives[rows]
    u = (ranks * gold[rows]).sum(axis=1) - n_pos * (n_pos + 1) / 2  # Mann–Whitney U of the positives
    return float((u / (n_pos * n_neg)).mean())
