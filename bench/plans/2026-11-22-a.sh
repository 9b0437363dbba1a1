#!/usr/bin/env bash
# Device call A of 2026-11-22 (carry .device_carry .whl_ce; one GPU per lane on nvidia-h200-x4,
# or one lane or two per call on one H200: LANES=0 GPUS="0 0 0 0", then LANES="1 2", then LANES=3):
#   lane 0  #9: bench/gdmtl_extras.sh (GDMTL and GDMTL_S on SciFact, generated queries, BM25 ± expansions)
#           #10: NFCorpus PARADE and PARADE + MQP, seed 1
#   lane 1  #10: PARADE's search, encoder lr 1e-4 x the three new-parameter learning rates (SciFact valid)
#   lane 2  #10: the same at encoder lr 2e-4
#   lane 3  #10: bench/scorer_speed.py twice, alone on its GPU and on CPU cores 0-7 (everything else: 8-63);
#          then #6: SciFact MQP_ALL seed 1, balanced MPP and MQP_ALL seeds 0 and 1
# Everything comes back as one $OUT/call-a.tgz (the device returns at most 8 files).
set -u
export CARRY=.device_carry WHEELS=.whl_ce RUNS_TAR=0
source bench/device_env.sh
t0=$(date +%s) data=$CARRY/data model=$CARRY/minilm lanes=${LANES:-0 1 2 3}
# the speed bench (lane 3) keeps CPU cores 0-7 to itself when other lanes run beside it
others=""; [[ " $lanes " == *" 3 "* && $lanes != 3 ]] && others="taskset -c 8-$(($(nproc) - 1))"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; nproc
left() { echo $((${LIMIT:-565} - ($(date +%s) - t0))); }  # seconds left of this call
tune_parade() {  # gpu lr
  CUDA_VISIBLE_DEVICES=$1 $others timeout -s INT $(left) python3 -m auxir tune --recipe parade \
      --space bench/spaces/scorer-new-lr.yaml --sampler grid --trials 3 --jobs 3 --out /tmp/tune-parade-lr$2 \
      --dataset $data/scifact --model $model --set training.learning_rate=$2 > /tmp/tune-parade-lr$2.log 2>&1
}
scorers() {  # gpu tag variant
  CUDA_VISIBLE_DEVICES=$1 TAG=$2 $others bash bench/gpu_run.sh scorers --collections nfcorpus --variants $3 \
      --seeds 1 --jobs 1 --deadline 60 --hard-deadline $(($(left) - 15)) > /tmp/scorers$2.out 2>&1
}
lane0() {
  CUDA_VISIBLE_DEVICES=$1 TUNED=0 SEQ2SEQ=1 $others timeout $(left) bash bench/gdmtl_extras.sh > /tmp/extras.out 2>&1 &
  scorers $1 -p1 parade &
  scorers $1 -pm1 parade_mqp &
  wait
}
lane1() { tune_parade $1 1e-4; }
lane2() { tune_parade $1 2e-4; }
lane3() {
  local gpu=$1
  for i in 1 2; do
    [ $i = 2 ] && [ $(left) -lt 430 ] && break  # the second run only if the first was quick
    CUDA_VISIBLE_DEVICES=$gpu taskset -c 0-7 python3 bench/scorer_speed.py --data $data/scifact --model $model \
        --out /tmp/speed$i > /tmp/scorer-speed$i.log 2>&1
    cp /tmp/speed$i/scorer_speed.json $OUT/scorer_speed$i.json
  done
  echo "speed done at $(($(date +%s) - t0)) s"
  for spec in "-s1 mqp_all_a0.2 --seeds 1" "-gr mpp_a0.2_gr mqp_all_a0.2_gr --seeds 0 1"; do
    set -- $spec
    CUDA_VISIBLE_DEVICES=$gpu TAG=$1 $others bash bench/gpu_run.sh sjtf --collections scifact --variants ${@:2} \
        --jobs 5 --deadline 30 --hard-deadline $(($(left) - 15)) > /tmp/sjtf$1.out 2>&1 &
  done
  wait
}
# LANES: which of the four run (default all, one per GPU); GPUS: the GPU of each lane (one GPU: GPUS="0 0 0 0")
gpus=(${GPUS:-0 1 2 3})
for lane in $lanes; do lane$lane ${gpus[$lane]} & done
wait
echo "all done at $(($(date +%s) - t0)) s"
for f in /tmp/tune-parade-lr*; do [ -d $f ] && cp $f/trials.jsonl $OUT/$(basename $f).jsonl; done
cp /tmp/tune-parade-lr*.log /tmp/*.out /tmp/scorer-speed*.log $OUT/ 2>/dev/null
cd $OUT && tar czf call-a.tgz --remove-files $(ls | grep -v '^call-a.tgz$')
tail -n 5 /tmp/scorers-*.out /tmp/sjtf-*.out; tail -n 12 /tmp/extras.out; tail -n 4 /tmp/scorer-speed*.log
for f in /tmp/tune-parade-lr*.log; do tail -n 6 $f; done
