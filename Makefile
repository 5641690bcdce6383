# feixian: `make run` (the demo, configs/demo.yaml, embedded) and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
FEIXIAN := $(VENV)/bin/feixian
DATA ?= data
DEMO_DIR := $(DATA)/demo
RUN_DIR := $(DATA)/run
BENCH_DIR := $(DATA)/bench
DEMO_USER := demo
DEMO_PASSWORD := feixian-demo

.PHONY: run check test test-slow lint bench bench-gpu train train-real train-stages train-plates train-province demo venv venv-dev system-deps clean

# Runtime only (no PyTorch): what `make run` needs.
$(VENV)/.runtime: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

# Training (Ultralytics + PyTorch CPU) and test tools.
$(VENV)/.dev: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $(VENV)/.runtime $@

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

# Browser tests drive Debian's chromium (Playwright's own browser download cannot work offline);
# the CJK font makes zh-CN pages render in screenshots.
system-deps:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi wqy; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -q chromium fonts-wqy-microhei >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && apt-get install -y -q chromium fonts-wqy-microhei >/dev/null)) \
	     || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "warning: not root, cannot install chromium; browser tests will be skipped"; fi; \
	fi

$(DEMO_DIR)/.complete: $(VENV)/.runtime
	$(FEIXIAN) synth --demo --out $(DEMO_DIR)
	touch $@

demo: $(DEMO_DIR)/.complete

run: $(VENV)/.runtime $(DEMO_DIR)/.complete
	printf '%s\n' '$(DEMO_PASSWORD)' | $(FEIXIAN) users add $(DEMO_USER) --password-stdin --role reviewer \
	  --display-name 演示审核员 --exist-ok --config configs/demo.yaml --data-dir $(RUN_DIR)
	@echo "feixian review UI: http://127.0.0.1:8000  login: $(DEMO_USER) / $(DEMO_PASSWORD)"
	$(FEIXIAN) run --config configs/demo.yaml --data-dir $(RUN_DIR)

# The quick loop (under two minutes on 2 cores): lint, then unit tests and doctests. Left out, and run by
# `make test`: tests that need the PostgreSQL server; browser, end-to-end, live-run, process-signal and
# object-store fault tests; acceptance on real footage and real plate crops (tests named real_footage or
# held_out_real, and these modules); training runs and model exports; and a generator test that exhausts
# its retries.
CHECK_LEFT_OUT := browser_review browser_keyboard browser_legal browser_reviewer_tools ops_page end_to_end_demo \
  end_to_end_highway run_live shutdown_signals fault_storage eval_real coco_acceptance training_smoke plates_training \
  dual_head motion_gate_replay
CHECK_NAMES := not real_footage and not held_out_real and not too_small_for_any_camera
check: lint
	$(VENV)/bin/pytest -q -m "not slow and not postgres" -k "$(CHECK_NAMES)" $(CHECK_LEFT_OUT:%=--ignore=tests/test_%.py)

test: $(VENV)/.dev system-deps
	$(VENV)/bin/pytest -q

# pytest exits 5 when the marker selects nothing: not a failure.
test-slow: $(VENV)/.dev system-deps
	$(VENV)/bin/pytest -q -m slow || [ $$? = 5 ]

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# Speed on this machine of configs/default.yaml on two generated one-minute scenarios (seed 4001: never trained
# or tuned on), JSON in $(BENCH_DIR)/bench.json: detector latency, whole-pipeline frames/s with the motion gate
# and detecting every frame, the hand-written Ultralytics track() loop on the same frames (so the train extra),
# event recall gated and not, 2-fps points held in real time, peak memory (training/bench.py). Then the review UI
# with 100,000 cases in PostgreSQL, JSON in $(BENCH_DIR)/review_bench.json: queue and case pages p50/p95, and the
# next case on screen after a decision in Chromium (training/review_bench.py).
$(BENCH_DIR)/.complete: $(VENV)/.runtime
	$(FEIXIAN) synth --seed 4001 --out $(BENCH_DIR) --images 0 --scenarios 2 --duration 60
	touch $@

bench: $(VENV)/.dev system-deps $(BENCH_DIR)/.complete
	$(FEIXIAN) bench --config configs/default.yaml --scenarios $(BENCH_DIR)/scenarios --out $(BENCH_DIR)/bench.json
	$(FEIXIAN) bench-review --config configs/demo.yaml --out $(BENCH_DIR)/review_bench.json

# Detector frames/s of configs/default.yaml's model on ONNX Runtime's CUDA provider at batch 1, 8 and 32, on frames
# of the highway video beside the repo, JSON in $(BENCH_DIR)/gpu_bench.json (training/gpu_bench.py). Needs
# onnxruntime-gpu in place of onnxruntime and a CUDA GPU; without them it writes why it skipped and passes.
bench-gpu: $(VENV)/.dev
	$(FEIXIAN) bench-gpu --config configs/default.yaml --out $(BENCH_DIR)/gpu_bench.json

train: $(VENV)/.dev
	./scripts/train_shipped_model.sh

# The real-camera detector's network (docs/models/feixian-street-v17.md, shipped as v18 under today's fusion rule):
# COCO yolov8n plus a class branch trained on `feixian real-data` (training/dual_head.py).
train-real: $(VENV)/.dev
	./scripts/train_real_model.sh

# The second looks behind it (models/feixian-truckstate-v1.md, models/feixian-itemcheck-v2.md): crop classifiers
# on the same data (training/truck_state.py, training/item_check.py).
train-stages: $(VENV)/.dev
	./scripts/train_stages.sh

train-plates: $(VENV)/.dev
	./scripts/train_plate_reader.sh

# The province character's own check (models/feixian-province-v1.md); `feixian plates eval --province-model` then.
train-province: $(VENV)/.dev
	$(FEIXIAN) plates train-province --out models/feixian-province-v1.onnx --version feixian-province-v1

clean:
	rm -rf $(DATA) runs
