"""Training checkpoints: weights (safetensors), optimizer, scheduler, RNG and data position.

A checkpoint is written into a temporary folder and renamed into place, so an interrupted save leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from auxir.io import atomic_directory


@dataclass
class TrainerState:
    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of ``epoch`` already consumed (this process's shard)
    best_metric: float | None = None
    best_step: int | None = None


def rng_state() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
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


def load_checkpoint(directory: Path, module: torch.nn.Module, optimizer, scheduler) -> TrainerState:
    for name in ("state.safetensors", "optimizer.pt", "trainer_state.json"):
        if not (directory / name).exists():
            raise FileNotFoundError(f"{directory}: not a complete checkpoint (missing {name})")
    load_model(module, str(directory / "state.safetensors"))
    # The optimizer file holds our own pickled state (RNG tuples): written by this trainer, not untrusted input.
    blob = torch.load(directory / "optimizer.pt", weights_only=False, map_location="cpu")
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    set_rng_state(blob["rng"])
    return TrainerState(**json.loads((directory / "trainer_state.json").read_text()))
