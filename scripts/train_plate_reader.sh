#!/usr/bin/env bash
# `make train-plates`: reproduce the shipped plate reader. It is chosen, not trained: rendered-only training
# (`feixian plates train`, feixian-plate-v1) read none of the real CCPD photos, while the PP-OCRv4 text
# recogniser carried by the rapidocr-onnxruntime wheel (the `train` extra; nothing is downloaded) reads real
# plate crops (models/feixian-plate-v2.md). Wrap it into models/, then measure it: the held-out 300 real blue
# crops, the CCPD photos, rendered blue, yellow and green plates, and the thresholds the calibration part
# suggests (copy those into configs/default.yaml `plates:` and feixian/config.py if they change).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${OUT:-models/feixian-plate-v2.onnx}
STEM="${OUT%.onnx}"
$PY -m training.plates.ppocr --out "$OUT" --version "$(basename "$STEM")"
# as deployed: behind the province check (`make train-province`, models/feixian-province-v1.md)
.venv/bin/feixian plates eval --model "$OUT" --province-model "${PROVINCE:-models/feixian-province-v1.onnx}" \
  --seed 5 --per-width "${PER_WIDTH:-100}" --out "$STEM.eval.json"
