"""`OnnxDetector.detect_regions`: the detector looking at parts of a frame only (pipeline.regions), each as a
window of the whole frame's network input with the picture around it, boxes kept by their centre and those cut
by a window's inner edge dropped; and the same answer as the whole frame on real road footage."""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv
from conftest import REPO, need
from test_detector_onnx import anchors, const_model

from feixian.config import load_config
from pipeline import detector as detector_module
from pipeline.detector import OnnxDetector
from pipeline.regions import RegionPlan

DYNAMIC = (1, 3, "height", "width")
SHIPPED = load_config(REPO / "configs" / "default.yaml").model_path


def dynamic_model(tmp_path, *rows) -> OnnxDetector:
    pred = anchors(*rows, nc=1)
    path = const_model(tmp_path / "m.onnx", pred, ["stall"], input_shape=DYNAMIC, imgsz="[256, 256]", stride="32")
    return OnnxDetector(path, conf_threshold=0.5)


def boxes(d: sv.Detections) -> list[list[float]]:
    return sorted(d.xyxy.round(1).tolist())


def test_boxes_map_back_from_each_region_and_a_box_cut_by_an_inner_edge_is_dropped(tmp_path, monkeypatch):
    # Without context each window is its region. The constant network answers the same for every input: A lies
    # inside any 64 px window, B reaches its right edge, C its left. In a window inside the frame B and C are cut;
    # in the corner one the left edge is the frame's own, so C is an object at the frame border (kept, at_edge).
    monkeypatch.setattr(detector_module, "REGION_CONTEXT_PX", 0)
    det = dynamic_model(tmp_path, (24, 24, 16, 16, 0, 0.9), (60, 30, 10, 10, 0, 0.9), (4, 20, 8, 8, 0, 0.9))
    frame = np.zeros((128, 256, 3), np.uint8)  # input 256 wide: scale 1
    found = det.detect_regions(frame, [(64, 32, 128, 96), (0, 0, 64, 64)])
    assert boxes(found) == [[0, 16, 8, 24], [16, 16, 32, 32], [80, 48, 96, 64]]
    assert dict(zip(found.xyxy[:, 0].tolist(), found.data["at_edge"].tolist(), strict=True)) == {
        0.0: True,
        16.0: False,
        80.0: False,
    }
    assert set(found.data["class_name"]) == {"stall"}


def test_a_region_is_looked_at_at_the_whole_frames_scale(tmp_path, monkeypatch):
    monkeypatch.setattr(detector_module, "REGION_CONTEXT_PX", 0)
    det = dynamic_model(tmp_path, (24, 24, 16, 16, 0, 0.9))
    frame = np.zeros((512, 1024, 3), np.uint8)  # a 1024 wide frame in a 256 input: a quarter of its size
    assert boxes(det.detect(frame)) == [[64, 64, 128, 128]]
    assert boxes(det.detect_regions(frame, [(256, 128, 512, 384)])) == [[320, 192, 384, 256]]


def test_a_region_is_seen_with_the_picture_around_it_and_keeps_only_the_boxes_centred_in_it(tmp_path, monkeypatch):
    # With 32 px of context the region (128, 32, 192, 96) is looked at as the window (96, 0, 224, 128) of the
    # input: A (window 16-32) is in the context only, left of the region, and is not the region's to report;
    # D (window 52-68) is centred in the region.
    monkeypatch.setattr(detector_module, "REGION_CONTEXT_PX", 32)
    det = dynamic_model(tmp_path, (24, 24, 16, 16, 0, 0.9), (60, 60, 16, 16, 0, 0.9))
    frame = np.zeros((128, 256, 3), np.uint8)  # input 256 wide: scale 1, no padding
    assert boxes(det.detect_regions(frame, [(128, 32, 192, 96)])) == [[148, 52, 164, 68]]


