#!/usr/bin/env bash
# Device call G (one GPU; carry .device_carry_fwq .whl_ce, as plan e): the 4 runs of #10's nested learning-rate search
# that ran out of memory in plan e (10 FIRE runs of ~8.5 GB each on one 80 GB H100): lr 3e-5 of ranking_only on
# fold 0 and of qbd on folds 0, 3, 4 (CV seed 0, seed 0). 4 runs at once fit any card; about 250 s.
set -u
export CARRY=.device_carry_fwq WHEELS=.whl_ce RUNS_TAR=0
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
f=(--collections fire2017-legal --seeds 0 --cv-seeds 0 --deadline 120 --hard-deadline ${HARD:-545})
TAG=-lr2 bash bench/gpu_run.sh qbd "${f[@]}" --variants ranking_only_lr3e-5 --folds 0 --jobs 1 > /tmp/lr2.out 2>&1 &
TAG=-lr3 bash bench/gpu_run.sh qbd "${f[@]}" --variants qbd_lr3e-5 --folds 0 3 4 --jobs 3 > /tmp/lr3.out 2>&1 &
wait
grep -hE "done|failed|skipped" /tmp/lr2.out /tmp/lr3.out | tail -8
