#!/usr/bin/env bash
# Device call L (one GPU; carry .device_carry_all .whl_ce): Vaswani CV seed 0 fold 4 beside CV seed 1 fold 0
# (tuned and the 8 SJTF variants each), 8 at once on an H100 in two lanes of 4, so two CV seeds' odd folds make
# one full call. Writes sjtf-vaswani0-f4 and sjtf-vaswani1-f0 (json.gz and log). Measured on 2026-12-08: a
# Vaswani run takes 97-180 s, 8 at once.
set -u
export CARRY=${CARRY:-.device_carry_all}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
COLL=vaswani CV=0 FOLDS=4 JOBS=4 bash bench/plans/2026-12-07-f.sh > /tmp/l-cv0.out 2>&1 &
COLL=vaswani CV=1 FOLDS=0 JOBS=4 bash bench/plans/2026-12-07-f.sh > /tmp/l-cv1.out 2>&1 &
wait
grep -hE "done|failed|skipped" /tmp/l-*.out | grep -v "^|" | tail -18
