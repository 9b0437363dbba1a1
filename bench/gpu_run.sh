#!/usr/bin/env bash
# One device call of the baselines issue's experiments (docs/results/baselines.md says which ran when).
#   bench/gpu_run.sh heads|baselines|sjtf|dense|gdmtl|madrm|scorers|qbd [baselines.py args]   (on the GPU machine, with .whl and .device_carry carried)
# Work folders stay in /tmp; only summaries are copied to $OUT (the device returns at most 8 files).
set -u
stage=$1
# The dense suites carry FAISS and a vocabulary-pruned MiniLM instead (pack_device_data.py --prune-vocab).
wheels=.whl carry=.device_carry
case $stage in dense|tune-dense) wheels=.whl_dense carry=.device_carry_dense ;; esac
# CARRY / WHEELS name other packed folders (e.g. .device_carry_ce with PubMedQA, made by pack_device_data.py)
wheels=${WHEELS:-$wheels} carry=${CARRY:-$carry}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $wheels/*.whl || exit 1
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True JAX_PLATFORMS=cpu PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 AUXIR_CACHE=/tmp/auxir-cache
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
common=(--data-root $carry/data --model $carry/minilm)
case $stage in
heads)
  # the head comparison (2 seeds) and the hyper-parameter search share the GPU
  python3 bench/baselines.py --suite heads "${common[@]}" --out /tmp/heads --jobs 4 --collections scifact \
      --seeds 0 1 --set training.early_stopping_patience=3 --deadline 400 --hard-deadline 560 > /tmp/heads.log 2>&1 &
  timeout -s INT 545 python3 -m auxir tune --recipe monobert --space bench/spaces/reranker.yaml --trials 24 --jobs 4 \
      --out /tmp/tune --dataset .device_carry/data/scifact --model .device_carry/minilm \
      --set training.early_stopping_patience=3 > /tmp/tune.log 2>&1
  wait
  cp /tmp/heads/results.json.gz $OUT/heads.json.gz; cp /tmp/heads.log /tmp/tune.log /tmp/tune/trials.jsonl $OUT/
  cp /tmp/tune/best.yaml $OUT/tune-best.yaml
  tail -30 /tmp/tune.log; tail -12 /tmp/heads.log ;;
tune-dense)
  # the bi-encoder's and CODER's searches share the GPU (SciFact, validation queries)
  for recipe in biencoder coder; do
    timeout -s INT 530 python3 -m auxir tune --recipe $recipe --space bench/spaces/$recipe.yaml --trials 40 --jobs 4 \
        --out /tmp/tune-$recipe --dataset $carry/data/scifact --model $carry/minilm > /tmp/tune-$recipe.log 2>&1 &
  done
  wait
  for recipe in biencoder coder; do
    cp /tmp/tune-$recipe/trials.jsonl $OUT/tune-$recipe.jsonl; cp /tmp/tune-$recipe/best.yaml $OUT/tune-$recipe-best.yaml
    cp /tmp/tune-$recipe.log $OUT/; tail -15 /tmp/tune-$recipe.log
  done ;;
baselines|sjtf|dense|gdmtl|madrm|scorers|qbd)
  shift
  if [ "${TUNE_JOBS:-0}" -gt 0 ]; then  # the search of the tuned recipe's lr, epochs, negatives and loss, beside
    timeout -s INT 540 python3 -m auxir tune --recipe monobert --space bench/spaces/reranker.yaml --trials 24 \
        --jobs $TUNE_JOBS --out /tmp/tune-$stage --dataset .device_carry/data/scifact --model .device_carry/minilm \
        > /tmp/tune-$stage.log 2>&1 &
  fi
  python3 bench/baselines.py --suite $stage "${common[@]}" --out /tmp/$stage "$@" > /tmp/$stage.log 2>&1
  wait
  cp /tmp/$stage/results.json.gz $OUT/$stage.json.gz; cp /tmp/$stage.log $OUT/
  # the run folders' logs, plots and reranked runs (models are deleted by baselines.py)
  tar czf $OUT/$stage-runs.tar.gz -C /tmp --exclude=first_stage.trec --exclude=fused.trec --exclude='*.npy' --exclude='*.faiss' --exclude='index*' $stage
  [ -d /tmp/tune-$stage ] && cp /tmp/tune-$stage/trials.jsonl $OUT/tune-$stage.jsonl && cp /tmp/tune-$stage.log $OUT/
  tail -25 /tmp/tune-$stage.log 2>/dev/null; tail -40 /tmp/$stage.log ;;
esac
