#!/usr/bin/env bash
# One device call of the baselines issue's experiments (docs/results/baselines.md says which ran when).
#   bench/gpu_run.sh heads|tune-dense|tune-scorers|speed-scorers|baselines|sjtf|dense|gdmtl|madrm|scorers|qbd [baselines.py args]   (on the GPU machine, with .whl and .device_carry carried)
# Work folders stay in /tmp; only summaries are copied to $OUT (the device returns at most 8 files).
set -u
stage=$1
# The dense suites carry FAISS and a vocabulary-pruned MiniLM instead (pack_device_data.py --prune-vocab).
wheels=.whl carry=.device_carry
case $stage in dense|tune-dense) wheels=.whl_dense carry=.device_carry_dense ;; esac
# CARRY / WHEELS name other packed folders (e.g. .device_carry_ce with PubMedQA, made by pack_device_data.py)
wheels=${WHEELS:-$wheels} carry=${CARRY:-$carry}
WHEELS=$wheels source bench/device_env.sh
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
tune-scorers)
  # CEDR-KNRM, PACRR and PARADE, each on its own GPU (the first three visible), each the 9-point grid of
  # bench/spaces/scorer.yaml on SciFact's validation queries; one tar to $OUT (the device returns 8 files)
  gpus=(${TUNE_GPUS:-0 1 2}) i=0
  for recipe in cedr-knrm pacrr parade; do
    jobs=9; [ $recipe = parade ] && jobs=5  # PARADE: ~16 GiB a SciFact trial, 9 at once ran out of memory
    CUDA_VISIBLE_DEVICES=${gpus[$i]} timeout -s INT ${TUNE_SECONDS:-530} python3 -m auxir tune --recipe $recipe \
        --space bench/spaces/scorer.yaml --sampler grid --trials 9 --jobs $jobs --out /tmp/tune-$recipe \
        --dataset $carry/data/scifact --model $carry/minilm > /tmp/tune-$recipe.log 2>&1 &
    i=$((i + 1))
  done
  wait
  for recipe in cedr-knrm pacrr parade; do tail -14 /tmp/tune-$recipe.log; done
  tar czf $OUT/tune-scorers.tar.gz -C /tmp --exclude=model --exclude=best --exclude='checkpoint*' \
      --exclude=first_stage.trec --exclude='*.npy' tune-cedr-knrm tune-pacrr tune-parade \
      tune-cedr-knrm.log tune-pacrr.log tune-parade.log ;;
speed-scorers)
  # bench/scorer_speed.py: each scorer's training pairs/s and reranking time against CLS, SciFact
  python3 bench/scorer_speed.py --data $carry/data/scifact --model $carry/minilm --out /tmp/speed "${@:2}" \
      > /tmp/scorer-speed.log 2>&1
  cp /tmp/speed/scorer_speed.json /tmp/scorer-speed.log $OUT/; tail -8 /tmp/scorer-speed.log ;;
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
  name=$stage${TAG:-}  # TAG: several runs of one stage at once, e.g. one per GPU
  if [ "${TUNE_JOBS:-0}" -gt 0 ]; then  # the search of the tuned recipe's lr, epochs, negatives and loss, beside
    timeout -s INT 540 python3 -m auxir tune --recipe monobert --space bench/spaces/reranker.yaml --trials 24 \
        --jobs $TUNE_JOBS --out /tmp/tune-$name --dataset .device_carry/data/scifact --model .device_carry/minilm \
        > /tmp/tune-$name.log 2>&1 &
  fi
  python3 bench/baselines.py --suite $stage "${common[@]}" --out /tmp/$name "$@" > /tmp/$name.log 2>&1
  wait
  cp /tmp/$name/results.json.gz $OUT/$name.json.gz; cp /tmp/$name.log $OUT/
  # the run folders' logs, plots and reranked runs (models are deleted by baselines.py); RUNS_TAR=0: not
  [ "${RUNS_TAR:-1}" = 1 ] && tar czf $OUT/$name-runs.tar.gz -C /tmp --exclude=first_stage.trec --exclude=fused.trec --exclude='*.npy' --exclude='*.faiss' --exclude='index*' $name
  [ -d /tmp/tune-$name ] && cp /tmp/tune-$name/trials.jsonl $OUT/tune-$name.jsonl && cp /tmp/tune-$name.log $OUT/
  tail -25 /tmp/tune-$name.log 2>/dev/null; tail -40 /tmp/$name.log ;;
esac
