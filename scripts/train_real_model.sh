#!/usr/bin/env bash
# `make train-real`: the real-footage detector end to end: data, training, export, evaluation, card.
#
# The detector is Ultralytics' COCO checkpoint (../shared/models/yolov8n.pt) whole, so person, car, table, chair
# and umbrella are found on real pixels at least where yolov8n finds them, plus one narrow class branch for all
# of feixian's classes (training/dual_head.py). Only that branch trains, on `feixian real-data`: the train parts
# of the real photo sets (pseudo-labelled by yolov8s for what a set leaves unlabelled), rendered stalls, carts,
# goods and trucks composited onto those photos, and generated streets. It is judged on what it never saw: the held-out parts of the real sets beside
# yolov8n itself, the real highway video, held-out generated images (seed 1001) and scenario videos (seed 2001).
#
# On 2 CPU cores: data about 5 min, training TIME hours (Ultralytics' `time` sets the epochs), evaluation
# about 20 min. DEVICE=0 trains on a CUDA GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
FX=.venv/bin/feixian
# v17 was trained so; v18 is its branch under today's fusion rule (models/feixian-street-v18.md): a new run is v19
NAME=${NAME:-feixian-street-v19}
SHARED=${SHARED:-../shared}
WORK=${WORK:-data/train-real}
DEVICE=${DEVICE:-cpu}
TIME=${TIME:-0.55}
SEED=${SEED:-21}
mkdir -p "$WORK"

if [ ! -f "$WORK/data/data.yaml" ]; then
  $FX real-data --out "$WORK/data" --data-root "$SHARED/data" --teacher "$SHARED/models/yolov8s.pt" \
    --seed "$SEED" --composites 900 --synth-images 1500 --real-repeat 2 --workers "$(nproc)"
fi
DUAL=".venv/bin/python -m training.dual_head"
$DUAL init --coco "$SHARED/models/yolov8n.pt" --out "$WORK/branch-init.pt"
# Every core by default; on a machine shared with other jobs set OMP_NUM_THREADS=1: two torch threads that
# wait for each other at every layer ran 8x slower there.
OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)} $DUAL train --coco "$SHARED/models/yolov8n.pt" \
  --init "$WORK/branch-init.pt" --data "$WORK/data/data.yaml" --run-dir "$WORK/runs/$NAME" \
  --hours "$TIME" --seed 0 --device "$DEVICE" --version "${NAME##*-v}.0" \
  --out "$WORK/$NAME.onnx" --summary "$WORK/$NAME.train.json"

$FX eval --model "$WORK/$NAME.onnx" --config configs/default.yaml --data real:all --data-root "$SHARED/data" \
  --video "$SHARED/data/video/highway_cctv_320x240.avi" --every 10 --baseline "$SHARED/models/yolov8n.pt" \
  --out "$WORK/real.json"
[ -f "$WORK/heldout/dataset/data.yaml" ] || $FX synth --seed 1001 --out "$WORK/heldout" --images 600 --scenarios 0
$FX eval --model "$WORK/$NAME.onnx" --data "$WORK/heldout/dataset/data.yaml" --split all --config configs/default.yaml \
  --out "$WORK/detection.json"
[ -d "$WORK/heldout-scenarios/scenarios" ] || $FX synth --seed 2001 --out "$WORK/heldout-scenarios" --images 0 --scenarios 20
$FX eval --model "$WORK/$NAME.onnx" --scenarios "$WORK/heldout-scenarios/scenarios" --config configs/default.yaml \
  --out "$WORK/events.json"
.venv/bin/python -m training.card --name "$NAME" --train "$WORK/$NAME.train.json" \
  --detection "$WORK/detection.json" --events "$WORK/events.json" --real "$WORK/real.json" \
  --command "make train-real   # TIME=$TIME SEED=$SEED DEVICE=$DEVICE" --out "models/$NAME.md"
for f in "$NAME.onnx" "$NAME.train.json"; do cp "$WORK/$f" "models/$f"; done
cp "$WORK/detection.json" "models/$NAME.detection.json"
cp "$WORK/events.json" "models/$NAME.events.json"
cp "$WORK/real.json" "models/$NAME.real.json"
