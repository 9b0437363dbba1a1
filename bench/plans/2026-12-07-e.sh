#!/usr/bin/env bash
# Device call E of 2026-12-07, session 10 (one GPU; carry .device_carry_fwq .whl_ce): plan c (#10's nested
# learning-rate search on FIRE 2017) and plan d's WikiQA runs (#9) in one call, since machines were scarce.
# .device_carry_fwq holds one MiniLM, FIRE packed with --max-chars 10000 (the 64 MiB limit; the qbd recipes
# read each prior case's first 253 tokens, so nothing they read is cut; the BM25 run is the same file as
# .device_carry_fire's) and .device_carry_ce's wikiqa-pages (the copy seeds 0 and 1 ran on):
#   bench/pack_device_data.py --out .device_carry_fwq --max-chars 10000 --max-query-chars 8000 --bm25-run 100 \
#       fire2017-legal && cp -r .device_carry_ce/data/wikiqa-pages .device_carry_fwq/data/ && rm .device_carry_fwq/minilm/{README.md,data_config.json}
# On an H200 the lanes share the GPU; on a smaller card the WikiQA lane waits for FIRE's. Ran 2026-12-07 on an
# H100 (HARD=370): each FIRE run holds ~8.5 GB, so 4 of the 10 ran out of memory (plan g reruns them); on an
# 80 GB card FIRE now runs 8 at once.
set -u
export CARRY=.device_carry_fwq WHEELS=.whl_ce RUNS_TAR=0
source bench/device_env.sh
t0=$(date +%s)
mem=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
jobs=10; [ "$mem" -gt 100000 ] || jobs=8
wq(){ TAG=-wq2 bash bench/gpu_run.sh gdmtl --collections wikiqa-pages --metrics AP RR nDCG@10 --variants tuned \
        --seeds 2 --jobs 1 --deadline 250 --hard-deadline ${HARD:-545} > /tmp/wq2.out 2>&1 &
      TAG=-wq3 bash bench/gpu_run.sh gdmtl --collections wikiqa-pages --metrics AP RR nDCG@10 \
        --variants gdmtl gdmtl_plus --seeds 0 --jobs 2 --deadline 250 --hard-deadline ${HARD:-545} > /tmp/wq3.out 2>&1 &
      wait; }
fire(){ TAG=-lr bash bench/gpu_run.sh qbd --collections fire2017-legal --variants ranking_only_lr3e-5 qbd_lr3e-5 \
        --seeds 0 --cv-seeds 0 --jobs $jobs --deadline 250 --hard-deadline ${HARD:-545} > /tmp/lr.out 2>&1; }
if [ "$mem" -gt 100000 ]; then fire & wq; wait; else fire; HARD=$((${HARD:-545} - $(date +%s) + t0)) wq; fi
echo "all done at $(($(date +%s) - t0)) s"
for f in /tmp/lr.out /tmp/wq2.out /tmp/wq3.out; do echo "== $f"; grep -E "done|failed|skipped" $f | tail -12; done
