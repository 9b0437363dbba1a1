#!/usr/bin/env bash
# Device call H (one GPU; carry .device_carry_sf .whl_ce, made by `bench/pack_device_data.py --out
# .device_carry_sf scifact`): #9's encoder-decoder variants on SciFact, seeds 3 and 4 (the issue asks for 5
# seeds on SciFact; seeds 0-2 are in docs/results/gdmtl/). Full vocabulary, as seed 2. 8 runs at once.
set -u
export CARRY=.device_carry_sf WHEELS=.whl_ce RUNS_TAR=0
TAG=-s2s34 bash bench/gpu_run.sh gdmtl --collections scifact --variants gdmtl_s gdmtl_c rank_s rank_c \
    --seeds 3 4 --jobs ${JOBS:-8} --deadline 100 --hard-deadline ${HARD:-545}