def test_regions_whose_windows_would_cost_more_than_the_whole_input_are_found_in_it(tmp_path, monkeypatch):
    # Two regions whose 64 px windows cover more than the frame: one look at the whole input, each region keeping
    # the boxes centred in it, exactly where the whole frame finds them.
    monkeypatch.setattr(detector_module, "REGION_CONTEXT_PX", 64)
    det = dynamic_model(tmp_path, (24, 24, 16, 16, 0, 0.9), (200, 100, 16, 16, 0, 0.9), (120, 60, 16, 16, 0, 0.9))
    frame = np.zeros((128, 256, 3), np.uint8)
    assert boxes(det.detect(frame)) == [[16, 16, 32, 32], [112, 52, 128, 68], [192, 92, 208, 108]]
    assert boxes(det.detect_regions(frame, [(0, 0, 64, 64), (192, 64, 256, 128)])) == [
        [16, 16, 32, 32],
        [192, 92, 208, 108],
    ]


def test_a_model_of_fixed_input_size_looks_at_the_whole_frame(tmp_path):
    pred = anchors((24, 24, 16, 16, 0, 0.9), nc=1)
    det = OnnxDetector(const_model(tmp_path / "m.onnx", pred, ["stall"], input_shape=(1, 3, 64, 64)), 0.5)
    frame = np.zeros((64, 64, 3), np.uint8)
    assert boxes(det.detect_regions(frame, [(32, 32, 64, 64)])) == boxes(det.detect(frame)) == [[16, 16, 32, 32]]


def test_no_region_finds_nothing(tmp_path):
    det = dynamic_model(tmp_path, (24, 24, 16, 16, 0, 0.9))
    assert len(det.detect_regions(np.zeros((128, 256, 3), np.uint8), [])) == 0


def every_20th_frame(video):
    """(index, frame) of the first 200 frames of a real video, one in 20."""
    cap = cv2.VideoCapture(str(need(video)))
    for k in range(0, 200, 20):
        cap.set(cv2.CAP_PROP_POS_FRAMES, k)
        ok, frame = cap.read()
        assert ok, k
        yield k, frame


def test_on_real_road_footage_a_region_around_a_car_finds_the_car_the_whole_frame_finds(highway_video):
    """The shipped detector on a real motorway camera: looked at only in a region around it (as the motion gate
    plans one), each car the whole frame shows is found again in the same place."""
    det = OnnxDetector(SHIPPED, conf_threshold=0.2)
    ious = []
    for k, frame in every_20th_frame(highway_video):
        whole = det.detect(frame)
        cars = whole[(whole.data["class_name"] == "car") & (whole.confidence >= 0.5)]
        for box in cars.xyxy:
            plan = RegionPlan.around([box], [], frame.shape[:2], margin=32, stride=32)
            again = det.detect_regions(frame, plan.rects)
            again = again[again.data["class_name"] == "car"]
            assert len(again), (k, box)
            ious.append(float(sv.box_iou_batch(box[None], again.xyxy).max()))
    # The network sees a little less around the car than in the whole frame: boxes of a 20 px car move by a pixel.
    assert len(ious) >= 10 and np.mean(ious) > 0.9 and min(ious) > 0.7, ious


def test_on_real_road_footage_a_region_scores_each_box_as_the_whole_frame_does(highway_video):
    """A region looked at alone once scored boxes up to 0.4 lower than the whole frame (a weak goods box 0.41
    whole, nothing in its region): every object near the confidence threshold then vanished from the frames
    between whole looks, and the gated pipeline lost events. Seen as a window of the whole input with the picture
    around it, each box the whole frame finds keeps its class and about its score."""
    det = OnnxDetector(SHIPPED, conf_threshold=0.15)
    gaps = []
    for _, frame in every_20th_frame(highway_video):
        whole = det.detect(frame)
        for box, conf, name in zip(whole.xyxy, whole.confidence, whole.data["class_name"], strict=True):
            if conf < 0.2:
                continue
            plan = RegionPlan.around([box], [], frame.shape[:2], margin=32, stride=32)
            again = det.detect_regions(frame, plan.rects)
            same = again[(again.data["class_name"] == name) & (sv.box_iou_batch(box[None], again.xyxy)[0] >= 0.7)]
            gaps.append(abs(float(conf) - float(same.confidence.max())) if len(same) else float(conf))
    assert len(gaps) >= 10 and max(gaps) < 0.05, gaps
