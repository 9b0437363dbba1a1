#!/usr/bin/env bash
# Device call F of 2026-11-22 (one GPU; carry .device_carry_ce .whl_ce): #9's expansions again, from a GDMTL
# model that can end a query. Call C's GDMTL generator (eq. 5 at weight 0.1) never learnt the [SEP] that ends
# a query and reached only 8.7 nats a token, so its greedy queries were 32-token loops. Here the same recipe
# with stop: true and the generation weight at 1.0 (the tuning grid's "mean, 1.0, 0.01" point: valid 0.834,
# test 0.791), then bench/gdmtl_extras.sh's generation, examples and BM25 ± expansions (docs/results/gdmtl.md).
set -u
export CARRY=.device_carry_ce WHEELS=.whl_ce
source bench/device_env.sh
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
TUNED=0 SEQ2SEQ=0 EXTRA_SETS="objectives.1.params.stop=true objectives.1.weight=1.0" \
    timeout ${LIMIT:-540} bash bench/gdmtl_extras.sh > /tmp/extras-stop.out 2>&1
echo "done at $(($(date +%s) - t0)) s"
tar czf $OUT/gdmtl-extras-stop.tar.gz -C /tmp --exclude='*.safetensors' --exclude='index-*' \
    --exclude=checkpoint-last --exclude=first_stage.trec --exclude=fused.trec gdmtl-extras
cp /tmp/extras-stop.out $OUT/
cat /tmp/extras-stop.out
