"""Cross-validation folds over queries, as in SJTF (NAACL 2022, §4.1) following CEDR (MacAvaney et al., 2019).

SJTF evaluates Robust04 "following the setting of CEDR ... five folds cross-validation with three folds for
training, one fold for validation and one fold for testing", reporting the mean over the test folds. Here,
for fold i of k: test = part i, valid = part (i + 1) mod k, train = the other k - 2 parts. CEDR ships its
five Robust04 parts as fixed query lists; :func:`make_folds` draws parts from a seed instead, so to
reproduce CEDR's numbers exactly, build :class:`Fold` objects from its lists (and keep them with
:func:`save_folds`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auxir.data.errors import DataFormatError, describe_json_error
from auxir.io import atomic_write

__all__ = ["Fold", "load_folds", "make_folds", "save_folds"]

FORMAT = "auxir.folds/1"


@dataclass(frozen=True)
class Fold:
    """One rotation of the k folds: disjoint, sorted lists of query ids."""

    train: list[str]
    valid: list[str]
    test: list[str]


def make_folds(
    query_ids: Iterable[str],
    k: int = 5,
    seed: int = 0,
    groups: Mapping[str, Hashable] | None = None,
) -> list[Fold]:
    """Split ``query_ids`` into ``k`` parts and return the ``k`` rotations (test i, valid i+1, train the rest).

    The split is deterministic given ``seed`` and the *set* of ids (input order and duplicates do not
    matter). Units (queries, or groups of queries when ``groups`` maps every query id to a group) are shuffled
    with ``random.Random(seed)``, then dealt largest first to the part with the fewest queries so far, so the
    parts differ in size by at most one query without groups and stay balanced with them. A group never
    crosses parts, so related queries never sit on both sides of a train/test split.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 3:
        raise ValueError(
            f"make_folds: expected k >= 3 folds (test, valid and at least one train fold), found {k!r}"
        )
    ids = sorted({str(q) for q in query_ids})
    units: dict[Hashable, list[str]] = {}
    if groups is None:
        units = {qid: [qid] for qid in ids}
    else:
        missing = [qid for qid in ids if qid not in groups]
        if missing:
            raise ValueError(
                f"make_folds: expected a group for every query id, found {len(missing)} without one (e.g. {missing[:3]})"
            )
        for qid in ids:
            units.setdefault(groups[qid], []).append(qid)
    if len(units) < k:
        what = "groups" if groups is not None else "query ids"
        raise ValueError(
            f"make_folds: expected at least k={k} {what} so that no fold is empty, found {len(units)}"
        )

    # Shuffle a canonical order (groups sorted by their first query id), then a stable sort by size keeps the
    # shuffled order among equal sizes: large groups are placed first, while the parts are still empty.
    order = sorted(units.values(), key=lambda members: members[0])
    random.Random(seed).shuffle(order)
    order.sort(key=len, reverse=True)
    parts: list[list[str]] = [[] for _ in range(k)]
    for members in order:
        smallest = min(range(k), key=lambda i: (len(parts[i]), i))
        parts[smallest].extend(members)

    folds = []
    for i in range(k):
        valid_index = (i + 1) % k
        train = [qid for j, part in enumerate(parts) if j not in (i, valid_index) for qid in part]
        folds.append(Fold(train=sorted(train), valid=sorted(parts[valid_index]), test=sorted(parts[i])))
    return folds


def save_folds(path: str | Path, folds: list[Fold], metadata: Mapping[str, Any] | None = None) -> None:
    """Write folds as JSON atomically: ``{"format", "k", "metadata", "folds": [{"train", "valid", "test"}]}``."""
    document = {
        "format": FORMAT,
        "k": len(folds),
        "metadata": dict(metadata or {}),
        "folds": [{"train": f.train, "valid": f.valid, "test": f.test} for f in folds],
    }
    with atomic_write(path) as handle:
        json.dump(document, handle, indent=1)
        handle.write("\n")


def load_folds(path: str | Path) -> list[Fold]:
    """Read folds written by :func:`save_folds`, checking their shape (``DataFormatError`` otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        # utf-8-sig: a byte-order mark written by an editor is not part of the document.
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise DataFormatError(path, error.lineno, "JSON folds", describe_json_error(error)) from None
    if (
        not isinstance(document, dict)
        or document.get("format") != FORMAT
        or not isinstance(document.get("folds"), list)
    ):
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise DataFormatError(path, None, f"an object with format {FORMAT!r} and a 'folds' list", repr(found))
    folds = []
    for index, entry in enumerate(document["folds"]):
        if not isinstance(entry, dict) or any(
            not isinstance(entry.get(key), list) or not all(isinstance(q, str) for q in entry[key])
            for key in ("train", "valid", "test")
        ):
            raise DataFormatError(
                path, None, f"fold {index} with string lists 'train', 'valid', 'test'", repr(entry)[:200]
            )
        folds.append(Fold(train=list(entry["train"]), valid=list(entry["valid"]), test=list(entry["test"])))
    return folds
