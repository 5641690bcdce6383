"""OnnxDetector: decoding on hand-built ONNX graphs, bad files, and agreement with Ultralytics on real material."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import COCO_IMAGES, need

from pipeline.detector import DetectorError, OnnxDetector, nms
from pipeline.taxonomy import CLASSES, COCO_CLASS_MAP


def const_model(path: Path, pred: np.ndarray, names: list[str], input_shape=(1, 3, 64, 64), **meta) -> Path:
    """An ONNX file whose output is `pred` whatever the image: decoding can be checked to the pixel."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(pred.shape))
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))
    node = helper.make_node("Constant", [], ["output0"], value=numpy_helper.from_array(pred.astype(np.float32)))
    model = helper.make_model(helper.make_graph([node], "g", [inp], [out]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"names": repr(dict(enumerate(names))), **meta}
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path


def anchors(*rows: tuple[float, float, float, float, int, float], nc: int) -> np.ndarray:
    """(1, 4+nc, N) from rows (cx, cy, w, h, class, score) in letterboxed input pixels."""
    pred = np.zeros((1, 4 + nc, len(rows)), np.float32)
    for j, (cx, cy, w, h, c, s) in enumerate(rows):
        pred[0, :4, j] = cx, cy, w, h
        pred[0, 4 + c, j] = s
    return pred


def test_boxes_are_mapped_back_through_the_letterbox(tmp_path):
    # A 128x64 (w x h) frame in a 64x64 input: scale 0.5, 16 px of grey above and below.
    pred = anchors((32, 32, 20, 10, 1, 0.9), nc=2)
    det = OnnxDetector(const_model(tmp_path / "m.onnx", pred, ["a", "b"]), conf_threshold=0.5)
    dets = det.detect(np.zeros((64, 128, 3), np.uint8))
    np.testing.assert_allclose(dets.xyxy, [[44, 22, 84, 42]])
    assert dets.class_id.tolist() == [1]
    assert dets.data["class_name"].tolist() == ["b"]
    assert dets.confidence.tolist() == pytest.approx([0.9])
    assert det.input_size == (64, 64) and not det.dynamic_input
    assert det.input_shape_for(64, 128) == (64, 64)  # a fixed-shape model pads to its full input
    assert det.class_names == ("a", "b")


def test_boxes_touching_the_frame_border_are_marked(tmp_path):
    # 64x64 frame, no letterbox: one box clipped at the left, one within 2 px of the bottom, one inside.
    pred = anchors((4, 20, 12, 10, 0, 0.9), (40, 57, 10, 10, 0, 0.9), (30, 30, 8, 8, 0, 0.9), nc=1)
    det = OnnxDetector(const_model(tmp_path / "m.onnx", pred, ["a"]), conf_threshold=0.5)
    dets = det.detect(np.zeros((64, 64, 3), np.uint8))
    assert dict(zip(dets.xyxy[:, 0].round().tolist(), dets.data["at_edge"].tolist(), strict=True)) == {
        0.0: True,
        35.0: True,
        26.0: False,
    }


def test_threshold_and_class_aware_nms(tmp_path):
    pred = anchors(
        (30, 30, 20, 20, 0, 0.9),
        (31, 30, 20, 20, 0, 0.8),  # same class, overlapping: suppressed
        (31, 31, 20, 20, 1, 0.7),  # other class at the same place: kept
        (10, 10, 4, 4, 0, 0.3),  # below the threshold
        nc=2,
    )
    det = OnnxDetector(const_model(tmp_path / "m.onnx", pred, ["a", "b"]), conf_threshold=0.35, iou_threshold=0.5)
    dets = det.detect(np.zeros((64, 64, 3), np.uint8))
    assert dets.data["class_name"].tolist() == ["a", "b"]
    assert dets.confidence.tolist() == pytest.approx([0.9, 0.7])


def test_class_map_renames_and_drops(tmp_path):
    pred = anchors((20, 20, 8, 8, 0, 0.9), (40, 40, 8, 8, 1, 0.9), (50, 10, 8, 8, 2, 0.9), nc=3)
    path = const_model(tmp_path / "m.onnx", pred, ["dining table", "bicycle", "bench"])
    det = OnnxDetector(path, class_map={"dining table": "table", "bench": "chair"})
    dets = det.detect(np.zeros((64, 64, 3), np.uint8))
    assert det.class_names == CLASSES
    assert sorted(dets.data["class_name"].tolist()) == ["chair", "table"]
    assert [CLASSES[i] for i in dets.class_id] == dets.data["class_name"].tolist()


@pytest.mark.parametrize(
    "class_map, message",
    [({"dinning table": "table"}, "does not have"), ({"bench": "sofa"}, "not feixian classes")],
)
def test_bad_class_map_is_a_clear_error(tmp_path, class_map, message):
    path = const_model(tmp_path / "m.onnx", anchors((1, 1, 1, 1, 0, 0.1), nc=2), ["bench", "dining table"])
    with pytest.raises(DetectorError, match=message):
        OnnxDetector(path, class_map=class_map)


def test_empty_result_keeps_its_columns(tmp_path):
    det = OnnxDetector(const_model(tmp_path / "m.onnx", anchors((9, 9, 4, 4, 0, 0.1), nc=1), ["a"]))
    dets = det.detect(np.zeros((64, 64, 3), np.uint8))
    assert len(dets) == 0 and dets.data["class_name"].shape == (0,)


def test_metadata_and_sha256(tmp_path):
    path = const_model(tmp_path / "m.onnx", anchors((9, 9, 4, 4, 0, 0.9), nc=1), ["a"], version="1.2.3")
    det = OnnxDetector(path)
    assert det.metadata["version"] == "1.2.3"
    assert det.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(DetectorError, match="cannot read"):
        OnnxDetector(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(DetectorError, match="not a loadable ONNX"):
        OnnxDetector(junk)
    with pytest.raises(DetectorError, match="expected one output of shape"):
        OnnxDetector(const_model(tmp_path / "m.onnx", np.zeros((1, 10, 5)), ["a", "b"]))
    nameless = const_model(tmp_path / "n.onnx", np.zeros((1, 5, 5)), ["a"])
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(nameless))
    del model.metadata_props[:]
    onnx.save(model, str(nameless))
    with pytest.raises(DetectorError, match="no 'names' metadata"):
        OnnxDetector(nameless)


def test_bad_image_is_a_clear_error(tmp_path):
    det = OnnxDetector(const_model(tmp_path / "m.onnx", anchors((9, 9, 4, 4, 0, 0.9), nc=1), ["a"]))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        det.detect(np.zeros((64, 64), np.uint8))


def test_nms_is_greedy_through_chains():
    # b suppresses nothing once a has suppressed it, so c (overlapping b only) survives.
    boxes = np.array([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10], [40, 40, 50, 50]], np.float32)
    assert nms(boxes, np.array([0.9, 0.8, 0.7, 0.6], np.float32), 0.5).tolist() == [0, 2, 3]
    assert nms(boxes, np.array([0.8, 0.9, 0.7, 0.6], np.float32), 0.5).tolist() == [1, 3]


