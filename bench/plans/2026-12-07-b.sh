#!/usr/bin/env bash
# Device call B of 2026-12-07 (one GPU; carry .device_carry_ce .whl_ce, where .device_carry_ce holds nfcorpus,
# cranfield, vaswani from bench/pack_device_data.py and wikiqa-pages from bench/wikiqa_passages.py).
#   lane 1 (#9): GDMTL / GDMTL+ against the tuned cross-encoder on WikiQA, 3 seeds; GDMTL+ decodes each
#           question's answer sentence from its page ⊕ the question (answer_generation passage_field: page)
#   lane 2 (#6): the balanced (grad_ratio) SJTF variants on NFCorpus, seeds 0-2 (no job starts after 200 s)
# Ran 2026-12-07 on an H100 with NF_JOBS=4: 13 processes were too many for 80 GB (3 WikiQA and 3 NFCorpus
# runs failed with out-of-memory at start; bench/baselines.py now restarts such runs, --oom-retries); on an
# H100 run the lanes one after the other, or NF_JOBS=2.
set -u
export CARRY=.device_carry_ce WHEELS=.whl_ce RUNS_TAR=0
source bench/device_env.sh
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
TAG=-wq bash bench/gpu_run.sh gdmtl --collections wikiqa-pages --seeds 0 1 2 --jobs 9 --metrics AP RR nDCG@10 \
    --deadline 250 --hard-deadline ${HARD:-545} > /tmp/gdmtl-wq.out 2>&1 &
TAG=-nfgr bash bench/gpu_run.sh sjtf --collections nfcorpus --seeds ${NF_SEEDS:-0 1 2} --jobs ${NF_JOBS:-6} \
    --variants mqp_a0.05_gr mqp_a0.2_gr mpp_a0.2_gr mqp_all_a0.2_gr \
    --deadline 200 --hard-deadline ${HARD:-545} > /tmp/sjtf-nfgr.out 2>&1 &
wait
echo "all done at $(($(date +%s) - t0)) s"
tail -n 12 /tmp/gdmtl-wq.out /tmp/sjtf-nfgr.out
