"""File helpers shared by every writer: nothing already written is lost if a write fails midway."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _umask_mode() -> int:
    return 0o666 & ~_umask()


def _dir_mode() -> int:
    return 0o777 & ~_umask()


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _umask_mode())  # mkstemp makes files owner-only; give them the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path for libraries that write files themselves; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; on success it replaces ``path``.

    The old directory is moved aside before the new one is renamed into place and deleted afterwards; on
    failure the temporary directory is removed and ``path`` is left as it was (checkpoints, saved models
    and indexes are all written this way).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, _dir_mode())  # mkdtemp makes 0700; give the directory the usual mode
    try:
        yield tmp
        _usual_modes(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _usual_modes(directory: Path) -> None:
    """Give everything under ``directory`` the usual umask modes (safetensors writes weights as 0600)."""
    mask = _umask()
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            file = os.path.join(root, name)
            if not os.path.islink(file):
                executable = os.stat(file).st_mode & 0o111  # kept, within the umask
                os.chmod(file, (0o666 | executable) & ~mask)


# What the writers above leave beside ``name`` when killed: ``.name.XXXXXXXX.tmp`` (mkstemp/mkdtemp) and,
# between the two renames of atomic_directory, ``.name.old-XXXXXXXX`` (the previous version).
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?:[a-z0-9_]{8}\.tmp|old-[0-9a-f]{8})")


def leftover_temporaries(folder: str | Path, name: str | None = None) -> list[Path]:
    """Hidden temporaries that killed atomic writes left in ``folder`` (only those for ``name`` if given)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        match = _TEMPORARY.fullmatch(entry.name)
        if match and (name is None or match["name"] == name):
            found.append(entry)
    return found


def remove_leftover_temporaries(folder: str | Path) -> list[Path]:
    """Delete what :func:`leftover_temporaries` finds; call it only when nothing else writes in ``folder``."""
    removed = leftover_temporaries(folder)
    for entry in removed:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
    return removed
