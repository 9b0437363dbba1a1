#!/usr/bin/env bash
# Device call I (one GPU; carry .device_carry_madrm .whl_dense, as plan a): #11's follow-up on NFCorpus. MpBERT
# beat BiBERT there (0.340 vs 0.321 nDCG@10, docs/results/madrm.md) but trained with madr.yaml's settings (batch
# 64, 7 negatives, lr 4e-5, 7 epochs) and BiBERT with its own. `bibert_madr_settings` is BiBERT with MADR's
# settings, 3 seeds: if it reaches MpBERT, the gain was the recipe. 3 runs at once fit an H100; about 250 s.
set -u
CARRY=.device_carry_madrm WHEELS=.whl_dense TAG=-nf5 RUNS_TAR=0 bash bench/gpu_run.sh madrm --collections nfcorpus \
    --variants bibert_madr_settings --seeds 0 1 2 --jobs 3 --deadline 120 --hard-deadline ${HARD:-545}