# --- real model and material ------------------------------------------------------------------------


@pytest.mark.parametrize("image", ["000000000257.jpg", "000000000127.jpg"])
def test_matches_ultralytics_prediction(coco_model, image):
    yolo = pytest.importorskip("ultralytics").YOLO
    img = cv2.imread(str(need(COCO_IMAGES / image)))
    ours = OnnxDetector(coco_model, conf_threshold=0.25, iou_threshold=0.5).detect(img)
    ref = yolo(str(coco_model), task="detect").predict(img, imgsz=320, conf=0.25, iou=0.5, verbose=False)[0].boxes
    assert len(ours) == len(ref) > 0
    o, r = np.argsort(-ours.confidence), np.argsort(-ref.conf.numpy())
    np.testing.assert_allclose(ours.xyxy[o], ref.xyxy.numpy()[r], atol=1.0)
    assert ours.class_id[o].tolist() == ref.cls.numpy().astype(int)[r].tolist()


def test_detect_from_several_threads_matches_sequential(coco_model):
    det = OnnxDetector(coco_model, threads=1)
    images = [cv2.imread(str(need(COCO_IMAGES / n))) for n in ("000000000257.jpg", "000000000127.jpg")] * 3
    expected = [det.detect(img).xyxy for img in images]
    with ThreadPoolExecutor(max_workers=3) as pool:
        got = list(pool.map(lambda img: det.detect(img).xyxy, images))
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_array_equal(e, g)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's legacy ONNX exporter, inside Ultralytics
def test_dynamic_export_pads_like_ultralytics(tmp_path, monkeypatch):
    """A dynamic-shape export is letterboxed to the nearest stride multiple, as Ultralytics does."""
    yolo = pytest.importorskip("ultralytics").YOLO
    # An untrained network from the bundled architecture file: no weights are downloaded. Its scores are
    # tiny but deterministic, enough to compare decoding. The export lands in the working directory.
    monkeypatch.chdir(tmp_path)
    path = yolo("yolo11n.yaml", task="detect").export(format="onnx", dynamic=True, imgsz=128, simplify=False)
    img = cv2.resize(cv2.imread(str(need(COCO_IMAGES / "000000000257.jpg"))), (200, 120))
    det = OnnxDetector(path, conf_threshold=1e-5)
    assert det.input_size == (128, 128) and det.dynamic_input
    # 200x120 scales by 0.64 to 128x77, padded to 96 rows (the next multiple of 32), not to 128.
    assert det.input_shape_for(120, 200) == (96, 128)
    ours = det.detect(img)
    ref = yolo(path, task="detect").predict(img, imgsz=128, conf=1e-5, iou=0.5, verbose=False)[0].boxes
    assert len(ours) == len(ref) > 0
    o, r = np.argsort(-ours.confidence), np.argsort(-ref.conf.numpy())
    np.testing.assert_allclose(ours.xyxy[o], ref.xyxy.numpy()[r], atol=1.0)


def test_finds_cars_and_trucks_on_real_highway_footage(coco_model, highway_video):
    det = OnnxDetector(coco_model, class_map=COCO_CLASS_MAP)
    cap = cv2.VideoCapture(str(highway_video))
    seen: set[str] = set()
    for i in range(0, 750, 25):
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, frame = cap.read()
        assert ok
        dets = det.detect(frame)
        assert (dets.xyxy[:, 2] <= frame.shape[1]).all() and (dets.xyxy[:, 3] <= frame.shape[0]).all()
        seen.update(dets.data["class_name"].tolist())
    cap.release()
    assert {"car", "truck"} <= seen
