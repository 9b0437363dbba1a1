#!/usr/bin/env bash
# Device call D of 2026-11-22 (one GPU; carry .device_carry_madrm .whl_dense): what call B's deadline cut, and
# the SciFact MADR search call B could not run on one GPU (docs/results/madrm.md).
#   lane 1: the PubMedQA seeds call B skipped, each from its search's best recipe as call B ran it; the best
#           recipes are call B's, carried in .device_carry_madrm/best/<recipe>-pubmedqa.yaml (gitignored:
#           copies of docs/results/madrm/tune-<recipe>-pubmedqa-best.yaml)
#   lane 2: MADR's search on SciFact's validation queries (bench/spaces/madr.yaml, 12 trials), then 3 seeds
#           of the best recipe
# Everything comes back as one $OUT/call-d.tgz.
set -u
export CARRY=.device_carry_madrm WHEELS=.whl_dense RUNS_TAR=0
source bench/device_env.sh
t0=$(date +%s) data=$CARRY/data model=$CARRY/minilm best=$CARRY/best
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
left() { echo $((${LIMIT:-560} - ($(date +%s) - t0))); }
lambda=$(python3 -c "import yaml; print(yaml.safe_load(open('$best/madral-pubmedqa.yaml'))['objectives'][1]['weight'])")
gaps() {  # tag "recipe files" seeds variants... [-- sets...]
  local tag=$1 files=$2 seeds=$3; shift 3
  TAG=$tag bash bench/gpu_run.sh madrm --collections pubmedqa --seeds $seeds --jobs 4 --deadline 200 \
      --hard-deadline $(($(left) - 20)) --recipe-file $files --variants "$@" > /tmp/madrm$tag.out 2>&1
}
(
  gaps -d0 "bibert=$best/bibert-pubmedqa.yaml madr=$best/madr-pubmedqa.yaml" 2 bibert mpbert madr madr_other_cls &
  gaps -d1 "madr=$best/madr-pubmedqa.yaml" 1 madr_other_cls &
  gaps -d2 "madral=$best/madral-pubmedqa.yaml" 2 madral_cls_gating --set objectives.1.weight=$lambda &
  gaps -d3 "madral=$best/madral-pubmedqa.yaml" 2 madral_other_first &
  wait
) &
timeout -s INT ${SEARCH_SECONDS:-270} python3 -m auxir tune --recipe madr --space bench/spaces/madr.yaml \
    --trials ${TRIALS:-12} --jobs ${JOBS:-6} --out /tmp/tune-madr-scifact --dataset $data/scifact --model $model \
    > /tmp/tune-madr-scifact.log 2>&1
echo "search done at $(($(date +%s) - t0)) s"
[ -f /tmp/tune-madr-scifact/best.yaml ] && TAG=-ds bash bench/gpu_run.sh madrm --collections scifact \
    --seeds 0 1 2 --jobs 3 --deadline 120 --hard-deadline $(($(left) - 15)) \
    --recipe-file madr=/tmp/tune-madr-scifact/best.yaml --variants madr > /tmp/madrm-ds.out 2>&1
wait
echo "all done at $(($(date +%s) - t0)) s"
cp /tmp/tune-madr-scifact/trials.jsonl $OUT/tune-madr-scifact.jsonl
cp /tmp/tune-madr-scifact/best.yaml $OUT/tune-madr-scifact-best.yaml 2>/dev/null
cp /tmp/tune-madr-scifact.log /tmp/madrm-*.out $OUT/ 2>/dev/null
cd $OUT && tar czf call-d.tgz --remove-files $(ls | grep -v '^call-d.tgz$')
tail -n 6 /tmp/tune-madr-scifact.log
tail -n 8 /tmp/madrm-*.out
