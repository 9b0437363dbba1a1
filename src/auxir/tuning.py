"""Hyper-parameter search over recipe fields with Optuna; every trial is an ``auxir train`` subprocess.

A search space is a YAML file naming recipe fields (``section.field``, list items by index) and how to
draw them::

    metric: valid            # the trial value is metrics.json's best_valid: never a test metric
    direction: maximize
    params:
      training.learning_rate: {type: float, low: 1.0e-5, high: 3.0e-4, log: true}
      training.epochs: {type: int, low: 2, high: 12}
      objectives.0.name: {type: categorical, choices: [listwise_softmax, pairwise_hinge]}
    fixed:                   # overrides every trial gets (here: params that suit every loss above)
      objectives.0.params: {}

``tune`` asks Optuna for ``jobs`` trials at a time (ask-and-tell), runs each as
``python -m auxir train --recipe R --set ...`` so that a crash or an out-of-memory kill fails one trial
and not the search, and keeps the study in a journal file in the output directory: re-running with the
same directory resumes it. After every trial it appends a line to ``trials.jsonl`` and rewrites
``best.yaml``, the resolved recipe of the best trial so far.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from auxir.tuning_space import ParamSpec, SearchSpace, grid_points, load_space, override  # noqa: F401

log = logging.getLogger(__name__)

SamplerName = Literal["tpe", "random", "grid"]
SAMPLERS: tuple[str, ...] = ("tpe", "random", "grid")
STUDY_NAME = "auxir-tune"
JOURNAL = "optuna-journal.log"
# Folders a finished trial no longer needs (weights); its metrics, recipe, log and runs stay.
MODEL_DIRS = ("model", "best", "checkpoint-last")


# ---- records --------------------------------------------------------------------------------------------
@dataclass
class TrialRecord:
    """One line of trials.jsonl. Test metrics are there for the record only: selection uses ``value``."""

    trial: int
    state: Literal["COMPLETE", "FAIL", "INTERRUPTED"]
    value: float | None
    valid_metric: str | None
    params: dict[str, Any]
    seconds: float | None
    output_dir: str
    best_step: int | None = None
    error: str | None = None
    test_metrics_not_used_for_selection: dict[str, Any] | None = None


@dataclass
class TuneResult:
    best_params: dict[str, Any] | None
    best_value: float | None
    best_trial: int | None
    best_dir: Path | None
    n_complete: int
    n_failed: int
    trials: list[TrialRecord]
    out_dir: Path
    best_recipe: Path | None
    direction: Literal["maximize", "minimize"] = "maximize"


@dataclass
class _Outcome:
    value: float | None
    error: str | None
    seconds: float
    metrics: dict[str, Any]
    valid_metric: str | None


def _tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _run_trial(command: list[str], trial_dir: Path, env: dict[str, str], procs: dict, key: int) -> _Outcome:
    """Run one ``auxir train`` subprocess and read its value; never raises for a failed trial."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / "metrics.json").unlink(missing_ok=True)  # left by an earlier attempt: not this run's result
    started = time.perf_counter()
    with open(trial_dir / "stdout.log", "wb") as out, open(trial_dir / "stderr.log", "wb") as err:
        try:
            proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        except OSError as error:
            return _Outcome(None, f"could not start {command[0]}: {error}", 0.0, {}, None)
        procs[key] = proc
        code = proc.wait()
        procs.pop(key, None)
    seconds = time.perf_counter() - started
    metrics = _read_json(trial_dir / "metrics.json")
    valid_metric = _read_json(trial_dir / "recipe.json").get("evaluation", {}).get("valid_metric")
    if code != 0:
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            what = f"killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        else:
            what = f"exit status {code}"
        return _Outcome(
            None, f"{what}; stderr ends:\n{_tail(trial_dir / 'stderr.log')}", seconds, metrics, valid_metric
        )
    value = metrics.get("best_valid")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        why = (
            f"{trial_dir / 'metrics.json'} has best_valid={value!r}: no validation ran "
            "(the recipe needs validation queries: data.valid_fraction > 0 or data.valid_split)"
            if metrics
            else f"the run exited 0 but wrote no {trial_dir / 'metrics.json'}"
        )
        return _Outcome(None, why, seconds, metrics, valid_metric)
    return _Outcome(float(value), None, seconds, metrics, valid_metric)


def _delete_models(trial_dir: Path) -> None:
    for name in MODEL_DIRS:
        shutil.rmtree(trial_dir / name, ignore_errors=True)
        for leftover in trial_dir.glob(f".{name}.*"):  # temporaries of an interrupted atomic write
            shutil.rmtree(leftover, ignore_errors=True)


