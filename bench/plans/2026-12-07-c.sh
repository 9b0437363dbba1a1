#!/usr/bin/env bash
# Device call C of 2026-12-07 (nvidia-h200; carry .device_carry_fire .whl_ce): #10's nested search for
# qbd-multitask on FIRE 2017. The grid is the learning rate, {3e-5, 1e-4}, for the ranking loss alone and for
# ranking + doc_representation; 1e-4 ran before (docs/results/qbd/qbd-s0.json.gz, CV seed 0), this call runs
# 3e-5 on the same 5 folds and seed. bench/nested_select.py then keeps, per fold, the rate its validation
# queries prefer (docs/results/qbd.md).
set -u
export CARRY=.device_carry_fire WHEELS=.whl_ce RUNS_TAR=0
TAG=-lr bash bench/gpu_run.sh qbd --collections fire2017-legal --variants ranking_only_lr3e-5 qbd_lr3e-5 \
    --seeds 0 --cv-seeds 0 --jobs 10 --deadline 250 --hard-deadline ${HARD:-545}
