"""Reporters: where training and validation records go besides ``train_log.jsonl`` (``training.report_to``)."""

from __future__ import annotations

import importlib
from pathlib import Path


def resolve_report_to(report_to: str) -> str:
    """The backend ``training.report_to`` names: ``auto`` is TensorBoard when it is installed, else none.

    A backend named outright must be installed: the error says so before any training starts.
    """
    if report_to == "auto":
        return "tensorboard" if _importable("tensorboard") else "none"
    if report_to not in REPORTERS and report_to != "none":
        raise ValueError(
            f"training.report_to: expected one of auto, none, {', '.join(REPORTERS)}; found {report_to!r}"
        )
    if report_to != "none" and not _importable(report_to):
        raise ValueError(
            f"training.report_to={report_to}: the {report_to} package is not installed; "
            f"pip install {report_to} (or set training.report_to=none)"
        )
    return report_to


def build_reporter(report_to: str, out: Path, step: int, config: dict):
    """The reporter of a resolved ``report_to`` for a run in ``out`` that starts after ``step``; None for none."""
    if report_to == "none":
        return None
    return REPORTERS[report_to](out, step, config)


class TensorBoardReporter:
    """Each record's numbers as scalars in ``<output_dir>/tensorboard`` (``tensorboard --logdir``)."""

    def __init__(self, out: Path, step: int, config: dict):
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run drops the events the killed run wrote after its checkpoint, as in train_log.jsonl.
        self.writer = SummaryWriter(str(out / "tensorboard"), purge_step=step + 1 if step else None)

    def log(self, record: dict, step: int) -> None:
        for key, value in _scalars(record).items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


class WandbReporter:
    """Each record's numbers in a Weights & Biases run, the recipe as its config, its files in ``<output_dir>/wandb``.

    Project and entity come from wandb's own settings (``WANDB_PROJECT``, ``WANDB_ENTITY``, ``WANDB_MODE``).
    """

    def __init__(self, out: Path, step: int, config: dict):
        import wandb

        self.run = wandb.init(dir=str(out), config=config, name=out.name)

    def log(self, record: dict, step: int) -> None:
        self.run.log(_scalars(record), step=step)

    def close(self) -> None:
        self.run.finish()


REPORTERS = {"tensorboard": TensorBoardReporter, "wandb": WandbReporter}


def _scalars(record: dict) -> dict[str, float]:
    return {k: v for k, v in record.items() if k not in ("step", "epoch") and isinstance(v, int | float)}


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
