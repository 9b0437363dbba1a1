#!/usr/bin/env bash
# Device call F of 2026-12-07 (one GPU; carry .device_carry_cv .whl_ce, made by
# `bench/pack_device_data.py --out .device_carry_cv cranfield vaswani`, or .device_carry_all via CARRY): one
# chunk of #6's SJTF runs on the CV collections, the tuned recipe and its 8 SJTF variants (4 tasks x fixed /
# grad_ratio) over the folds of one CV seed of one collection:
#   COLL=cranfield CV=1 FOLDS="0 1" bash bench/plans/2026-12-07-f.sh   # 18 runs; then FOLDS="2 3", FOLDS=4
# Measured on 2026-12-07 (Cranfield, CV seed 0, one H100): a run holds ~8.5 GB of GPU memory (12 at once lost a
# third of them to out-of-memory at start-up) and, 5-7 at once, takes 100-170 s. JOBS defaults to what fits
# the card with room to spare: 8 on an H100 (18 runs: about two waves and a short third, if it starts
# before the 390 s start deadline), 15 on an H200 (141 GB, 16 CPU cores; FOLDS="0 1 2" then "3 4"). Tuned seed 0 of both collections
# exists already (docs/results/baselines/baselines-tuned.json.gz); it runs again here so every variant meets
# its own-call twin (Cranfield: 0.340 here vs 0.342 there). A chunk cut by its deadline lists its skipped runs
# in the results file, to rerun with FOLDS and VARIANTS (a call given VARIANTS adds -b to its file name, so it
# never overwrites the chunk it completes), e.g. COLL=cranfield CV=2 FOLDS=0 VARIANTS="mqp_all_a0.2 mqp_all_a0.2_gr".
set -u
mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
fits=$((mib / 9400)); [ $fits -gt 15 ] && fits=15
export CARRY=${CARRY:-.device_carry_cv} WHEELS=.whl_ce RUNS_TAR=0
TAG=-${COLL:?COLL=cranfield or vaswani}${CV:?CV=0, 1 or 2}${FOLDS:+-f${FOLDS// /}}${VARIANTS:+-b} bash bench/gpu_run.sh \
    sjtf --collections $COLL --cv-seeds $CV ${FOLDS:+--folds $FOLDS} ${VARIANTS:+--variants $VARIANTS} \
    --jobs ${JOBS:-$fits} --deadline ${DEADLINE:-390} --hard-deadline ${HARD:-560}
