#!/usr/bin/env bash
# `make train-stages`: the two second looks behind the real-camera detector, end to end: training, export,
# their own measures, cards.
#
# Two small classifiers (the first layers of Ultralytics' COCO yolov8n.pt, a pool and a linear layer) look again
# at the detector's boxes on their crops (pipeline/crop_stages.py): the truck-state stage judges each truck plain,
# dirty or uncovered (training/truck_state.py), the item check drops stall, cart and goods boxes unlike a real
# item and re-scores every item box by which item its crop shows (training/item_check.py). Both train on the
# `feixian real-data` set `make train-real` builds (built here if absent) and are judged on what they never saw:
# held-out generated images (seed 1001) and the test parts of the real sets and the real highway video. The
# deployed whole (configs/default.yaml: detector and both) is then measured by `feixian eval`, beside the detector
# alone (models/feixian-street-v18.md; the truck-state v1 was trained behind v17, the item check v2 behind v18).
#
# On 2 CPU cores: about 15 min of training, 25 min of measures.
set -euo pipefail
cd "$(dirname "$0")/.."
FX=.venv/bin/feixian
NAME=${NAME:-feixian-truckstate-v1}
CHECK=${CHECK:-feixian-itemcheck-v2}
SHARED=${SHARED:-../shared}
WORK=${WORK:-data/train-real}
SEED=${SEED:-21}
mkdir -p "$WORK"

if [ ! -f "$WORK/data/data.yaml" ]; then
  $FX real-data --out "$WORK/data" --data-root "$SHARED/data" --teacher "$SHARED/models/yolov8s.pt" \
    --seed "$SEED" --composites 900 --synth-images 1500 --real-repeat 2 --workers "$(nproc)"
fi
[ -f "$WORK/heldout/dataset/data.yaml" ] || $FX synth --seed 1001 --out "$WORK/heldout" --images 600 --scenarios 0
DET=models/feixian-street-v18
TS=".venv/bin/python -m training.truck_state"
$TS train --data "$WORK/data" --weights "$SHARED/models/yolov8n.pt" --out "$WORK/$NAME.onnx"
$TS eval --model "$WORK/$NAME.onnx" --data "$WORK/heldout" --detector "$DET.onnx" > "$WORK/$NAME.heldout.json"
$TS eval --model "$WORK/$NAME.onnx" --data "$WORK"/data/test/* > "$WORK/$NAME.real.json"
for f in "$NAME.onnx" "$NAME.train.json" "$NAME.heldout.json" "$NAME.real.json"; do cp "$WORK/$f" "models/$f"; done

IC=".venv/bin/python -m training.item_check"
$IC train --data "$WORK/data" --detector "$DET.onnx" --weights "$SHARED/models/yolov8n.pt" --out "$WORK/$CHECK.onnx"
$IC eval --model "$WORK/$CHECK.onnx" --detector "$DET.onnx" --heldout "$WORK/heldout" --real "$WORK"/data/test/* \
  --video "$SHARED/data/video/highway_cctv_320x240.avi" > "$WORK/$CHECK.eval.json"
for f in "$CHECK.onnx" "$CHECK.train.json" "$CHECK.eval.json"; do cp "$WORK/$f" "models/$f"; done
$IC card --name "$CHECK" --model "models/$CHECK.onnx" --reproduce "make train-stages   # SEED=$SEED" \
  --out "models/$CHECK.md"

# The deployed whole (configs/default.yaml names both behind feixian-street-v18), as make train-real measures the
# detector alone.
$FX eval --model "$DET.onnx" --data "$WORK/heldout/dataset/data.yaml" --split all --config configs/default.yaml \
  --out "$WORK/pair.detection.json"
[ -d "$WORK/heldout-scenarios/scenarios" ] || $FX synth --seed 2001 --out "$WORK/heldout-scenarios" --images 0 --scenarios 20
$FX eval --model "$DET.onnx" --scenarios "$WORK/heldout-scenarios/scenarios" --config configs/default.yaml \
  --out "$WORK/pair.events.json"
$FX eval --model "$DET.onnx" --config configs/default.yaml --data real:all --data-root "$SHARED/data" \
  --video "$SHARED/data/video/highway_cctv_320x240.avi" --every 10 --baseline "$SHARED/models/yolov8n.pt" \
  --out "$WORK/pair.real.json"
$TS card --name "$NAME" --model "models/$NAME.onnx" --stage "models/$NAME.heldout.json" \
  --real "models/$NAME.real.json" --reproduce "make train-stages   # SEED=$SEED" \
  --deployed "$WORK"/pair.{detection,events,real}.json --alone "$DET".{detection,events,real}.json \
  --out "models/$NAME.md"