def _append_line(path: Path, record: TrialRecord) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(record)) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """One ``auxir tune`` per output directory: a second one would take the first's trials for interrupted."""
    with open(out / ".tune.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"{out}: another auxir tune is running in this directory") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---- the search -------------------------------------------------------------------------------------------
class _Search:
    """The state of one ``tune`` call; ``run`` is the ask → subprocess → tell loop."""

    def __init__(
        self,
        recipe: str,
        space: SearchSpace,
        out: Path,
        trials: int,
        jobs: int,
        overrides: list[str],
        sampler: SamplerName,
        seed: int,
        keep_models: bool,
        python: str | Path,
    ):
        self.recipe, self.space, self.out = recipe, space, out
        self.trials, self.jobs, self.sampler_name, self.seed = trials, jobs, sampler, seed
        self.overrides = list(overrides) + space.fixed_overrides()
        self.user_overrides = list(overrides)
        self.keep_models, self.python = keep_models, str(python)
        self.distributions = {name: spec.distribution() for name, spec in space.params.items()}
        self.grid = grid_points(space, seed) if sampler == "grid" else None
        self.records_path = out / "trials.jsonl"

    # -- set-up
    def check_recipe(self) -> None:
        """Load the recipe with each bound and choice before the first trial: typos fail now, not in trial 7."""
        from auxir.recipe import load_recipe

        probes = [{name: value} for name, spec in self.space.params.items() for value in spec.probe_values()]
        probes.append({name: spec.probe_values()[0] for name, spec in self.space.params.items()})
        for params in probes:
            sets = self.space.overrides(params)
            try:
                load_recipe(self.recipe, self.overrides + sets)
            except ValueError as error:
                raise ValueError(
                    f"{self.space.path}: {' '.join(sets)} does not fit recipe {self.recipe!r}: {error}. "
                    "Fields that must suit every choice (such as an objective's params) can be set in the "
                    "space's fixed: section or with --set"
                ) from None

    def open_study(self) -> None:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(str(self.out / JOURNAL)))
        study = optuna.create_study(
            storage=storage, study_name=STUDY_NAME, direction=self.space.direction, load_if_exists=True
        )
        setup = {
            "recipe": self.recipe,
            "overrides": self.user_overrides,
            "space": self.space.to_dict(),
            "sampler": self.sampler_name,
            "seed": self.seed,
        }
        stored = study.user_attrs.get("setup")
        if stored is None:
            study.set_user_attr("setup", setup)
        else:
            for key, value in setup.items():
                if json.loads(json.dumps(value)) != stored.get(key):
                    raise ValueError(
                        f"{self.out}: holds a search with another {key} (stored: {stored.get(key)!r}, "
                        f"now: {value!r}); resume it with the same arguments or use a new output directory"
                    )
        self.study = study
        self.recover_interrupted()
        # Reseed with the trials so far: a resumed search must not draw its first trials' parameters again.
        self.study.sampler = self.make_sampler(self.seed + len(study.trials))

    def make_sampler(self, seed: int):
        import optuna

        if self.sampler_name == "tpe":
            with warnings.catch_warnings():  # constant_liar is marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # While trials run in parallel, TPE assumes the running ones are bad instead of drawing
                # near the same point again.
                return optuna.samplers.TPESampler(seed=seed, constant_liar=self.jobs > 1)
        # grid: points are queued by ``next_trial`` (Optuna's GridSampler maps grid points to trial numbers
        # and calls study.stop() from tell(), an error outside optimize()); the sampler is never consulted.
        return optuna.samplers.RandomSampler(seed=seed)

    def recover_interrupted(self) -> None:
        """Trials left running by an interrupted search failed; their parameters are queued to run again."""
        from optuna.trial import TrialState

        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study.tell(trial.number, state=TrialState.FAIL)
            # The grid re-queues every point not yet done by itself; a trial stopped while Optuna was still
            # drawing its parameters has none to repeat.
            if self.grid is None and set(trial.params) == set(self.distributions):
                self.study.enqueue_trial(trial.params)
            log.warning("trial %d was interrupted; it is marked failed and runs again", trial.number)

    # -- bookkeeping
    def record(self, trial) -> TrialRecord:
        from optuna.trial import TrialState

        attrs = trial.user_attrs
        state = "COMPLETE" if trial.state == TrialState.COMPLETE else "FAIL"
        if "seconds" not in attrs:  # failed without an outcome: the search stopped while it ran
            state = "INTERRUPTED"
        return TrialRecord(
            trial=trial.number,
            state=state,
            value=trial.value if state == "COMPLETE" else None,
            valid_metric=attrs.get("valid_metric"),
            params=dict(trial.params),
            seconds=attrs.get("seconds"),
            output_dir=str(self.trial_dir(trial.number)),
            best_step=attrs.get("best_step"),
            error=attrs.get("error"),
            test_metrics_not_used_for_selection=attrs.get("test_metrics"),
        )

    def finished(self) -> list:
        from optuna.trial import TrialState

        states = (TrialState.COMPLETE, TrialState.FAIL)
        return [t for t in self.study.get_trials(deepcopy=False, states=states) if "seconds" in t.user_attrs]

    def sync_records(self) -> None:
        """Append the finished trials trials.jsonl lacks (a search stopped between tell and append)."""
        from optuna.trial import TrialState

        seen: set[int] = set()
        if self.records_path.exists():
            for line in self.records_path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    seen.add(int(json.loads(line)["trial"]))
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
            if trial.number not in seen:
                _append_line(self.records_path, self.record(trial))
                if not self.keep_models:
                    _delete_models(self.trial_dir(trial.number))

    def trial_dir(self, number: int) -> Path:
        return self.out / f"trial-{number:04d}"

    def command_line(self) -> str:
        words = [
            "auxir",
            "tune",
            "--recipe",
            self.recipe,
            "--space",
            self.space.path,
            "--trials",
            str(self.trials),
        ]
        words += ["--jobs", str(self.jobs), "--out", str(self.out), "--sampler", self.sampler_name]
        words += ["--seed", str(self.seed)] + (["--keep-models"] if self.keep_models else [])
        for item in self.user_overrides:
            words += ["--set", item]
        return shlex.join(words)

    def write_best(self) -> Path | None:
        """Rewrite best.yaml: the resolved recipe of the best trial, under a header saying how it was found."""
        from auxir.io import atomic_write
        from auxir.recipe import load_recipe

        done = self.finished()
        complete = [t for t in done if t.value is not None and t.user_attrs.get("error") is None]
        if not complete:
            return None
        best = self.study.best_trial
        params = self.space.overrides(best.params)
        recipe = load_recipe(self.recipe, self.overrides + params)
        test = best.user_attrs.get("test_metrics") or {}
        reranked = ", ".join(f"{k} {v:.4f}" for k, v in (test.get("reranked") or {}).items())
        metric = best.user_attrs.get("valid_metric") or "the validation metric"
        header = [
            "Best recipe of a hyper-parameter search (auxir tune); rewritten after every trial.",
            f"date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}",
            f"command: {self.command_line()}",
            f"recipe: {self.recipe}; overrides for every trial: {self.overrides or 'none'}",
            f"sampler: {self.sampler_name}, seed {self.seed}; trials done: {len(complete)} complete, "
            f"{len(done) - len(complete)} failed, of {self.trials}",
            f"selection: {self.space.direction} {metric} on the validation queries (metrics.json best_valid)",
            f"best: trial {best.number}, value {best.value:.6g}, {self.trial_dir(best.number)}",
            f"best params: {' '.join(params)}",
            f"test metrics of this trial, for the record only, never used to choose: {reranked or 'none'}",
            f"retrain: auxir train --recipe {self.out / 'best.yaml'} --output-dir <dir>",
            f"search space ({self.space.path}):",
            *(f"  {line}" for line in self.space.text.rstrip().splitlines()),
        ]
        text = "".join(f"# {line}".rstrip() + "\n" for line in header)
        text += yaml.safe_dump(recipe.to_dict(), sort_keys=False, default_flow_style=False)
        path = self.out / "best.yaml"
        with atomic_write(path) as handle:
            handle.write(text)
        return path

    # -- the loop
    def next_trial(self):
        from optuna.trial import TrialState

        if self.grid is not None and not self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            taken = {
                _point_key(t.params)
                for t in self.study.get_trials(deepcopy=False)
                if t.state == TrialState.RUNNING or (t.state.is_finished() and "seconds" in t.user_attrs)
            }
            point = next((p for p in self.grid if _point_key(p) not in taken), None)
            if point is None:
                return None
            self.study.enqueue_trial(point)
        return self.study.ask(self.distributions)

    def command(self, trial) -> list[str]:
        sets = self.overrides + self.space.overrides(trial.params)
        sets += [f"training.output_dir={self.trial_dir(trial.number)}", "training.progress=false"]
        words = [self.python, "-m", "auxir", "train", "--recipe", self.recipe]
        for item in sets:
            words += ["--set", item]
        return words

    def finish(self, trial, outcome: _Outcome) -> None:
        from optuna.trial import TrialState

        metrics = outcome.metrics
        trial.set_user_attr("seconds", round(outcome.seconds, 3))
        trial.set_user_attr("error", outcome.error)
        trial.set_user_attr("valid_metric", outcome.valid_metric)
        trial.set_user_attr("best_step", metrics.get("best_step"))
        if "reranked" in metrics:
            test = {"first_stage": metrics.get("first_stage"), "reranked": metrics.get("reranked")}
            trial.set_user_attr("test_metrics", test)
        if outcome.error is None:
            self.study.tell(trial, outcome.value)
            log.info(
                "trial %d: %s = %.4f (%.0f s) %s",
                trial.number,
                outcome.valid_metric,
                outcome.value,
                outcome.seconds,
                trial.params,
            )
        else:
            self.study.tell(trial, state=TrialState.FAIL)
            log.warning("trial %d failed (%s): %s", trial.number, trial.params, outcome.error)
        frozen = self.study.get_trials(deepcopy=False)[trial.number]
        _append_line(self.records_path, self.record(frozen))
        if not self.keep_models:
            _delete_models(self.trial_dir(trial.number))
        self.write_best()

    def run(self) -> None:
        remaining = max(0, self.trials - len(self.finished()))
        if remaining == 0:
            log.info("%s: %d trials already finished; nothing to run", self.out, self.trials)
            return
        env = dict(os.environ)
        if self.jobs > 1 and "OMP_NUM_THREADS" not in env:  # concurrent trials share the CPU cores
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.jobs))
        procs: dict[int, subprocess.Popen] = {}
        pending: dict[Future, Any] = {}
        launched = 0
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="trial") as pool:
            try:
                while launched < remaining or pending:
                    while launched < remaining and len(pending) < self.jobs:
                        trial = self.next_trial()
                        if trial is None:  # the grid is done
                            remaining = launched
                            break
                        future = pool.submit(
                            _run_trial,
                            self.command(trial),
                            self.trial_dir(trial.number),
                            env,
                            procs,
                            trial.number,
                        )
                        pending[future] = trial
                        launched += 1
                    if not pending:
                        break
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        self.finish(pending.pop(future), future.result())
            except BaseException:
                # Stopped (Ctrl-C, an error here): end the trials this search started; they stay "running"
                # in the journal and the next run with this directory marks them interrupted.
                for proc in list(procs.values()):
                    proc.terminate()
                raise


