"""`feixian train` end to end on a tiny generated dataset, and what the exported ONNX must carry.

One epoch cannot teach the network anything; the test checks the plumbing a shipped model relies on:
the ONNX loads in the runtime detector, speaks the dataset's classes, records the data fingerprint and
version, detects on a frame, and `feixian eval --data` reports on it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import yaml

from training.train import TrainError, dataset_fingerprint, parse_hyp

pytest.importorskip("ultralytics")

NAMES = ["box", "ball", "bar"]
SIZE = 128


def draw_shape(img: np.ndarray, cls: int, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """Draws one object of class `cls` and returns its YOLO label (cx, cy, w, h, normalised)."""
    w, h = (int(v) for v in rng.integers(20, 48, 2))
    if cls == 2:  # a bar: long and flat
        w, h = int(rng.integers(50, 90)), int(rng.integers(8, 14))
    x0, y0 = int(rng.integers(0, SIZE - w)), int(rng.integers(0, SIZE - h))
    colour = ((40, 40, 220), (40, 200, 40), (220, 120, 30))[cls]
    if cls == 1:
        cv2.ellipse(img, (x0 + w // 2, y0 + h // 2), (w // 2, h // 2), 0, 0, 360, colour, -1)
    else:
        cv2.rectangle(img, (x0, y0), (x0 + w - 1, y0 + h - 1), colour, -1)
    return (x0 + w / 2) / SIZE, (y0 + h / 2) / SIZE, w / SIZE, h / SIZE


def make_dataset(root: Path, n_train: int = 16, n_val: int = 4, seed: int = 0) -> Path:
    """Coloured shapes on grey noise, 1-3 per image, YOLO layout; returns the data.yaml."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for k in range(n):
            img = rng.integers(90, 140, (SIZE, SIZE, 3), dtype=np.uint8)
            rows = []
            for _ in range(int(rng.integers(1, 4))):
                cls = int(rng.integers(0, len(NAMES)))
                rows.append(f"{cls} " + " ".join(f"{v:.6f}" for v in draw_shape(img, cls, rng)))
            cv2.imwrite(str(root / "images" / split / f"{k:03d}.png"), img)
            (root / "labels" / split / f"{k:03d}.txt").write_text("\n".join(rows) + "\n")
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/val", "names": NAMES}))
    return data


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """One epoch of the shipped pico network through the `feixian train` CLI: (data.yaml, summary JSON)."""
    from feixian.cli import main

    tmp = tmp_path_factory.mktemp("train")
    data = make_dataset(tmp / "shapes")
    summary = tmp / "summary.json"
    model_yaml = Path(__file__).resolve().parents[1] / "training" / "models" / "feixian-v8p.yaml"
    flags = {
        "--data": data,
        "--out": tmp / "models" / "shapes.onnx",
        "--model-yaml": model_yaml,
        "--epochs": 1,
        "--imgsz": SIZE,
        "--batch": 8,
        "--workers": 0,
        "--version": "smoke-1",
        "--runs-dir": tmp / "runs",
        "--summary": summary,
        "--hyp": "mosaic=0",
    }
    argv = ["train", *(str(v) for flag in flags.items() for v in flag)]
    assert main(argv) == 0
    return data, json.loads(summary.read_text())


def test_exported_model_runs_in_the_runtime_detector(trained):
    from pipeline.detector import OnnxDetector

    data, summary = trained
    onnx_path = Path(summary["onnx"])
    assert onnx_path.is_file() and Path(summary["best_pt"]).is_file()
    det = OnnxDetector(onnx_path, conf_threshold=0.001)
    assert det.class_names == tuple(NAMES)
    assert det.input_size == (SIZE, SIZE)
    # Exported dynamic in height and width: a 16:9 frame is padded to a stride multiple, not to a square.
    height, width = ort.InferenceSession(str(onnx_path)).get_inputs()[0].shape[2:]
    assert isinstance(height, str) and isinstance(width, str)
    assert det.metadata["data_fingerprint"] == dataset_fingerprint(data) == summary["data_fingerprint"]
    assert det.metadata["feixian_version"] == "smoke-1"
    assert det.metadata["train_epochs"] == "1"
    assert summary["hyp"] == {"mosaic": 0}
    assert summary["epochs"] == 1 and summary["device"] == "cpu"
    assert summary["hardware"] == f"{os.cpu_count()} CPU cores"

    frame = cv2.imread(str(data.parent / "images" / "val" / "000.png"))
    frame = cv2.resize(frame, (200, 150))  # not the input size: the letterbox path runs too
    dets = det.detect(frame)
    assert set(dets.data["class_name"]) <= set(NAMES)
    assert len(dets.xyxy) == len(dets.confidence) == len(dets.class_id)
    assert np.all(dets.xyxy >= 0) and np.all(dets.xyxy[:, [0, 2]] <= 200) and np.all(dets.xyxy[:, [1, 3]] <= 150)


