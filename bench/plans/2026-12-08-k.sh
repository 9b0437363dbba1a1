#!/usr/bin/env bash
# Device call K (one GPU; carry .device_carry_all .whl_ce, or .device_carry_cv .whl_ce): the two runs Cranfield
# CV seed 2 fold 0 still lacks (MQP_ALL and balanced MQP_ALL; session 13's last call started 7 of its 9 before
# its start deadline) beside Vaswani CV seed 0 fold 0 (tuned and the 8 SJTF variants), 8 at once on an H100:
# one lane of 2, one of 6. Writes sjtf-cranfield2-f0-b and sjtf-vaswani0-f0 (json.gz and log).
set -u
export CARRY=${CARRY:-.device_carry_all}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
COLL=cranfield CV=2 FOLDS=0 VARIANTS="mqp_all_a0.2 mqp_all_a0.2_gr" JOBS=2 bash bench/plans/2026-12-07-f.sh \
    > /tmp/k-cranfield.out 2>&1 &
COLL=vaswani CV=0 FOLDS=0 JOBS=6 bash bench/plans/2026-12-07-f.sh > /tmp/k-vaswani.out 2>&1 &
wait
grep -hE "done|failed|skipped" /tmp/k-*.out | grep -v "^|" | tail -12
