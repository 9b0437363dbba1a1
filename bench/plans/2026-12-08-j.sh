#!/usr/bin/env bash
# Device call J (one GPU; carry .device_carry_all .whl_ce, made by
# `bench/pack_device_data.py --out .device_carry_all nfcorpus cranfield vaswani`, 54 MiB): the 8 runs #6 still
# lacks from calls D and F of 2026-12-07 (docs/results/sjtf.md, "What was not run"): NFCorpus seed 2 of
# mqp_a0.2_gr and mpp_a0.2_gr, and Cranfield CV seed 0's six unfinished folds. 8 processes at once (a Cranfield
# run holds ~8.5 GB of GPU memory, an NFCorpus one about as much); about 350 s. `--folds` applies to every
# variant of a call, hence one lane per fold.
set -u
export CARRY=.device_carry_all WHEELS=.whl_ce RUNS_TAR=0
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
limits=(--deadline 120 --hard-deadline ${HARD:-560})
TAG=-nfgr4 bash bench/gpu_run.sh sjtf --collections nfcorpus --variants mqp_a0.2_gr mpp_a0.2_gr --seeds 2 \
    --jobs 2 "${limits[@]}" > /tmp/j-nf.out 2>&1 &
lane() {  # fold, variants
  TAG=-cranfield0-f$1 bash bench/gpu_run.sh sjtf --collections cranfield --cv-seeds 0 --folds $1 \
      --variants "${@:2}" --jobs 2 "${limits[@]}" > /tmp/j-f$1.out 2>&1 &
}
lane 1 mpp_a0.2_gr mqp_a0.2_gr
lane 2 mqp_all_a0.2 mqp_all_a0.2_gr
lane 4 mpp_a0.2 mqp_a0.05_gr
wait
grep -hE "done|failed|skipped" /tmp/j-*.out | grep -v "^|" | tail -10