def test_detection_eval_reports_on_the_trained_model(trained, tmp_path):
    from feixian.cli import main

    data, summary = trained
    out = tmp_path / "det.json"
    assert main(["eval", "--model", summary["onnx"], "--data", str(data), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["images"] == 4 and result["split"] == "val"
    assert set(result["per_class_ap50"]) == set(NAMES)
    assert 0 <= result["map50_95"] <= result["map50"] <= 1
    assert result["model"]["classes"] == NAMES
    assert result["model"]["data_fingerprint"] == summary["data_fingerprint"]
    assert result["model"]["version"] == "smoke-1"


def test_fingerprint_follows_the_labels_not_the_images(tmp_path):
    data = make_dataset(tmp_path / "d", n_train=3, n_val=1)
    before = dataset_fingerprint(data)
    assert dataset_fingerprint(data) == before

    image = tmp_path / "d" / "images" / "train" / "001.png"
    image.write_bytes(image.read_bytes() + b"\0")
    assert dataset_fingerprint(data) == before

    label = tmp_path / "d" / "labels" / "train" / "001.txt"
    rows = label.read_text().splitlines()
    rows[0] = "2" + rows[0][1:]  # relabel one object
    label.write_text("\n".join(rows) + "\n")
    assert dataset_fingerprint(data) != before


def test_unusable_dataset_yaml_is_refused(tmp_path):
    with pytest.raises(TrainError, match="not found"):
        dataset_fingerprint(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("names: [a]\n")
    with pytest.raises(TrainError, match="needs 'train' and 'names'"):
        dataset_fingerprint(bad)


def test_training_time_counts_every_part_of_a_resumed_run(tmp_path):
    from training.train import _training_seconds

    # Ultralytics' per-epoch clock starts again at zero when an interrupted run is resumed.
    rows = [(1, 758.7), (2, 1970.0), (3, 2938.2), (4, 3620.7), (5, 306.8), (6, 612.0)]
    (tmp_path / "results.csv").write_text("epoch,time\n" + "".join(f"{e},{t}\n" for e, t in rows))
    assert _training_seconds(tmp_path) == pytest.approx(3620.7 + 612.0)
    (tmp_path / "results.csv").write_text("epoch,time\n1,80.5\n2,161.0\n")
    assert _training_seconds(tmp_path) == pytest.approx(161.0)


def test_hyp_must_be_key_value():
    with pytest.raises(TrainError, match="KEY=VALUE"):
        parse_hyp(["mosaic"])


def test_extra_arguments_cannot_override_the_fixed_ones(tmp_path):
    from training.train import train

    data = make_dataset(tmp_path / "d", n_train=1, n_val=1)
    with pytest.raises(TrainError, match=r"\['epochs', 'plots'\]"):
        train(data, tmp_path / "m.onnx", runs_dir=tmp_path / "runs", extra_args={"plots": True, "epochs": 3})
    assert not (tmp_path / "runs").exists()


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    from feixian.cli import main

    assert main(["train", "--data", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "dataset YAML not found" in capsys.readouterr().err


def test_an_onnx_export_turns_back_into_the_same_network(trained, tmp_path):
    from ultralytics import YOLO

    from training.onnx_weights import checkpoint_from_onnx

    data, summary = trained
    model_yaml = Path(__file__).resolve().parents[1] / "training" / "models" / "feixian-v8p.yaml"
    pt = checkpoint_from_onnx(summary["onnx"], model_yaml, tmp_path / "back.pt")
    again = Path(YOLO(str(pt), task="detect").export(format="onnx", imgsz=SIZE, simplify=False, opset=17))
    x = np.random.default_rng(0).random((1, 3, SIZE, SIZE), dtype=np.float32)
    outputs = [ort.InferenceSession(str(m)).run(None, {"images": x})[0] for m in (summary["onnx"], again)]
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-4, atol=1e-3)


def test_fine_tuning_from_an_onnx_export(trained, tmp_path):
    from feixian.cli import main

    data, summary = trained
    model_yaml = Path(__file__).resolve().parents[1] / "training" / "models" / "feixian-v8p.yaml"
    out = tmp_path / "tuned.onnx"
    argv = ["train", "--data", str(data), "--out", str(out), "--model-yaml", str(model_yaml), "--weights"]
    argv += [summary["onnx"], "--epochs", "1", "--imgsz", str(SIZE), "--batch", "8", "--workers", "0"]
    argv += ["--runs-dir", str(tmp_path / "runs"), "--hyp", "mosaic=0"]
    assert main(argv) == 0
    assert out.is_file()
    # Another architecture cannot take these weights: a clear error, no traceback.
    argv[argv.index("--model-yaml") + 1] = "yolov8n.yaml"
    assert main(argv) == 2


def test_a_network_grown_from_an_export_first_answers_as_the_export(trained, tmp_path):
    """feixian-v8p2 adds a stride-4 level to feixian-v8p: grown from a v8p export, its first three levels
    give the export's output and the new level stays silent until it learns."""
    import torch

    from feixian.cli import main
    from training.evaluate import split_images
    from training.onnx_weights import WeightsError, _calibration_inputs, checkpoint_from_onnx

    data, summary = trained
    models = Path(__file__).resolve().parents[1] / "training" / "models"
    images = split_images(data, "train")[0]
    pt = checkpoint_from_onnx(summary["onnx"], models / "feixian-v8p2.yaml", tmp_path / "grown.pt", images, SIZE, True)
    model = torch.load(pt, weights_only=False)["model"].float().eval()
    x = _calibration_inputs(images[:2], SIZE)
    with torch.no_grad():
        grown = model(x)[0].numpy()
    export = ort.InferenceSession(summary["onnx"]).run(None, {"images": x.numpy()})[0]
    n = export.shape[2]
    assert grown.shape[2] == n + (SIZE // 4) ** 2  # one more anchor per stride-4 cell
    np.testing.assert_allclose(grown[:, :, :n], export, rtol=1e-4, atol=1e-3)
    assert grown[:, 4:, n:].max() < 0.01
    # Growing is no licence to drop weights: the export's must all find a place, and yolov8s is four
    # times as wide, not two.
    with pytest.raises(WeightsError, match="does not fit"):
        checkpoint_from_onnx(summary["onnx"], "yolov8s.yaml", tmp_path / "other.pt", grow=True)
    # Nor does it apply without an export to grow from.
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "g.onnx"), "--grow", "--epochs", "1"]
    assert main(argv) == 2


def test_a_network_widened_from_an_export_first_answers_as_the_export(trained, tmp_path):
    """yolov8n is feixian-v8p at twice the width: widened from a v8p export, it gives the export's output,
    yet its channel copies are not twins (they get different gradients and can learn apart)."""
    import torch

    from training.evaluate import split_images
    from training.onnx_weights import _calibration_inputs, checkpoint_from_onnx

    data, summary = trained
    images = split_images(data, "train")[0]
    pt = checkpoint_from_onnx(summary["onnx"], "yolov8n.yaml", tmp_path / "wide.pt", images, SIZE, True)
    model = torch.load(pt, weights_only=False)["model"].float()
    x = _calibration_inputs(images, SIZE)
    export = ort.InferenceSession(summary["onnx"]).run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        wide = model.eval()(x)[0].numpy()
    np.testing.assert_allclose(wide, export, rtol=1e-4, atol=1e-3)
    reader = model.model[1].conv.weight  # reads layer 0's doubled output
    assert reader.shape[1] == 2 * 8
    assert not torch.allclose(reader[:, 0::2], reader[:, 1::2])


def test_fine_tuning_a_widened_export_starts_from_all_its_weights(trained, tmp_path):
    """yolov8n.yaml says 80 classes: the widened export's class outputs must still carry over into
    training. With a zero learning rate, one epoch leaves every convolution as the widening made it."""
    import torch

    from feixian.cli import main

    data, summary = trained
    runs, out = tmp_path / "runs", tmp_path / "wide.onnx"
    argv = ["train", "--data", str(data), "--out", str(out), "--model-yaml", "yolov8n.yaml", "--grow"]
    argv += ["--weights", summary["onnx"], "--epochs", "1", "--imgsz", str(SIZE), "--batch", "8", "--workers", "0"]
    argv += ["--runs-dir", str(runs), "--summary", str(tmp_path / "s.json")]
    for hyp in ("mosaic=0", "optimizer=SGD", "lr0=0", "warmup_epochs=0", "warmup_bias_lr=0", "weight_decay=0"):
        argv += ["--hyp", hyp]
    assert main(argv) == 0
    start = torch.load(runs / "wide-init.pt", weights_only=False)["model"].state_dict()
    tuned_pt = json.loads((tmp_path / "s.json").read_text())["best_pt"]
    tuned = torch.load(tuned_pt, weights_only=False)["model"].float().state_dict()
    convs = [k for k in start if k.endswith((".weight", ".bias")) and ".bn." not in k]
    assert "model.22.cv3.0.2.weight" in convs  # a class output
    for name in convs:
        # Checkpoints are saved in half precision.
        torch.testing.assert_close(
            tuned[name], start[name].float(), rtol=1e-3, atol=1e-4, msg=lambda m, n=name: f"{n}: {m}"
        )


def test_batch_norms_of_an_onnx_export_keep_the_network_in_training(trained, tmp_path):
    """Fine-tuning runs the network in training mode, where a batch norm normalises by the batch's own
    statistics: calibrated on the batch it sees, the unfolded network must give the export's answer."""
    import torch

    from training.evaluate import split_images
    from training.onnx_weights import _calibration_inputs, checkpoint_from_onnx

    data, summary = trained
    model_yaml = Path(__file__).resolve().parents[1] / "training" / "models" / "feixian-v8p.yaml"
    images = split_images(data, "train")[0]
    batch = _calibration_inputs(images, SIZE)

    def train_mode_error(calibration) -> float:
        pt = checkpoint_from_onnx(summary["onnx"], model_yaml, tmp_path / "back.pt", calibration, SIZE)
        model = torch.load(pt, weights_only=False)["model"].float().eval()
        with torch.no_grad():
            inference = model(batch)[1]  # the head's raw box and class maps
            model.train()
            training = model(batch)
        return max(float((inference[k] - training[k]).abs().max()) for k in ("boxes", "scores"))

    assert train_mode_error(images) < 1e-3
    assert train_mode_error(()) > 0.1


def test_the_export_boxes_as_ultralytics_own_export_with_the_faster_dfl(trained, tmp_path):
    """`feixian train` exports with `last_axis_dfl` (its softmax over the last axis, cheaper in ONNX Runtime):
    every anchor's box and scores are those of Ultralytics' own export of the same checkpoint."""
    import onnx
    from ultralytics import YOLO

    _, summary = trained
    names = {t.name for t in onnx.load(summary["onnx"]).graph.initializer}
    assert any(n.endswith("dfl.bins") for n in names) and not any(n.endswith("dfl.conv.weight") for n in names)
    own = YOLO(summary["best_pt"], task="detect").export(format="onnx", imgsz=SIZE, dynamic=True, simplify=False)
    x = np.random.default_rng(1).random((1, 3, SIZE, SIZE + 32), dtype=np.float32)
    ours, theirs = (ort.InferenceSession(str(m)).run(None, {"images": x})[0] for m in (summary["onnx"], own))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("first", ["training.train", "training.coco_rows"])
@pytest.mark.parametrize(("omp", "threads"), [(None, os.cpu_count()), ("1", 1)])
def test_training_takes_every_core_unless_the_user_says_otherwise(omp, threads, first):
    """Ultralytics' import sets OMP_NUM_THREADS to 1 where it is unset; `feixian train` must still train on
    every core then, and on the user's count where the user set one, even where a training module that imports
    Ultralytics (training.coco_rows) came first."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | ({"OMP_NUM_THREADS": omp} if omp else {})
    code = (
        f"import {first}; import training.train as t, ultralytics.utils.torch_utils as u; t._train_on_every_core();"
        " print(u.NUM_THREADS)"
    )
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=repo, capture_output=True, text=True, check=True)
    assert int(out.stdout.split()[-1]) == threads
