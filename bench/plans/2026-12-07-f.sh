#!/usr/bin/env bash
# Device call F of 2026-12-07 (one GPU, best an H200; carry .device_carry_cv .whl_ce, made by
# `bench/pack_device_data.py --out .device_carry_cv cranfield vaswani`): one chunk of #6's SJTF
# runs on the CV collections, the tuned recipe and its 8 SJTF variants (4 tasks x fixed / grad_ratio) over the
# 5 folds of one CV seed of one collection: 45 runs a call.
#   COLL=cranfield CV=0 bash bench/plans/2026-12-07-f.sh   # then CV=1, CV=2, and COLL=vaswani CV=0..2
# Six calls in all. The tuned Cranfield folds took 104-162 s each while sharing one GPU with other runs
# (docs/results/baselines/baselines-call3.log), so 45 runs, 12 at once, take about one call's 10 minutes; a chunk cut by its deadline leaves its skipped runs listed
# in the results file, to rerun with --variants / --folds. Tuned seed 0 of both collections exists already
# (docs/results/baselines/baselines-tuned.json.gz); it runs again here so every variant meets its own-call twin.
set -u
export CARRY=.device_carry_cv WHEELS=.whl_ce RUNS_TAR=0
TAG=-${COLL:?COLL=cranfield or vaswani}${CV:?CV=0, 1 or 2} bash bench/gpu_run.sh sjtf --collections $COLL \
    --cv-seeds $CV --jobs ${JOBS:-12} --deadline ${DEADLINE:-330} --hard-deadline ${HARD:-560}
