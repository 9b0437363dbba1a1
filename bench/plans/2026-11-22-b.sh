#!/usr/bin/env bash
# Device call B of 2026-11-22 (nvidia-h200-x4; carry .device_carry_madrm .whl_dense): #11's searches, then
# every MADRM variant re-run from its search's best recipe, 3 seeds (docs/results/madrm.md).
#   phase 1, one search per GPU, each on its collection's validation queries:
#     GPU 0 BiBERT (bench/spaces/biencoder.yaml), GPU 1 MADRAL (madral.yaml: λ, new-parameter lr and the
#     bi-encoder's knobs), GPU 2 MADR (madr.yaml), all on PubMedQA; GPU 3 MADR on SciFact (madr.yaml)
#   phase 2, bench/baselines.py --suite madrm with --recipe-file NAME=<search>/best.yaml:
#     GPU 0 bibert, mpbert, madr, madr_other_cls (MADR's search); GPU 1 mtbert (BiBERT's search + MADRAL's λ),
#     madral_weighted_sum, madral_cls_gating (MADRAL's search, its λ on the one aspect loss they keep);
#     GPU 2 madral, madral_other_cls, madral_other_first; GPU 3 madral_pre (MADRAL's search + 500 steps of
#     eq. 7) and SciFact's madr (its own search); SciFact's BiBERT is dense.md's tuned bi-encoder.
# Everything comes back as one $OUT/call-b.tgz.
set -u
export CARRY=.device_carry_madrm WHEELS=.whl_dense RUNS_TAR=0
source bench/device_env.sh
t0=$(date +%s) data=$CARRY/data model=$CARRY/minilm
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
left() { echo $((${LIMIT:-565} - ($(date +%s) - t0))); }
search() {  # gpu recipe space collection trials
  CUDA_VISIBLE_DEVICES=$1 timeout -s INT ${SEARCH_SECONDS:-270} python3 -m auxir tune --recipe $2 \
      --space bench/spaces/$3.yaml --trials $5 --jobs ${JOBS:-12} --out /tmp/tune-$2-$4 --dataset $data/$4 \
      --model $model ${SEARCH_SETS:-} > /tmp/tune-$2-$4.log 2>&1
}
# one H200 instead of four: GPUS="0 0 0 0" JOBS=5 TRIALS_PUBMEDQA=15 SCIFACT=0 SUITE_JOBS=4
g=(${GPUS:-0 1 2 3}) tp=${TRIALS_PUBMEDQA:-24}
search ${g[0]} bibert biencoder pubmedqa $tp &
search ${g[1]} madral madral pubmedqa $tp &
search ${g[2]} madr madr pubmedqa $tp &
[ "${SCIFACT:-1}" = 1 ] && search ${g[3]} madr madr scifact 12 &
wait
echo "searches done at $(($(date +%s) - t0)) s"
best() { [ -f /tmp/tune-$2-$3/best.yaml ] && echo "$1=/tmp/tune-$2-$3/best.yaml"; }  # name recipe collection
lambda=$(python3 -c "import yaml; print(yaml.safe_load(open('/tmp/tune-madral-pubmedqa/best.yaml'))['objectives'][1]['weight'])" || echo 0.1)
suite() {  # gpu tag collection "recipe files" variants... [-- sets...]
  local gpu=${g[$1]} tag=$2 collection=$3 files=$4; shift 4
  CUDA_VISIBLE_DEVICES=$gpu TAG=$tag bash bench/gpu_run.sh madrm --collections $collection --seeds 0 1 2 \
      --jobs ${SUITE_JOBS:-9} --deadline 60 --hard-deadline $(($(left) - 20)) --recipe-file $files --variants "$@" \
      ${SUITE_SETS:-} > /tmp/madrm$tag.out 2>&1
}
suite 0 -g0 pubmedqa "$(best bibert bibert pubmedqa) $(best madr madr pubmedqa)" bibert mpbert madr madr_other_cls &
suite 1 -g1 pubmedqa "$(best bibert bibert pubmedqa) $(best madral madral pubmedqa)" mtbert madral_weighted_sum \
    madral_cls_gating --set objectives.1.weight=$lambda &
suite 2 -g2 pubmedqa "$(best madral madral pubmedqa)" madral madral_other_cls madral_other_first &
suite 3 -g3 pubmedqa "$(best madral-pre madral pubmedqa)" madral_pre --set architecture.pretraining.steps=500 \
    architecture.pretraining.new_parameters_learning_rate=1e-3 &
[ "${SCIFACT:-1}" = 1 ] && suite 3 -g3s scifact "$(best madr madr scifact)" madr &
wait
echo "all done at $(($(date +%s) - t0)) s; MADRAL λ = $lambda"
for f in /tmp/tune-*-*/; do n=$(basename $f); cp $f/trials.jsonl $OUT/$n.jsonl; cp $f/best.yaml $OUT/$n-best.yaml; done
cp /tmp/tune-*.log /tmp/madrm-*.out $OUT/ 2>/dev/null
cd $OUT && tar czf call-b.tgz --remove-files $(ls | grep -v '^call-b.tgz$')
for f in /tmp/tune-*.log; do echo "== $f"; tail -n 4 $f; done
tail -n 14 /tmp/madrm-*.out
