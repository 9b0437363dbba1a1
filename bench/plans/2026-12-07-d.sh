#!/usr/bin/env bash
# Device call D of 2026-12-07 (one GPU; carry .device_carry_nf .whl_ce, made by
# `bench/pack_device_data.py --out .device_carry_nf nfcorpus`): #6's NFCorpus balanced SJTF runs that plan b lost
# to out-of-memory or to its start deadline: seeds 0 and 2 of mqp_a0.05_gr, mqp_a0.2_gr, mpp_a0.2_gr; seeds 1
# and 2 of mqp_all_a0.2_gr (so each variant has seeds 0-2). 6 processes at once (plan b's 13 did not fit an
# H100's 80 GB). Plan b's WikiQA runs that failed ran in plan e.
set -u
export CARRY=.device_carry_nf WHEELS=.whl_ce RUNS_TAR=0
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
nf=(--collections nfcorpus --deadline 250 --hard-deadline ${HARD:-545})
TAG=-nfgr2 bash bench/gpu_run.sh sjtf "${nf[@]}" --variants mqp_a0.05_gr mqp_a0.2_gr mpp_a0.2_gr --seeds 0 2 \
    --jobs ${NF_JOBS:-4} > /tmp/nfgr2.out 2>&1 &
TAG=-nfgr3 bash bench/gpu_run.sh sjtf "${nf[@]}" --variants mqp_all_a0.2_gr --seeds 1 2 --jobs 2 > /tmp/nfgr3.out 2>&1 &
wait
grep -hE "done|failed|skipped" /tmp/nfgr2.out /tmp/nfgr3.out | tail -8
