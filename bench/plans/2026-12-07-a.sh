#!/usr/bin/env bash
# Device call A of 2026-12-07 (one GPU; carry .device_carry_madrm .whl_dense, the carry from
# `bench/pack_device_data.py --out .device_carry_madrm --prune-vocab nfcorpus`): #11's label-free MADR variants
# on NFCorpus (train -> dev) against BiBERT, 3 seeds. Not run on 2026-12-07 (see docs/results/madrm.md):
# needs a whole call (on an H100, 12 dense runs at once are about the memory limit; --jobs 8).
set -u
CARRY=.device_carry_madrm WHEELS=.whl_dense TAG=-nf RUNS_TAR=0 bash bench/gpu_run.sh madrm --collections nfcorpus \
    --seeds 0 1 2 --jobs ${JOBS:-8} --deadline 300 --hard-deadline ${HARD:-545}
