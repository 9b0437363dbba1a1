"""On-disk layout shared by every saved index: a directory written atomically, with a JSON manifest.

The manifest (``auxir_index.json``) says what kind of index the directory holds, so that
``auxir retrieve --index DIR`` can open any of them, and it carries the configuration the index
was built with and a fingerprint of the documents it holds (``corpus``: their number and a SHA-256 of
their sorted ids), so that an index is not silently searched for another collection's queries.
Directories are written like :func:`auxir.io.atomic_write` writes files: into a temporary sibling
first, renamed over the target only when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from auxir.io import atomic_directory as io_atomic_directory
from auxir.io import atomic_write

MANIFEST_NAME = "auxir_index.json"
FORMAT_VERSION = 1


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it replaces ``path``.

    An existing ``path`` is replaced only if it is empty or holds an auxir manifest (so a mistyped
    ``--out .`` never deletes a user's files); the writing itself is :func:`auxir.io.atomic_directory`.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise FileExistsError(f"{path}: expected a directory for the index, found a file")
        if any(path.iterdir()) and not (path / MANIFEST_NAME).is_file():
            raise FileExistsError(
                f"{path}: refusing to replace a non-empty directory that is not an auxir index "
                f"(no {MANIFEST_NAME}); choose another output directory"
            )
    with io_atomic_directory(path) as tmp:
        yield tmp


def corpus_fingerprint(doc_ids: Iterable[str]) -> dict[str, Any]:
    """``{"num_docs": n, "doc_ids_sha256": hex}`` of a set of doc ids: cheap, and independent of their order.

    >>> corpus_fingerprint(["b", "a"]) == corpus_fingerprint(["a", "b"])
    True
    """
    ids = sorted(doc_ids)
    digest = hashlib.sha256()
    for doc_id in ids:
        digest.update(doc_id.encode("utf-8"))
        digest.update(b"\n")
    return {"num_docs": len(ids), "doc_ids_sha256": digest.hexdigest()}


def write_manifest(
    directory: str | Path,
    kind: str,
    config: dict[str, Any],
    doc_ids: Iterable[str] | None = None,
    **extra: Any,
) -> None:
    """Write ``auxir_index.json`` with the index kind, its configuration and any ``extra`` fields.

    The ``corpus`` field fingerprints ``doc_ids`` (without them there is no ``corpus`` field).
    """
    manifest = {"kind": kind, "format_version": FORMAT_VERSION, "config": config, **extra}
    if doc_ids is not None:
        manifest["corpus"] = corpus_fingerprint(doc_ids)
    with atomic_write(Path(directory) / MANIFEST_NAME) as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")


def read_manifest(directory: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read a directory's manifest; check its kind when ``kind`` is given."""
    file = Path(directory) / MANIFEST_NAME
    if not file.is_file():
        raise FileNotFoundError(f"{directory}: not an auxir index (expected {MANIFEST_NAME} inside)")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{file}: expected JSON, found invalid text ({error})") from error
    if not isinstance(manifest, dict) or "kind" not in manifest:
        raise ValueError(f"{file}: expected an object with a 'kind' field, found {type(manifest).__name__}")
    if kind is not None and manifest["kind"] != kind:
        raise ValueError(f"{file}: expected an index of kind {kind!r}, found {manifest['kind']!r}")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{file}: expected format_version <= {FORMAT_VERSION}, found {manifest['format_version']} "
            "(written by a newer auxir)"
        )
    return manifest


def write_ids(file: str | Path, ids: list[str]) -> None:
    """Write a list of string ids as JSON (one array, row order = index order)."""
    with atomic_write(file) as handle:
        json.dump(ids, handle)


def read_ids(file: str | Path, expected_count: int | None = None) -> list[str]:
    """Read ids written by :func:`write_ids`; check their count against the index when given."""
    ids = json.loads(Path(file).read_text(encoding="utf-8"))
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError(f"{file}: expected a JSON array of string ids")
    if expected_count is not None and len(ids) != expected_count:
        raise ValueError(f"{file}: expected {expected_count} ids (rows of the index), found {len(ids)}")
    return ids
