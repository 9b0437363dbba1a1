#!/usr/bin/env bash
# Device call E of 2026-11-22 (one GPU, alone; carry .device_carry_ce .whl_ce): #10's scorer speed again.
# Call C's two clean runs disagreed on CLS's training throughput by 16 % and put CLS (timed first) below
# CEDR-KNRM, which does CLS's work and more; PARADE + MQP came out faster than PARADE. This call runs the
# scorers in both orders (CLS first, then CLS last), so that an effect of the position in the run shows as a
# difference between the two. First run (STEPS=300, WARMUP=20): CLS trained 26 % faster timed last than
# timed first, and PARADE + MQP (timed second, on the same batches) beat PARADE alone again: batch shapes
# seen for the first time cost time. Second run (STEPS=150, the default warm-up = the same 150 steps).
set -u
export CARRY=.device_carry_ce WHEELS=.whl_ce
source bench/device_env.sh
t0=$(date +%s) data=$CARRY/data model=$CARRY/minilm
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; nproc
order=("cls cedr_knrm pacrr parade" "parade pacrr cedr_knrm cls")
for i in 0 1; do
  [ $i = 1 ] && [ $(($(date +%s) - t0)) -gt 280 ] && break  # the second order only if the first was quick
  python3 bench/scorer_speed.py --data $data/scifact --model $model --steps ${STEPS:-150} ${WARMUP:+--warmup $WARMUP} \
      --scorers ${order[$i]} --out /tmp/speed$i > /tmp/scorer-speed$i.log 2>&1
  cp /tmp/speed$i/scorer_speed.json $OUT/scorer_speed-order$i.json; cp /tmp/scorer-speed$i.log $OUT/
  tail -n 6 /tmp/scorer-speed$i.log
done
echo "all done at $(($(date +%s) - t0)) s"
