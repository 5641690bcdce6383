#!/usr/bin/env bash
# `make train-truck-state`: the truck-state stage end to end: training, export, its own measures, card.
#
# A small classifier (training/truck_state.py: the first layers of Ultralytics' COCO yolov8n.pt, a pool and a
# linear layer) judges each truck box's state on its crop after the detector (pipeline/truck_state.py). It
# trains on the trucks of the `feixian real-data` set `make train-real` builds (built here if absent) and is
# judged on what it never saw: held-out generated trucks (seed 1001), beside the detector's own judgement of the
# same trucks, and the real trucks of the real sets' test parts. The whole deployed pair (detector + stage) is
# then measured by `feixian eval` with configs/default.yaml (see models/feixian-street-v17.md).
#
# On 2 CPU cores: about 6 min of training, 25 min of measures.
set -euo pipefail
cd "$(dirname "$0")/.."
FX=.venv/bin/feixian
NAME=${NAME:-feixian-truckstate-v1}
SHARED=${SHARED:-../shared}
WORK=${WORK:-data/train-real}
SEED=${SEED:-21}
mkdir -p "$WORK"

if [ ! -f "$WORK/data/data.yaml" ]; then
  $FX real-data --out "$WORK/data" --data-root "$SHARED/data" --teacher "$SHARED/models/yolov8s.pt" \
    --seed "$SEED" --composites 900 --synth-images 1500 --real-repeat 2 --workers "$(nproc)"
fi
[ -f "$WORK/heldout/dataset/data.yaml" ] || $FX synth --seed 1001 --out "$WORK/heldout" --images 600 --scenarios 0
TS=".venv/bin/python -m training.truck_state"
$TS train --data "$WORK/data" --weights "$SHARED/models/yolov8n.pt" --out "$WORK/$NAME.onnx"
$TS eval --model "$WORK/$NAME.onnx" --data "$WORK/heldout" --detector models/feixian-street-v17.onnx \
  > "$WORK/$NAME.heldout.json"
$TS eval --model "$WORK/$NAME.onnx" --data "$WORK"/data/test/* > "$WORK/$NAME.real.json"
for f in "$NAME.onnx" "$NAME.train.json" "$NAME.heldout.json" "$NAME.real.json"; do cp "$WORK/$f" "models/$f"; done

# The shipped pair (configs/default.yaml names this stage behind feixian-street-v17), as make train-real measures
# the detector alone.
DET=models/feixian-street-v17
$FX eval --model "$DET.onnx" --data "$WORK/heldout/dataset/data.yaml" --split all --config configs/default.yaml \
  --out "$WORK/pair.detection.json"
[ -d "$WORK/heldout-scenarios/scenarios" ] || $FX synth --seed 2001 --out "$WORK/heldout-scenarios" --images 0 --scenarios 20
$FX eval --model "$DET.onnx" --scenarios "$WORK/heldout-scenarios/scenarios" --config configs/default.yaml \
  --out "$WORK/pair.events.json"
$FX eval --model "$DET.onnx" --config configs/default.yaml --data real:all --data-root "$SHARED/data" \
  --video "$SHARED/data/video/highway_cctv_320x240.avi" --every 10 --baseline "$SHARED/models/yolov8n.pt" \
  --out "$WORK/pair.real.json"
$TS card --name "$NAME" --model "models/$NAME.onnx" --stage "models/$NAME.heldout.json" \
  --real "models/$NAME.real.json" --reproduce "make train-truck-state   # SEED=$SEED" \
  --deployed "$WORK"/pair.{detection,events,real}.json --alone "$DET".{detection,events,real}.json \
  --out "models/$NAME.md"
