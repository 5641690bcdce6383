#!/usr/bin/env bash
# `make train-plates`: reproduce the shipped plate reader: render plate crops (seed 0; the validation
# crops come from seed 1 and are never trained on), train, export ONNX, measure the exact-read rate by
# plate width on rendered vehicles (seed 5), then read the real CCPD photos in ../shared/data/images/plates
# (their expected texts are in ../shared/data/SOURCES.md).
set -euo pipefail
cd "$(dirname "$0")/.."
FX=.venv/bin/feixian
OUT=${OUT:-models/feixian-plate-v1.onnx}
STEM="${OUT%.onnx}"
$FX plates train --out "$OUT" --samples "${SAMPLES:-60000}" --epochs "${EPOCHS:-6}" --seed 0 \
  --version "$(basename "$STEM")" --summary "$STEM.train.json"
$FX plates eval --model "$OUT" --seed 5 --per-width 200 --out "$STEM.eval.json"
if [ -d ../shared/data/images/plates ]; then
  $FX plates read --model "$OUT" ../shared/data/images/plates/*.jpg | tee "$STEM.ccpd.jsonl"
fi
