"""Training checkpoints: weights (safetensors), optimizer, scheduler, RNG and data position; and
:func:`link_model`, which gives a second model folder the files of a first without copying them.

A checkpoint is written into a temporary folder and renamed into place, so an interrupted save leaves
the previous checkpoint intact; a save killed between the two renames of ``atomic_directory`` leaves it
only in a hidden sibling folder, which :func:`recover_checkpoint` puts back.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import shutil
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from auxir.io import atomic_directory, leftover_temporaries

log = logging.getLogger(__name__)

CHECKPOINT_FILES = ("state.safetensors", "optimizer.pt", "trainer_state.json")


@dataclass
class TrainerState:
    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of ``epoch`` already consumed (this process's shard)
    best_metric: float | None = None
    best_step: int | None = None
    # Loss sums of the steps since the last log record, so that a resumed run's next record averages
    # the same steps as an uninterrupted run's.
    log_sums: dict[str, float] = field(default_factory=dict)
    log_steps: int = 0


def rng_state() -> dict:
    """Every generator's state in types ``torch.load(weights_only=True)`` accepts (tensors, ints, lists)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
        "numpy": [kind, torch.from_numpy(key.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal.tolist()), gauss))
    kind, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    directory: Path, module: torch.nn.Module, optimizer, scheduler, state: TrainerState
) -> None:
    with atomic_directory(directory) as tmp:
        save_model(module, str(tmp / "state.safetensors"))
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
            tmp / "optimizer.pt",
        )
        (tmp / "trainer_state.json").write_text(json.dumps(asdict(state), indent=2))


def link_model(source: Path, directory: Path, exclude: Collection[str] = ()) -> bool:
    """Make ``directory`` (atomically) hold the files of the saved model in ``source`` as hard links.

    The model's weights then exist once on disk. Where the file system refuses a link (another device,
    no hard links), that file is copied. Every writer of model folders replaces the whole folder
    (``atomic_directory``), never a file in place, so rewriting one folder later leaves the other intact.
    Files named in ``exclude`` are left out. Returns whether every file is a link.
    """
    copied: list[str] = []

    def link_or_copy(src: str, dst: str) -> str:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
            copied.append(src)
        return dst

    with atomic_directory(directory) as tmp:
        shutil.copytree(
            source,
            tmp,
            copy_function=link_or_copy,
            ignore=shutil.ignore_patterns(*exclude),
            dirs_exist_ok=True,
        )
    if copied:
        log.info("%s: copied %d files of %s (no hard links there)", directory, len(copied), source)
    return not copied


def checkpoint_step(directory: Path) -> int | None:
    """The step of the complete checkpoint in ``directory``; None if it is not one."""
    if not all((directory / name).is_file() for name in CHECKPOINT_FILES):
        return None
    try:
        return int(json.loads((directory / "trainer_state.json").read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):  # trainer_state.json cut short by a kill
        return None


def recover_checkpoint(directory: Path) -> Path | None:
    """If ``directory`` is missing, rename the newest complete checkpoint that an interrupted save left
    in a hidden sibling (``.name.XXXXXXXX.tmp`` or ``.name.old-XXXXXXXX``) to it; return the sibling's path."""
    if directory.exists():
        return None
    candidates = []
    for sibling in leftover_temporaries(directory.parent, directory.name):
        step = checkpoint_step(sibling) if sibling.is_dir() else None
        if step is not None:
            candidates.append((step, sibling))
    if not candidates:
        return None
    step, newest = max(candidates)
    os.replace(newest, directory)
    log.warning("recovered the checkpoint of step %d that an interrupted save left in %s", step, newest)
    return newest


def load_checkpoint(directory: Path, module: torch.nn.Module, optimizer, scheduler) -> TrainerState:
    for name in CHECKPOINT_FILES:
        if not (directory / name).exists():
            raise FileNotFoundError(f"{directory}: not a complete checkpoint (missing {name})")
    load_model(module, str(directory / "state.safetensors"))
    # weights_only: tensors and plain containers only, so a crafted file cannot run code on --resume.
    try:
        blob = torch.load(directory / "optimizer.pt", weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:
        reason = " ".join(str(error).split())[:300]
        raise ValueError(
            f"{directory / 'optimizer.pt'}: expected optimizer, scheduler and RNG state (tensors and plain "
            f"values), found something else, refused: {reason}"
        ) from None
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    set_rng_state(blob["rng"])
    return TrainerState(**json.loads((directory / "trainer_state.json").read_text()))
