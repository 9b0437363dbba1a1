#!/usr/bin/env bash
# Device call C of 2026-11-22, evening (nvidia-h200-x4; carry .device_carry_ce .whl_ce), one lane per GPU:
#   lane 0  #9: bench/gdmtl_extras.sh, GDMTL only: trained, then its generated queries (greedy over the corpus,
#           examples), BM25 without and with them (greedy first, 5 sampled a document last)
#   lane 1  #9: the same script for GDMTL_S only (trained, examples of the first documents);
#           #10: NFCorpus PARADE with its tuned learning rates (parade.yaml), seeds 0 1 2
#   lane 2  #10: bench/scorer_speed.py twice, alone on its GPU and on CPU cores 0-7 (everything else: 8-63)
#   lane 3  #10: NFCorpus PARADE + MQP (tuned), seeds 0 1 2; #6: SciFact MQP_ALL seed 1, balanced MPP and
#           MQP_ALL seeds 0 and 1
# Everything comes back as one $OUT/call-c.tgz (the device returns at most 8 files). One H200 instead of four:
# GPUS="0 0 0 0" (the speed numbers are then not clean).
set -u
export CARRY=.device_carry_ce WHEELS=.whl_ce RUNS_TAR=0
source bench/device_env.sh
t0=$(date +%s) data=$CARRY/data model=$CARRY/minilm
others="taskset -c 8-$(($(nproc) - 1))"  # every lane but the speed bench
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; nproc
left() { echo $((${LIMIT:-565} - ($(date +%s) - t0))); }  # seconds left of this call
extras() {  # gpu settings...: the extras script, stopped in time for the packing below
  env CUDA_VISIBLE_DEVICES=$1 "${@:2}" $others timeout $(($(left) - 30)) bash bench/gdmtl_extras.sh
}
suite() {  # gpu suite tag collection jobs variants and options...
  CUDA_VISIBLE_DEVICES=$1 TAG=$3 $others bash bench/gpu_run.sh $2 --collections $4 --jobs $5 --deadline 30 \
      --hard-deadline $(($(left) - 15)) --variants "${@:6}" > /tmp/$2$3.out 2>&1
}
lane0() { extras $1 TUNED=0 SEQ2SEQ=0 > /tmp/extras-gdmtl.out 2>&1; }
lane1() {
  extras $1 TUNED=0 SEQ2SEQ=1 GDMTL=0 > /tmp/extras-gdmtl_s.out 2>&1 &
  suite $1 scorers -pt nfcorpus 3 parade --seeds 0 1 2 &
  wait
}
lane2() {
  for i in 1 2; do
    [ $i = 2 ] && [ $(left) -lt 250 ] && break  # the second run only if the first was quick
    CUDA_VISIBLE_DEVICES=$1 taskset -c 0-7 python3 bench/scorer_speed.py --data $data/scifact --model $model \
        --out /tmp/speed$i > /tmp/scorer-speed$i.log 2>&1
    cp /tmp/speed$i/scorer_speed.json $OUT/scorer_speed$i.json
  done
  echo "speed done at $(($(date +%s) - t0)) s"
}
lane3() {
  suite $1 scorers -pmt nfcorpus 3 parade_mqp --seeds 0 1 2 &
  suite $1 sjtf -s1 scifact 1 mqp_all_a0.2 --seeds 1 &
  suite $1 sjtf -gr scifact 4 mpp_a0.2_gr mqp_all_a0.2_gr --seeds 0 1 &
  wait
}
gpus=(${GPUS:-0 1 2 3})
for lane in ${LANES:-0 1 2 3}; do lane$lane ${gpus[$lane]} & done
wait
echo "all done at $(($(date +%s) - t0)) s"
tar czf $OUT/gdmtl-extras.tar.gz -C /tmp --exclude='*.safetensors' --exclude='index-*' --exclude=checkpoint-last \
    --exclude=first_stage.trec --exclude=fused.trec gdmtl-extras
cp /tmp/*.out /tmp/scorer-speed*.log $OUT/ 2>/dev/null
cd $OUT && tar czf call-c.tgz --remove-files $(ls | grep -v '^call-c.tgz$')
tail -n 5 /tmp/scorers-*.out /tmp/sjtf-*.out; tail -n 20 /tmp/extras-*.out; tail -n 4 /tmp/scorer-speed*.log
