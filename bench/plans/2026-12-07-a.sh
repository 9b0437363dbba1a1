#!/usr/bin/env bash
# Device call A of 2026-12-07 (one GPU; carry .device_carry_madrm .whl_dense, the carry from
# `bench/pack_device_data.py --out .device_carry_madrm --prune-vocab nfcorpus`): #11's label-free MADR variants
# on NFCorpus (train -> dev) against BiBERT, 3 seeds. Ran on 2026-12-07 (session 11; docs/results/madrm.md): with
# --jobs 8 on an H100, 6 of the 12 failed at start-up out of GPU memory and were re-run 6 at once.
set -u
CARRY=.device_carry_madrm WHEELS=.whl_dense TAG=-nf RUNS_TAR=0 bash bench/gpu_run.sh madrm --collections nfcorpus \
    --seeds 0 1 2 --jobs ${JOBS:-8} --deadline 300 --hard-deadline ${HARD:-545}
