#!/usr/bin/env bash
# The GDMTL issue's extras on SciFact, in one device call (docs/results/gdmtl.md):
#  1. two models kept, seed 0: the tuned ranking-only cross-encoder and GDMTL (their reranked runs give the
#     paper's Figure 8, their training logs the σ² plot);
#  2. doc2query expansions of the whole corpus from the GDMTL model (greedy, and 5 sampled queries a document),
#     and 5 sampled and 5 beam-searched queries of the first documents from GDMTL (and GDMTL_S: SEQ2SEQ=1);
#  3. BM25 (auxir index / retrieve / evaluate) without and with each set of expansions.
#   CARRY=.device_carry_ce WHEELS=.whl_ce bash bench/gdmtl_extras.sh    (on the GPU machine)
# TUNED=0 skips the ranking-only model (Figure 8 needs it); GDMTL=0 skips GDMTL and BM25; SEQ2SEQ=1 adds GDMTL_S, whose examples come from
# the first LIMIT_S2S documents only (Hugging Face's generate decodes one document at a time).
# Everything small (logs, runs, expansions, per-query metrics) ends in $OUT/gdmtl-extras.tar.gz.
set -u
source bench/device_env.sh
carry=${CARRY:-.device_carry_ce}
data=$carry/data/scifact model=$carry/minilm w=/tmp/gdmtl-extras
mkdir -p $w
train() {  # name recipe [overrides...]
  local name=$1 recipe=$2; shift 2
  local sets=()
  for s in "$@" ${EXTRA_SETS:-}; do sets+=(--set "$s"); done  # EXTRA_SETS: e.g. a CPU smoke test's limits
  python3 -m auxir train --recipe $recipe --dataset $data --model $model --seed 0 --output-dir $w/$name \
    --set training.progress=false --set training.keep_best=true "${sets[@]}" > $w/$name.log 2>&1
  echo "$name: $(python3 -c "import json; print(json.load(open('$w/$name/metrics.json'))['reranked'])" 2>&1)"
}
[ "${TUNED:-1}" = 1 ] && train tuned monobert "objectives=[{name: listwise_softmax, weight: 1.0}]" &
[ "${SEQ2SEQ:-0}" = 1 ] && train gdmtl_s gdmtl-s &
examples() {  # model: 5 sampled and 5 beam queries of the first documents (a few go to docs/results/gdmtl/generated/)
  for m in sample beam; do
    python3 -m auxir generate-queries --model $w/$1/best --dataset $data --out $w/$1-${m}5-first.jsonl \
        --method $m --num 5 --top-k 10 --prefix --seed 0 --limit ${LIMIT_S2S:-20} > $w/gen-$1-$m-first.log 2>&1
  done
}
bm25() {  # expansions: none, or the name of a generated set
  local e=$1 extra=()
  [ $e != none ] && extra=(--expansions $w/$e.jsonl)
  python3 -m auxir index --dataset $data --out $w/index-$e "${extra[@]}" > $w/index-$e.log 2>&1
  python3 -m auxir retrieve --index $w/index-$e --dataset $data --split test --k 100 --out $w/bm25-$e.trec \
      > $w/retrieve-$e.log 2>&1
  echo "BM25 expansions=$e"
  python3 -m auxir evaluate --dataset $data --split test --run $w/bm25-$e.trec --metrics nDCG@10 RR@10 R@100 \
      --per-query $w/bm25-$e.csv 2>&1 | tail -n 6
}
if [ "${GDMTL:-1}" = 1 ]; then  # cheapest first, so that a call cut short still brings back the most
  train gdmtl gdmtl
  python3 -m auxir generate-queries --model $w/gdmtl/best --dataset $data --out $w/gdmtl-greedy.jsonl \
      --method greedy --prefix ${LIMIT_DOCS:+--limit $LIMIT_DOCS} > $w/gen-gdmtl-greedy.log 2>&1
  examples gdmtl
  bm25 none
  bm25 gdmtl-greedy
  python3 -m auxir generate-queries --model $w/gdmtl/best --dataset $data --out $w/gdmtl-sample5.jsonl \
      --method sample --num 5 --top-k 10 --prefix --seed 0 ${LIMIT_DOCS:+--limit $LIMIT_DOCS} \
      > $w/gen-gdmtl-sample5.log 2>&1
  bm25 gdmtl-sample5
fi
wait  # the ranking-only model and GDMTL_S
[ -d $w/gdmtl_s/best ] && examples gdmtl_s
tar czf $OUT/gdmtl-extras.tar.gz -C /tmp --exclude='*.safetensors' --exclude='index-*' --exclude=checkpoint-last \
    --exclude=first_stage.trec --exclude=fused.trec gdmtl-extras
