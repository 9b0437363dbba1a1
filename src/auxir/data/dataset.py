"""Open a collection by name: a BEIR directory or ``irds:<id>``.

:class:`Dataset` itself lives in :mod:`auxir.data.collection` (re-exported here). This module sits above the loaders (:mod:`auxir.data.beir`, :mod:`auxir.data.irds`), which import
:class:`Dataset` from :mod:`auxir.data.collection`, never from here, so the package reads one way.
"""

from __future__ import annotations

from pathlib import Path

from auxir.data.collection import Dataset

__all__ = ["Dataset", "load_dataset"]


def load_dataset(spec: str | Path, *, strict: bool = False, cache: str | Path | None = None) -> Dataset:
    """Open a collection: a BEIR directory, or ``"irds:<ir_datasets id>"``.

    ``cache`` overrides where document indexes go (default: :func:`auxir.data.docstore.cache_dir`).
    """
    if isinstance(spec, str) and spec.startswith("irds:"):
        from auxir.data.irds import load_irds

        return load_irds(spec[len("irds:") :], strict=strict)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such dataset directory (expected a BEIR directory or 'irds:<ir_datasets id>')"
        )
    if not path.is_dir():
        raise ValueError(
            f"{path}: expected a BEIR directory (corpus.jsonl, queries.jsonl, qrels/) or 'irds:<id>', found a file"
        )
    from auxir.data.beir import load_beir

    return load_beir(path, strict=strict, cache=cache)
