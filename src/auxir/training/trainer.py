"""One generic training loop: sums weighted named loss components, logs each, checkpoints, resumes.

The loop knows nothing about rankers. It takes a model, a dict of objectives with their schedules, a
weighting strategy and a batch source; every method's recipe (SJTF, GDMTL, QBD, MADRM, CODER) is a
different set of objectives over the same loop.

Every record goes to ``train_log.jsonl`` and to the reporter ``training.report_to`` names (TensorBoard or
Weights & Biases). Every folder a model is saved to (``best/``, ``model/``) holds a ``provenance.json``:
what produced the run (the ``provenance`` given, see :mod:`auxir.provenance`) and which step's weights
the folder holds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from transformers import get_linear_schedule_with_warmup

from auxir.io import atomic_write, remove_leftover_temporaries
from auxir.objectives.base import Objective
from auxir.provenance import FILE_NAME as PROVENANCE_FILE
from auxir.provenance import read as read_provenance
from auxir.provenance import write as write_provenance
from auxir.training.checkpoint import (
    TrainerState,
    link_model,
    load_checkpoint,
    recover_checkpoint,
    save_checkpoint,
)
from auxir.training.config import TrainingConfig
from auxir.training.distributed import DistEnv, barrier, init_distributed, pick_device
from auxir.training.multitask import MultiTask
from auxir.training.reporting import build_reporter, resolve_report_to
from auxir.training.weighting import ComponentSchedule, WeightingConfig, build_weighting

log = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """A loss component became NaN or infinite; the last good checkpoint is left untouched."""


class BatchSource(Protocol):
    def num_batches(self, epoch: int) -> int: ...

    def batch(self, epoch: int, index: int): ...  # a batch object with ``.to(device)``

    def units(self, batch) -> int: ...  # scored pairs in a batch, for throughput


@dataclass
class TrainResult:
    steps: int
    seconds: float  # in training steps (validation and checkpoint writing excluded)
    pairs_per_second: float
    best_metric: float | None
    best_step: int | None
    model_dir: Path
    best_dir: Path | None
    history: list[dict] = field(default_factory=list)


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        objectives: dict[str, Objective],
        schedules: dict[str, ComponentSchedule],
        data: BatchSource,
        config: TrainingConfig,
        weighting: WeightingConfig | None = None,
        validate: Callable[[nn.Module], dict[str, float]] | None = None,
        metric: str | None = None,
        provenance: dict | None = None,
    ):
        self.config = config
        self.report_to = resolve_report_to(config.report_to)  # a missing package fails here, not mid-run
        self.provenance = provenance or {}
        self.env: DistEnv = init_distributed()
        self.device = pick_device(config.device, self.env)
        self.model = model.to(self.device)
        self.weighting_config = weighting or WeightingConfig()
        reference = next((n for n, o in objectives.items() if o.kind == "ranking"), None)
        shared = self.model.shared_parameters() if hasattr(self.model, "shared_parameters") else None
        self.multitask = MultiTask(
            self.model,
            objectives,
            schedules,
            build_weighting(self.weighting_config, schedules, reference, shared),
        ).to(self.device)
        # Parameters that start random: their own learning rate, and the only ones a head warm-up trains.
        new_names = self.model.new_parameter_names() if hasattr(self.model, "new_parameter_names") else set()
        self._new_parameters = {id(p) for n, p in self.model.named_parameters() if n in new_names}
        self.data = data
        self.validate = validate
        self.metric = metric
        self.out = Path(config.output_dir)
        self.bf16 = config.uses_bf16(self.device.type)

    # ---- set-up -----------------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        new_lr = cfg.new_parameters_learning_rate or cfg.learning_rate
        buckets: dict[tuple[bool, bool], list] = {}
        for name, p in self.multitask.model.named_parameters():
            if p.requires_grad:
                decays = not (p.ndim < 2 or "LayerNorm" in name or "norm" in name)
                buckets.setdefault((decays, id(p) in self._new_parameters), []).append(p)
        groups = [
            {
                "params": params,
                "weight_decay": cfg.weight_decay if decays else 0.0,
                "lr": new_lr if new else cfg.learning_rate,
            }
            for (decays, new), params in sorted(buckets.items())
        ]
        extra = list(self.multitask.weighting.parameters())
        if extra:
            groups.append({"params": extra, "weight_decay": 0.0, "lr": self.weighting_config.learning_rate})
        cls = torch.optim.AdamW if self.config.optimizer == "adamw" else torch.optim.Adam
        fused = {"fused": True} if self.device.type == "cuda" else {}
        return cls(groups, lr=self.config.learning_rate, **fused)

    def total_steps(self) -> int:
        if self.config.max_steps is not None:
            return self.config.max_steps
        per_epoch = self.data.num_batches(0) // self.config.grad_accumulation
        if per_epoch == 0:
            raise ValueError("no training batch: the training data is empty or smaller than one step")
        return max(1, math.ceil(self.config.epochs * per_epoch))

    # ---- the loop ---------------------------------------------------------------------------------
    def train(self) -> TrainResult:
        cfg, env = self.config, self.env
        torch.manual_seed(cfg.seed)
        total = self.total_steps()
        optimizer = self._optimizer()
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
        state = TrainerState()
        last = self.out / "checkpoint-last"
        if env.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if cfg.resume:
                recover_checkpoint(last)
            # Nothing else writes here now: what killed atomic writes left behind can go.
            for leftover in remove_leftover_temporaries(self.out):
                log.info("removed %s, left by an interrupted write", leftover)
        barrier(env)
        if cfg.resume:
            if not last.exists():
                # Never start from scratch here: that would overwrite the log of the run meant to go on.
                raise FileNotFoundError(
                    f"{self.out}: nothing to resume: no checkpoint-last (nor a complete checkpoint left by "
                    "an interrupted save); check the output directory, or run without resume to start anew"
                )
            state = load_checkpoint(last, self.multitask, optimizer, scheduler)
            if env.is_main:
                _truncate_log(self.out / "train_log.jsonl", state.step)
            log.info(
                "resumed from %s at step %d (epoch %d, batch %d)",
                last,
                state.step,
                state.epoch,
                state.batch_in_epoch,
            )
        module: nn.Module = self.multitask
        if env.enabled:
            # Schedules and auxiliary heads leave some parameters unused at some steps.
            module = DistributedDataParallel(
                self.multitask,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        # A resumed run continues its log; a new run in the same folder starts a new one.
        log_mode = "a" if state.step > 0 else "w"
        self._log_file = (self.out / "train_log.jsonl").open(log_mode) if env.is_main else None
        self._reporter = None
        if env.is_main:
            config = self.provenance.get("recipe") or asdict(cfg)
            self._reporter = build_reporter(self.report_to, self.out, state.step, config)
        progress = _progress(total, state.step, cfg.progress and env.is_main)
        history: list[dict] = []
        units, started = 0, time.perf_counter()
        self._evaluated_at, self._saved_at, self._side_seconds = -1, -1, 0.0
        self._valid: tuple[int, dict[str, float]] | None = None  # the last validation's step and scores
        self._since_best, self._stop = 0, False
        module.train()
        try:
            while state.step < total:
                n = self.data.num_batches(state.epoch)
                usable = n - n % cfg.grad_accumulation
                if usable == 0:
                    raise ValueError("no training batch: the training data is smaller than one step")
                while state.batch_in_epoch < usable and state.step < total and not self._stop:
                    every = cfg.grad_stats_every
                    self.multitask.probe = bool(every) and (state.step + 1) % every == 0
                    components = self._step(module, optimizer, scheduler, state)
                    units += components.pop("_units")
                    for k, v in components.items():
                        state.log_sums[k] = state.log_sums.get(k, 0.0) + v
                    state.log_steps += 1
                    state.step += 1
                    progress.update(1)
                    if state.step % cfg.log_every == 0 or state.step == total:
                        history.append(self._log(state, scheduler, progress))
                    if cfg.eval_every and state.step % cfg.eval_every == 0:
                        self._evaluate(state, history)
                    if cfg.save_every and state.step % cfg.save_every == 0:
                        self._save(last, optimizer, scheduler, state)
                if self._stop:
                    break
                if state.batch_in_epoch >= usable:
                    state.epoch += 1
                    state.batch_in_epoch = 0
                    if cfg.eval_every is None:
                        self._evaluate(state, history)
                    if cfg.save_every is None:
                        self._save(last, optimizer, scheduler, state)
                    if self._stop:
                        break
            if self._stop:
                log.info(
                    "early stopping at step %d: no better validation for %d evaluations",
                    state.step,
                    self._since_best,
                )
            if self._evaluated_at != state.step:
                self._evaluate(state, history)
            if self._saved_at != state.step:
                self._save(last, optimizer, scheduler, state)
        finally:
            progress.close()
            if self._log_file:
                self._log_file.close()
            if self._reporter:
                self._reporter.close()
        seconds = time.perf_counter() - started - self._side_seconds  # training steps only
        model_dir = self.out / "model"
        if env.is_main:
            self._save_final_model(model_dir, state)
        barrier(env)  # the other processes may read model/ and best/ next
        # Only this run's validation (or the resumed run's) chose a best model; ignore a stale folder.
        chosen = state.best_step is not None and cfg.keep_best
        best = self.out / "best" if chosen and (self.out / "best").exists() else None
        return TrainResult(
            steps=state.step,
            seconds=seconds,
            pairs_per_second=units * env.world_size / seconds if seconds > 0 else 0.0,
            best_metric=state.best_metric,
            best_step=state.best_step,
            model_dir=model_dir,
            best_dir=best,
            history=history,
        )

    def _step(self, module, optimizer, scheduler, state: TrainerState) -> dict[str, float]:
        cfg = self.config
        sums: dict[str, torch.Tensor] = {}
        units = 0
        for micro in range(cfg.grad_accumulation):
            batch = self.data.batch(state.epoch, state.batch_in_epoch).to(self.device)
            units += self.data.units(batch)
            sync = micro == cfg.grad_accumulation - 1 or not isinstance(module, DistributedDataParallel)
            with (
                contextlib.nullcontext() if sync else module.no_sync(),
                torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16),
            ):
                loss, components = module(batch, state.step)
            if not torch.isfinite(loss):
                bad = [k for k, v in components.items() if not torch.isfinite(v)] or ["(weighted total)"]
                raise TrainingDivergedError(
                    f"step {state.step + 1}: loss component {', '.join(bad)} is "
                    f"{[float(components[k].detach()) if k in components else float(loss.detach()) for k in bad]}; "
                    f"the last good checkpoint is {self.out / 'checkpoint-last'}"
                )
            (loss / cfg.grad_accumulation).backward()
            for k, v in components.items():
                sums[k] = sums.get(k, 0.0) + v.detach() / cfg.grad_accumulation
            sums["loss"] = sums.get("loss", 0.0) + loss.detach() / cfg.grad_accumulation
            state.batch_in_epoch += 1
        if state.step < cfg.head_warmup_steps:
            # Head warm-up: the encoder gets no update (grad None: AdamW skips it, weight decay included).
            for p in self.multitask.model.parameters():
                if id(p) not in self._new_parameters:
                    p.grad = None
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.multitask.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        out = {k: float(v) for k, v in sums.items()}
        out["_units"] = units
        return out

    def _log(self, state, scheduler, progress) -> dict:
        # The mean over the steps since the last record (a resumed run's first record included).
        record = {"step": state.step, "epoch": state.epoch, "lr": scheduler.get_last_lr()[0]}
        record.update({k: v / state.log_steps for k, v in state.log_sums.items()})
        state.log_sums, state.log_steps = {}, 0
        record.update(self.multitask.weighting.log_values())
        record.update(self.multitask.grad_stats)
        self.multitask.grad_stats = {}
        self._write(record)
        progress.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k not in ("step", "epoch", "lr")})
        return record

    def _write(self, record: dict) -> None:
        if self._log_file:
            self._log_file.write(json.dumps(record) + "\n")
            self._log_file.flush()
        if self._reporter:
            self._reporter.log(record, record["step"])

    def _evaluate(self, state: TrainerState, history: list[dict]) -> None:
        if self.validate is None or self._evaluated_at == state.step:
            return
        self._evaluated_at = state.step
        started = time.perf_counter()
        self.model.eval()
        with torch.no_grad():
            scores = self.validate(self.model)
        self.model.train()
        self._valid = (state.step, scores)
        record = {"step": state.step, **{f"valid/{k}": v for k, v in scores.items()}}
        history.append(record)
        self._write(record)
        log.info("validation at step %d: %s", state.step, scores)
        metric = self.metric or next(iter(scores))
        value = scores[metric]
        if state.best_metric is None or value > state.best_metric:
            state.best_metric, state.best_step = value, state.step
            self._since_best = 0
            if self.config.keep_best and self.env.is_main:
                self.model.save_pretrained(self.out / "best")
                self._write_provenance(self.out / "best", {"step": state.step, "valid": scores})
        else:
            self._since_best += 1
            patience = self.config.early_stopping_patience
            self._stop = patience is not None and self._since_best >= patience
        self._side_seconds += time.perf_counter() - started

    def _save_final_model(self, model_dir: Path, state: TrainerState) -> None:
        """The final weights in ``model_dir``: hard links to ``best/``'s files when they are its weights.

        They are when the best validation was at the last step. ``best/``'s own provenance must say so: it
        may be a stale folder (``keep_best`` off) or hold another step of a run that was resumed.
        """
        best = self.out / "best"
        saved = read_provenance(best) if self.config.keep_best and state.best_step == state.step else None
        weights: dict = {"step": state.step, "best_step": state.best_step}
        if saved is not None and saved.get("weights", {}).get("step") == state.step:
            linked = link_model(best, model_dir, exclude=[PROVENANCE_FILE])
            weights["valid"] = saved["weights"].get("valid")
            weights["same_weights_as"] = "best"
            weights["files"] = "hard links to best/'s" if linked else "copies of best/'s"
        else:
            self.model.save_pretrained(model_dir)
            weights["valid"] = self._valid[1] if self._valid and self._valid[0] == state.step else None
        self._write_provenance(model_dir, weights)

    def _write_provenance(self, directory: Path, weights: dict) -> None:
        weights = {"folder": directory.name, **weights}
        weights["saved_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_provenance(directory, {**self.provenance, "weights": weights})

    def _save(self, path: Path, optimizer, scheduler, state: TrainerState) -> None:
        self._saved_at = state.step
        started = time.perf_counter()
        if self.env.is_main:
            save_checkpoint(path, self.multitask, optimizer, scheduler, state)
        self._side_seconds += time.perf_counter() - started


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="train", dynamic_ncols=True)


def _truncate_log(path: Path, step: int) -> None:
    """Keep the records up to ``step``: the resumed run logs the later steps of the killed run again."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the kill
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line + "\n")
    with atomic_write(path) as handle:
        handle.write("".join(kept))
