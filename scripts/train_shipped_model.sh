#!/usr/bin/env bash
# `make train`: reproduce the shipped detector end to end (data, training, export, evaluation, card).
# Training seeds and held-out seeds never overlap: training images come from seed 1, the held-out
# images and scenario videos from seeds 1001 and 2001.
set -euo pipefail
cd "$(dirname "$0")/.."
FX=.venv/bin/feixian
NAME=${NAME:-feixian-street-v1}
EPOCHS=${EPOCHS:-40}
IMAGES=${IMAGES:-3200}
WORK=${WORK:-data/train}
mkdir -p "$WORK"

$FX synth --seed 1 --out "$WORK/synth" --images "$IMAGES" --scenarios 0
$FX train --data "$WORK/synth/dataset/data.yaml" --model-yaml training/models/feixian-v8p.yaml \
  --epochs "$EPOCHS" --imgsz 320 --batch 32 --seed 0 --version 1.0 --runs-dir "$WORK/runs" \
  --hyp close_mosaic=5 --hyp warmup_epochs=1 --hyp cache=true \
  --out "models/$NAME.onnx" --summary "$WORK/train.json"
$FX synth --seed 1001 --out "$WORK/heldout" --images 600 --scenarios 0
$FX eval --model "models/$NAME.onnx" --data "$WORK/heldout/dataset/data.yaml" --split all --out "$WORK/detection.json"
$FX synth --seed 2001 --out "$WORK/heldout-scenarios" --images 0 --scenarios 20
$FX eval --model "models/$NAME.onnx" --scenarios "$WORK/heldout-scenarios/scenarios" --out "$WORK/events.json"
.venv/bin/python -m training.card --name "$NAME" --train "$WORK/train.json" --detection "$WORK/detection.json" \
  --events "$WORK/events.json" --command "make train   # EPOCHS=$EPOCHS IMAGES=$IMAGES" --out "models/$NAME.md"
cp "$WORK/train.json" "models/$NAME.train.json"
cp "$WORK/detection.json" "models/$NAME.detection.json"
cp "$WORK/events.json" "models/$NAME.events.json"
