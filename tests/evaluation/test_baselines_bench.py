"""bench/baselines.py's job runner: a run that ran out of GPU memory starts again; other failures do not."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.bench_module import bench_module


def bench():
    return bench_module("baselines")


def fake_runs(monkeypatch, module, stderrs: list[str]) -> list[list[str]]:
    """``auxir train`` fails with each of ``stderrs`` in turn, then succeeds (writing metrics.json)."""
    calls: list[list[str]] = []

    def run(command, **kwargs):
        if command[0] == "rm":
            return subprocess.CompletedProcess(command, 0)
        calls.append(command)
        out = Path(command[command.index("--output-dir") + 1])
        if len(calls) <= len(stderrs):
            out.mkdir(parents=True, exist_ok=True)
            (out / "partial").write_text("half a run")
            return subprocess.CompletedProcess(command, 1, "", stderrs[len(calls) - 1])
        assert not (out / "partial").exists()  # a restart begins from an empty folder
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({"reranked": {"nDCG@10": 0.5}}))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(module.subprocess, "run", run)
    monkeypatch.setattr(module.time, "sleep", lambda seconds: None)
    return calls


def args(tmp_path, retries: int = 2) -> SimpleNamespace:
    return SimpleNamespace(
        out=str(tmp_path), data_root="data", model="m", hard_deadline=600, t0=time.time(),
        oom_retries=retries, oom_wait=30,
    )  # fmt: skip


OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 132.00 MiB."


# the three ways a run sharing an H100 died of memory on 2026-12-07 (docs/results/madrm/nfcorpus, gdmtl/*s2s34*)
ACCELERATOR_OOM = "torch.AcceleratorError: CUDA error: out of memory\nSearch for `cudaErrorMemoryAllocation'"
CUBLAS_OOM = "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"


@pytest.mark.parametrize("first", [OOM, ACCELERATOR_OOM, CUBLAS_OOM])
def test_a_run_out_of_gpu_memory_starts_again(tmp_path, monkeypatch, first):
    module = bench()
    calls = fake_runs(monkeypatch, module, [first, OOM])
    job = module.run_job(module.Job("c", "v", 0, None, []), args(tmp_path), time.time() + 300)
    assert job.status == "done" and job.retries == 2 and len(calls) == 3
    assert job.metrics == {"reranked": {"nDCG@10": 0.5}}


def test_retries_stop_at_the_limit_and_other_errors_are_not_retried(tmp_path, monkeypatch):
    module = bench()
    calls = fake_runs(monkeypatch, module, [OOM, OOM])
    job = module.run_job(module.Job("c", "v", 0, None, []), args(tmp_path, retries=1), time.time() + 300)
    assert (
        job.status == "failed" and job.retries == 1 and len(calls) == 2 and "CUDA out of memory" in job.error
    )
    calls = fake_runs(monkeypatch, module, ["ValueError: bad recipe"])
    job = module.run_job(module.Job("c", "w", 0, None, []), args(tmp_path), time.time() + 300)
    assert job.status == "failed" and job.retries == 0 and len(calls) == 1


def test_no_restart_after_the_start_deadline(tmp_path, monkeypatch):
    module = bench()
    calls = fake_runs(monkeypatch, module, [OOM])
    job = module.run_job(module.Job("c", "v", 0, None, []), args(tmp_path), time.time() + 10)  # < oom_wait
    assert job.status == "failed" and job.retries == 0 and len(calls) == 1
