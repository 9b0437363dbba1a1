"""Where a trained model came from: recipe, data, auxir version, git commit and command line.

Every folder the trainer writes a model to holds a ``provenance.json`` built from :func:`collect`, so a
``best/`` copied elsewhere still says what produced it::

    provenance = collect(recipe.to_dict(), recipe.data.dataset, docs=ds.docs)
    write(Path("outputs/run/best"), {**provenance, "weights": {"folder": "best", "step": 80}})

Collecting never fails for want of context: a source tree that is not a git checkout, a package that is
not installed or a dataset that cannot be opened leaves ``None`` in its field.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auxir.io import atomic_write
from auxir.retrieval.index_files import corpus_fingerprint

if TYPE_CHECKING:
    from auxir.data.docstore import DocStore

log = logging.getLogger(__name__)

FILE_NAME = "provenance.json"
_PACKAGES = ("torch", "transformers")


def collect(recipe: dict[str, Any], dataset: str | None, docs: DocStore | None = None) -> dict[str, Any]:
    """What produced a model: versions, git commit, command line, host, time, the recipe and its data.

    ``dataset`` is the recipe's dataset (a BEIR directory or ``irds:<id>``); ``docs`` its documents when the
    caller has them open already (else the dataset is opened here to fingerprint its corpus).
    """
    import auxir

    return {
        "auxir_version": auxir.__version__,
        "git": git_state(Path(auxir.__file__).resolve().parent),
        "command": shlex.join(sys.argv),
        "cwd": os.getcwd(),
        "python": platform.python_version(),
        **{package: _installed_version(package) for package in _PACKAGES},
        "hostname": socket.gethostname(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": recipe,
        "data": data_fingerprint(dataset, docs),
    }


def write(directory: str | Path, provenance: dict[str, Any]) -> Path:
    """Write ``provenance`` to ``directory/provenance.json`` atomically; return the file's path."""
    path = Path(directory) / FILE_NAME
    with atomic_write(path) as handle:
        json.dump(provenance, handle, indent=2, default=str)
        handle.write("\n")
    return path


def read(directory: str | Path) -> dict[str, Any] | None:
    """The ``provenance.json`` of ``directory``; None when there is none or it cannot be read."""
    try:
        value = json.loads((Path(directory) / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def git_state(source: Path) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout that holds ``source``; None if it is not in one.

    A package installed into a virtual environment inside some checkout is not *tracked* by it, so it
    gets None rather than that checkout's commit. ``dirty`` counts tracked files only.
    """

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(source), *args], capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()

    try:
        if not git("ls-files", "--", "__init__.py"):
            return None
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError) as error:  # no git, not a checkout, unsafe owner, ...
        log.debug("no git state for %s: %s", source, error)
        return None
    return {"commit": commit, "dirty": dirty}


def data_fingerprint(dataset: str | None, docs: DocStore | None = None) -> dict[str, Any] | None:
    """The dataset as named, where it is, and the fingerprint of its corpus that index manifests carry.

    The corpus is fingerprinted only where its doc ids are at hand without reading the documents (a BEIR
    corpus, whose id index is cached on first open); ir_datasets checks its own downloads, so its
    dataset id and version name the data.
    """
    if dataset is None:
        return None
    found: dict[str, Any] = {"dataset": dataset, "corpus": None}
    if dataset.startswith("irds:"):
        found["ir_datasets"] = _installed_version("ir_datasets")
        return found
    found["path"] = str(Path(dataset).resolve())
    try:
        if docs is None:
            from auxir.data.dataset import load_dataset

            docs = load_dataset(dataset).docs
        corpus_file = getattr(docs, "path", None)
        if corpus_file is not None:
            found["corpus_file"] = str(corpus_file)
            found["corpus_bytes"] = Path(corpus_file).stat().st_size
        ids = getattr(docs, "ids", None)
        if callable(ids):
            found["corpus"] = corpus_fingerprint(ids())
    except (OSError, ValueError, KeyError, ImportError) as error:  # a record, never a reason to stop a run
        log.warning("provenance: could not fingerprint the corpus of %s: %s", dataset, error)
    return found


def _installed_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
