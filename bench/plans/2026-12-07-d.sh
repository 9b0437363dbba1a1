#!/usr/bin/env bash
# Device call D of 2026-12-07, session 10 (one GPU; carry .device_carry_nfwq .whl_ce): the runs that plan b
# lost to out-of-memory or to its start deadline. .device_carry_ce no longer fits 64 MiB beside the working tree
# (the device counts disk blocks), so .device_carry_nfwq holds only NFCorpus and WikiQA:
#   bench/pack_device_data.py --out .device_carry_nfwq nfcorpus && cp -r .device_carry_ce/data/wikiqa-pages \
#       .device_carry_nfwq/data/     (the copy plan b's runs read)
#   #9: WikiQA tuned seed 2, GDMTL and GDMTL+ seed 0 (ran in plan e instead; WQ=1 runs them again)
#   #6: NFCorpus balanced SJTF: seeds 0 and 2 of mqp_a0.05_gr, mqp_a0.2_gr, mpp_a0.2_gr; seeds 1 and 2 of
#       mqp_all_a0.2_gr (so each variant has seeds 0-2)
# 9 processes at most (plan b's 13 did not fit an H100's 80 GB).
set -u
export CARRY=${CARRY:-.device_carry_nfwq} WHEELS=.whl_ce RUNS_TAR=0
source bench/device_env.sh
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
wq=(--collections wikiqa-pages --metrics AP RR nDCG@10 --deadline 250 --hard-deadline ${HARD:-545})
nf=(--collections nfcorpus --deadline 250 --hard-deadline ${HARD:-545})
[ "${WQ:-0}" = 1 ] && TAG=-wq2 bash bench/gpu_run.sh gdmtl "${wq[@]}" --variants tuned --seeds 2 --jobs 1 > /tmp/wq2.out 2>&1 &
[ "${WQ:-0}" = 1 ] && TAG=-wq3 bash bench/gpu_run.sh gdmtl "${wq[@]}" --variants gdmtl gdmtl_plus --seeds 0 --jobs 2 > /tmp/wq3.out 2>&1 &
TAG=-nfgr2 bash bench/gpu_run.sh sjtf "${nf[@]}" --variants mqp_a0.05_gr mqp_a0.2_gr mpp_a0.2_gr --seeds 0 2 \
    --jobs ${NF_JOBS:-4} > /tmp/nfgr2.out 2>&1 &
TAG=-nfgr3 bash bench/gpu_run.sh sjtf "${nf[@]}" --variants mqp_all_a0.2_gr --seeds 1 2 --jobs 2 > /tmp/nfgr3.out 2>&1 &
wait
echo "all done at $(($(date +%s) - t0)) s"
for f in /tmp/wq2.out /tmp/wq3.out /tmp/nfgr2.out /tmp/nfgr3.out; do [ -e $f ] || continue; echo "== $f"; grep -E "done|failed|skipped" $f | tail -8; done