def _point_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def tune(
    recipe: str,
    space_path: str | Path,
    out_dir: str | Path,
    trials: int,
    jobs: int = 1,
    overrides: list[str] | None = None,
    sampler: SamplerName = "tpe",
    seed: int = 0,
    keep_models: bool = False,
    python: str | Path = sys.executable,
) -> TuneResult:
    """Search ``space_path`` over ``recipe`` (+ ``overrides``) with ``trials`` trials in all, ``jobs`` at a time.

    Re-running with the same ``out_dir`` resumes: only the trials still missing run (finished ones, failed
    included, count; interrupted ones run again). With ``sampler="grid"`` every parameter must be
    categorical and ``trials`` is capped at the number of grid points.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {list(SAMPLERS)}, found {sampler!r}")
    if trials < 1 or jobs < 1:
        raise ValueError(f"trials and jobs must be at least 1, found trials={trials}, jobs={jobs}")
    space = load_space(space_path)
    if sampler == "grid":
        size = len(grid_points(space, seed))
        if trials > size:
            log.warning("the grid has %d points: running %d trials, not %d", size, size, trials)
            trials = size
    out = Path(out_dir).resolve()
    search = _Search(recipe, space, out, trials, jobs, overrides or [], sampler, seed, keep_models, python)
    search.check_recipe()
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        search.open_study()
        search.sync_records()
        search.run()
        best_recipe = search.write_best()
        records = [search.record(t) for t in search.study.get_trials(deepcopy=False) if t.state.is_finished()]
        complete = [r for r in records if r.state == "COMPLETE"]
        best_number = search.study.best_trial.number if complete else None
        best = next((r for r in records if r.trial == best_number), None)
    return TuneResult(
        best_params=best.params if best else None,
        best_value=best.value if best else None,
        best_trial=best.trial if best else None,
        best_dir=Path(best.output_dir) if best else None,
        n_complete=len(complete),
        n_failed=sum(r.state == "FAIL" for r in records),
        trials=records,
        out_dir=out,
        best_recipe=best_recipe,
        direction=space.direction,
    )
