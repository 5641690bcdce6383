"""The GPU path (issue 26): `model.device` chooses ONNX Runtime's CUDA provider and fails clearly without one,
`detect_batch` gives exactly `detect`'s results in one network call per input shape, and `feixian bench-gpu` skips
cleanly on a machine without a GPU. Behaviour only: no timing is checked."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import supervision as sv
import yaml
from conftest import HIGHWAY_VIDEO, REPO, need
from test_detector_onnx import anchors, const_model

from feixian.cli import main
from feixian.config import ConfigError, load_config
from feixian.runtime import Runtime
from pipeline.detector import DetectorError, OnnxDetector

SHIPPED_MODEL = load_config(REPO / "configs" / "default.yaml").model_path
DEFAULT = REPO / "configs" / "default.yaml"


@pytest.fixture(scope="module")
def shipped() -> OnnxDetector:
    # Low threshold: more boxes, so more for the batch and the single calls to disagree on.
    return OnnxDetector(need(SHIPPED_MODEL), conf_threshold=0.15)


@pytest.fixture(scope="module")
def highway_frames() -> list[np.ndarray]:
    """Five frames spread over the highway video (traffic in most)."""
    capture = cv2.VideoCapture(str(need(HIGHWAY_VIDEO)))
    frames = []
    for index in (0, 150, 300, 450, 600):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        assert ok, f"frame {index} of {HIGHWAY_VIDEO}"
        frames.append(frame)
    capture.release()
    return frames


def assert_same(batched: sv.Detections, single: sv.Detections) -> None:
    assert len(batched) == len(single)
    np.testing.assert_allclose(batched.xyxy, single.xyxy, atol=1e-3)
    np.testing.assert_allclose(batched.confidence, single.confidence, atol=1e-4)
    assert batched.class_id.tolist() == single.class_id.tolist()
    assert set(batched.data) == set(single.data) == {"class_name", "at_edge"}
    assert batched.data["class_name"].tolist() == single.data["class_name"].tolist()
    assert batched.data["at_edge"].tolist() == single.data["at_edge"].tolist()


def count_runs(monkeypatch, detector: OnnxDetector) -> list[tuple[int, ...]]:
    """The input shape of each network call the detector makes from now on."""
    shapes: list[tuple[int, ...]] = []
    run = detector._session.run

    def counted(names, feed, *args, **kwargs):
        shapes.append(next(iter(feed.values())).shape)
        return run(names, feed, *args, **kwargs)

    monkeypatch.setattr(detector._session, "run", counted)
    return shapes


def test_a_batch_of_real_frames_gives_each_frame_what_detect_gives(shipped, highway_frames, monkeypatch):
    single = [shipped.detect(frame) for frame in highway_frames]
    assert sum(len(d) for d in single) > 0, "the shipped model finds traffic on the highway"
    shapes = count_runs(monkeypatch, shipped)
    batched = shipped.detect_batch(highway_frames)
    assert shapes == [(5, 3, *shipped.input_shape_for(240, 320))]  # one call for all five
    for b, s in zip(batched, single, strict=True):
        assert_same(b, s)


def test_frames_of_two_sizes_are_grouped_and_returned_in_order(shipped, highway_frames, monkeypatch):
    # A 16:9 crop letterboxes to another input shape than the 4:3 frames.
    wide = [np.ascontiguousarray(f[30:210]) for f in highway_frames[:2]]
    frames = [highway_frames[0], wide[0], highway_frames[1], wide[1], highway_frames[2]]
    assert shipped.input_shape_for(180, 320) != shipped.input_shape_for(240, 320)
    single = [shipped.detect(frame) for frame in frames]
    shapes = count_runs(monkeypatch, shipped)
    batched = shipped.detect_batch(frames)
    assert sorted(s[0] for s in shapes) == [2, 3] and len(shapes) == 2
    for b, s in zip(batched, single, strict=True):
        assert_same(b, s)


def test_a_model_of_fixed_batch_one_takes_a_call_per_frame(tmp_path, monkeypatch):
    pred = anchors((32, 32, 20, 10, 1, 0.9), nc=2)
    det = OnnxDetector(const_model(tmp_path / "m.onnx", pred, ["a", "b"]), conf_threshold=0.5)
    frames = [np.zeros((64, 128, 3), np.uint8), np.zeros((64, 64, 3), np.uint8), np.zeros((64, 128, 3), np.uint8)]
    single = [det.detect(f) for f in frames]
    shapes = count_runs(monkeypatch, det)
    batched = det.detect_batch(frames)
    assert shapes == [(1, 3, 64, 64)] * 3
    for b, s in zip(batched, single, strict=True):
        assert_same(b, s)
    assert det.detect_batch([]) == []
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        det.detect_batch([frames[0], np.zeros((64, 64), np.uint8)])


def test_the_cpu_path_uses_the_cpu_provider_only(shipped):
    assert shipped.providers == ["CPUExecutionProvider"]


def settings_with(tmp_path: Path, **model) -> Path:
    """configs/default.yaml with some `model` keys changed."""
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"extends": str(DEFAULT), "model": model}))
    return path


def test_cuda_without_the_cuda_provider_names_the_package_to_install(tmp_path, monkeypatch):
    # Whatever this machine has: the onnxruntime package without CUDA.
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    config = load_config(settings_with(tmp_path, device="cuda"), tmp_path / "data")
    assert config.settings.model.device == "cuda"
    with pytest.raises(DetectorError, match="onnxruntime-gpu") as e:
        Runtime(config).detector_at(config.settings.model.track_threshold)
    assert "CUDAExecutionProvider" in str(e.value) and "model.device: cpu" in str(e.value)


def test_cuda_provider_that_does_not_start_is_no_quiet_fallback(monkeypatch):
    # onnxruntime-gpu on a machine without a GPU: ORT lists the provider, then runs the session on the CPU.
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    real = ort.InferenceSession
    asked: list[list[str]] = []

    def fallen_back(blob, options, providers):
        asked.append(providers)
        return real(blob, options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(ort, "InferenceSession", fallen_back)
    with pytest.raises(DetectorError, match="CUDAExecutionProvider did not start"):
        OnnxDetector(need(SHIPPED_MODEL), device="cuda")
    assert asked == [["CUDAExecutionProvider", "CPUExecutionProvider"]]


def test_device_is_cpu_by_default_and_anything_else_is_refused(tmp_path):
    assert load_config(DEFAULT, tmp_path / "data").settings.model.device == "cpu"
    with pytest.raises(ConfigError, match=r"model\.device") as e:
        load_config(settings_with(tmp_path, device="tpu"), tmp_path / "data")
    assert "'cpu' or 'cuda'" in str(e.value)
    with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
        OnnxDetector(need(SHIPPED_MODEL), device="tpu")


def test_bench_gpu_without_a_gpu_skips_and_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    out = tmp_path / "bench" / "gpu_bench.json"
    assert main(["bench-gpu", "--config", str(DEFAULT), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "skipped" in err and "CUDAExecutionProvider" in err
    result = json.loads(out.read_text())
    assert set(result) == {"skipped", "providers"}
    assert "onnxruntime-gpu" in result["skipped"] and result["providers"] == ["CPUExecutionProvider"]


def test_bench_gpu_on_the_cpu_times_each_batch_size(tmp_path, capsys):
    need(HIGHWAY_VIDEO)
    out = tmp_path / "gpu_bench.json"
    argv = ["bench-gpu", "--config", str(DEFAULT), "--device", "cpu", "--batches", "1,2", "--frames", "4"]
    assert main([*argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["device"] == "cpu" and result["providers"] == ["CPUExecutionProvider"]
    assert result["frame"] == [240, 320] and Path(result["model"]) == SHIPPED_MODEL
    assert set(result["batches"]) == {"1", "2"}
    for batch in result["batches"].values():
        assert isinstance(batch["frames_per_s"], float) and batch["frames_per_s"] > 0
        assert isinstance(batch["ms_per_batch"], float) and batch["ms_per_batch"] > 0
        assert batch["frames"] == 4
    assert result["machine"]["cpus"] >= 1


@pytest.mark.parametrize("argv", [["--batches", "1,x"], ["--batches", "0"], ["--frames", "0"]])
def test_bench_gpu_bad_arguments_are_refused(argv, capsys):
    assert main(["bench-gpu", "--config", str(DEFAULT), "--device", "cpu", *argv]) == 2
    assert "feixian bench-gpu:" in capsys.readouterr().err
