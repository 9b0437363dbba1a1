#!/usr/bin/env bash
# Device call F of 2026-12-07 (one GPU; carry .device_carry_cv .whl_ce, made by
# `bench/pack_device_data.py --out .device_carry_cv cranfield vaswani`, or .device_carry_all via CARRY): one
# chunk of #6's SJTF runs on the CV collections, the tuned recipe and its 8 SJTF variants (4 tasks x fixed /
# grad_ratio) over the folds of one CV seed of one collection:
#   COLL=cranfield CV=1 FOLDS="0 1 2" bash bench/plans/2026-12-07-f.sh   # 27 runs; then FOLDS="3 4" (18 runs)
# Measured on 2026-12-07 (Cranfield, CV seed 0, one H100): a run holds ~8.5 GB of GPU memory, so at most 9 fit
# at once (12 at once lost a third of them to out-of-memory at start-up) and each then takes 150-240 s: 45 runs
# are about two 10-minute calls, hence FOLDS. Tuned seed 0 of both collections exists already
# (docs/results/baselines/baselines-tuned.json.gz); it runs again here so every variant meets its own-call twin
# (Cranfield: 0.340 here vs 0.342 there). A chunk cut by its deadline lists its skipped runs in the results file,
# to rerun with --variants / --folds.
set -u
export CARRY=${CARRY:-.device_carry_cv} WHEELS=.whl_ce RUNS_TAR=0
TAG=-${COLL:?COLL=cranfield or vaswani}${CV:?CV=0, 1 or 2}${FOLDS:+-f${FOLDS// /}} bash bench/gpu_run.sh sjtf \
    --collections $COLL --cv-seeds $CV ${FOLDS:+--folds $FOLDS} --jobs ${JOBS:-9} --deadline ${DEADLINE:-330} \
    --hard-deadline ${HARD:-560}
