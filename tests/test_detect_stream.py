"""A camera's sub-stream for detection beside its main stream for evidence (`Source.detect_uri`): the points
file's checks, the pairing of the two streams in time, boxes carried to the main stream's pixels before
tracking, second looks cropping from the main stream, and a replay that raises the cases of the main stream
alone, with main-stream evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
from pydantic import ValidationError
from worker_stand_ins import PassThrough

import pipeline.frames
from cases.schema import case_to_json
from cases.store import EvidenceSettings
from feixian.config import Config, ModelSettings, Settings, load_config
from feixian.domain import Point, Source
from feixian.runtime import Runtime, replay
from ingest.sources import FileSource, SourceError
from pipeline.crop_stages import StagedDetector
from pipeline.detector_slots import SlotLimitedDetector
from pipeline.frames import Frame, encode_jpeg, jpeg_size
from pipeline.video import Mp4Writer
from pipeline.worker import PointWorker
from training.evaluate import deployment_settings, scenario_config, settings_for
from training.synth.scenario import write_scenario
from training.synth.timeline import ScenarioSpec

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
MAIN, SUB = (1280, 720), (640, 360)
SHIPPED = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


# -- the points file --


def test_a_push_source_refuses_a_detect_uri_and_file_and_rtsp_sources_take_one():
    with pytest.raises(ValidationError, match="push source has no detect_uri"):
        Source(kind="push", detect_uri="rtsp://camera/sub")
    assert Source(kind="rtsp", uri="rtsp://camera/main", detect_uri="rtsp://camera/sub").detect_uri
    assert Source(kind="file", uri="main.mp4", detect_uri="sub.mp4").detect_uri == "sub.mp4"
    assert Source(kind="file", uri="main.mp4").detect_uri is None


def point_with(source: Source) -> Point:
    return Point(id="P1", name="n", town="t", device_id="d", gps=(31.0, 121.0), source=source)


def test_a_detect_file_resolves_against_the_points_file_like_the_main_one(tmp_path):
    config = Config(Settings(model=ModelSettings(path="m.onnx")), [], tmp_path, tmp_path / "points", tmp_path)
    filed = point_with(Source(kind="file", uri="cam/main.mp4", detect_uri="cam/sub.mp4"))
    assert config.detect_source_path(filed) == str((tmp_path / "points" / "cam" / "sub.mp4").resolve())
    assert config.source_path(filed) == str((tmp_path / "points" / "cam" / "main.mp4").resolve())
    pulled = point_with(Source(kind="rtsp", uri="rtsp://c/main", detect_uri="rtsp://c/sub"))
    assert config.detect_source_path(pulled) == "rtsp://c/sub"
    assert config.detect_source_path(point_with(Source(kind="file", uri="main.mp4"))) is None


# -- two files read in step --


def bar_video(path: Path, fps: int, size: tuple[int, int], seconds: float, step: int) -> None:
    """Frame k shows a white bar (k + 1) * `step` pixels wide: its width tells which frame it is."""
    w, h = size
    with Mp4Writer(path, fps=fps, size=size) as writer:
        for k in range(round(seconds * fps)):
            image = np.zeros((h, w, 3), np.uint8)
            image[:, : (k + 1) * step] = 255
            writer.write(image)


def shown(image: np.ndarray, step: int) -> int:
    """Which frame of `bar_video` this is."""
    return round(int((image[image.shape[0] // 2] > 128).all(axis=1).sum()) / step) - 1


@pytest.fixture
def streams(tmp_path) -> tuple[Path, Path]:
    """A 10 fps 1280x720 main stream and a 25 fps 640x360 sub-stream of 3 s each."""
    bar_video(tmp_path / "main.mp4", 10, MAIN, 3.0, step=40)
    bar_video(tmp_path / "sub.mp4", 25, SUB, 3.0, step=8)
    return tmp_path / "main.mp4", tmp_path / "sub.mp4"


def test_each_sampled_sub_frame_goes_with_the_main_frame_shown_at_its_time(streams):
    main, sub = streams
    frames = list(FileSource("P", main, detect_fps=4, start_time=T0, detect_path=sub).frames())
    assert len(frames) == 12
    for frame in frames:
        t = (frame.captured_at - T0).total_seconds()
        assert frame.detect_image().shape == (360, 640, 3) and frame.image().shape == (720, 1280, 3)
        assert shown(frame.detect_image(), 8) == round(t * 25)  # the sub-stream sets the clock
        assert shown(frame.image(), 40) == int(t * 10 + 1e-6)  # the last main frame starting at or before it
    # 4 fps off a 25 fps sub-stream: 0.28 s is the first sub frame due after 0.25 s, main frame 2 (0.2 s) shows.
    assert (frames[1].captured_at - T0).total_seconds() == pytest.approx(0.28)
    assert shown(frames[1].image(), 40) == 2


def test_the_pairs_end_where_the_main_stream_ends(tmp_path):
    bar_video(tmp_path / "main.mp4", 10, MAIN, 2.0, step=40)
    bar_video(tmp_path / "sub.mp4", 25, SUB, 3.0, step=8)
    frames = list(FileSource("P", tmp_path / "main.mp4", 5, T0, detect_path=tmp_path / "sub.mp4").frames())
    assert [round((f.captured_at - T0).total_seconds(), 1) for f in frames] == [k / 5 for k in range(10)]


def test_without_a_sub_stream_a_frame_is_as_before(streams):
    main, _ = streams
    frame = next(FileSource("P", main, detect_fps=4, start_time=T0).frames())
    assert frame.detect_jpeg is None and frame.detect_scale() == (1.0, 1.0)
    assert frame.detect_image() is frame.image()


def test_a_missing_detect_file_is_a_clear_error_naming_it(streams, tmp_path):
    main, _ = streams
    with pytest.raises(SourceError, match="video file not found: .*absent-sub.mp4"):
        next(FileSource("P", main, 5, T0, detect_path=tmp_path / "absent-sub.mp4").frames())


def test_a_sub_stream_frame_holds_its_main_jpeg_to_the_pixel_bound_too():
    frame = Frame("P1", 0, T0, jpeg(MAIN), detect_jpeg=jpeg(SUB))
    with pytest.raises(pipeline.frames.ImageTooLargeError, match="1280x720"):
        frame.detect_image(max_pixels=640 * 360)
    # Also where the sub-stream's pixels came decoded with it (an RTSP source's).
    pulled = Frame("P1", 0, T0, jpeg(MAIN), detect_jpeg=jpeg(SUB), _detect_image=np.zeros((360, 640, 3), np.uint8))
    with pytest.raises(pipeline.frames.ImageTooLargeError, match="1280x720"):
        pulled.detect_image(max_pixels=640 * 360)


# -- the worker --


def jpeg(size: tuple[int, int]) -> bytes:
    return encode_jpeg(np.full((size[1], size[0], 3), 90, np.uint8))


def boxes(xyxy: list[list[float]], names: list[str]) -> sv.Detections:
    return sv.Detections(
        xyxy=np.array(xyxy, np.float32),
        confidence=np.full(len(xyxy), 0.9, np.float32),
        class_id=np.zeros(len(xyxy), int),
        data={"class_name": np.array(names)},
    )


class OneBox:
    """A detector that finds one box of `name`, at the same place of the view on any image it is given."""

    class_names = ("truck", "person")
    iou_threshold = 0.5
    conf_threshold = 0.1
    path = "one-box"
    stride = 32

    def __init__(self, name: str = "truck"):
        self.name = name
        self.seen: list[tuple[int, ...]] = []

    def detect(self, image) -> sv.Detections:
        self.seen.append(image.shape)
        h, w = image.shape[:2]
        return boxes([[w * 0.25, h * 0.5, w * 0.5, h * 0.75]], [self.name])


class Looks:
    """A second look at trucks that records the image it cropped from and the boxes it was given."""

    needs = ("truck",)

    def __init__(self):
        self.seen: list[tuple[tuple[int, ...], list]] = []

    def judge(self, bgr, detections, class_names, iou_threshold):
        self.seen.append((bgr.shape, detections.xyxy.tolist()))
        return detections


class Seen:
    """A rule that keeps the boxes it is given."""

    def __init__(self):
        self.xyxy: list[list] = []

    def update(self, frame, detections):
        self.xyxy.append(detections.xyxy.tolist())
        return []

    def flush(self, at):
        return []


class StillGate:
    """A motion gate that records what it is shown and never sees motion: the last boxes are carried over."""

    def __init__(self):
        self.shown: list[tuple[tuple[int, ...], list]] = []

    def plan(self, image, at, found):
        self.shown.append((image.shape, np.asarray(found).tolist()))
        return None


def worker(detector, rule: Seen, gate=None) -> PointWorker:
    return PointWorker(
        point_with(Source(kind="push")), detector, PassThrough(), [rule], None, None, EvidenceSettings(), [], gate=gate
    )


@pytest.fixture
def decoded(monkeypatch) -> list[tuple[int, int]]:
    """The sizes of the JPEGs decoded from here on."""
    sizes: list[tuple[int, int]] = []
    decode = pipeline.frames.decode_jpeg

    def spy(data, max_pixels=pipeline.frames.DEFAULT_MAX_PIXELS):
        sizes.append(jpeg_size(data))
        return decode(data, max_pixels)

    monkeypatch.setattr(pipeline.frames, "decode_jpeg", spy)
    return sizes


def paired(seq: int) -> Frame:
    return Frame("P1", seq, T0.replace(second=seq), jpeg(MAIN), detect_jpeg=jpeg(SUB))


def test_boxes_found_on_the_sub_stream_reach_tracking_and_rules_in_main_stream_pixels(decoded):
    detector, rule, gate = OneBox(), Seen(), StillGate()
    w = worker(detector, rule, gate)
    w.process(paired(0))
    w.process(paired(1))  # nothing moved: the last boxes are carried over
    assert detector.seen == [(360, 640, 3)]
    assert rule.xyxy == [[[320.0, 360.0, 640.0, 540.0]]] * 2
    # The gate keeps the sub-stream's view, and is fed back the boxes in its pixels.
    assert gate.shown == [((360, 640, 3), []), ((360, 640, 3), [[160.0, 180.0, 320.0, 270.0]])]
    assert MAIN not in decoded, "no crop asked for the main stream: its JPEG must not be decoded"


def test_second_looks_crop_from_the_main_stream_and_only_when_they_have_a_box_to_judge(decoded):
    looks = Looks()
    rule = Seen()
    w = worker(SlotLimitedDetector(StagedDetector(OneBox(), [looks]), slots=1), rule)
    w.process(paired(0))
    assert looks.seen == [((720, 1280, 3), [[320.0, 360.0, 640.0, 540.0]])]
    assert rule.xyxy == [[[320.0, 360.0, 640.0, 540.0]]]
    assert decoded.count(MAIN) == 1
    persons = worker(StagedDetector(OneBox("person"), [Looks()]), Seen())
    decoded.clear()
    persons.process(paired(0))
    assert decoded == [SUB], "no box for a second look: the main stream's JPEG must not be decoded"


def test_a_frame_without_a_sub_stream_is_detected_and_judged_on_its_own_image():
    looks, rule = Looks(), Seen()
    w = worker(StagedDetector(OneBox(), [looks]), rule)
    w.process(Frame("P1", 0, T0, jpeg(MAIN)))
    assert looks.seen == [((720, 1280, 3), [[320.0, 360.0, 640.0, 540.0]])]
    assert rule.xyxy == [[[320.0, 360.0, 640.0, 540.0]]]


# -- a replay with the shipped model --


def halve(video: Path, out: Path) -> None:
    """`video` at half its size, as a camera's sub-stream of the same scene."""
    cap = cv2.VideoCapture(str(video))
    fps, w, h = (
        cap.get(cv2.CAP_PROP_FPS),
        int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    with Mp4Writer(out, fps=fps, size=(w // 2, h // 2)) as writer:
        while True:
            ok, image = cap.read()
            if not ok:
                break
            writer.write(cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    cap.release()


@pytest.fixture(scope="module")
def street(tmp_path_factory) -> Path:
    # Held out (seed 2001 is never trained or tuned on); short, with a short dwell so episodes fit in it. At
    # 1280x720 the detector's input is about the sub-stream's size either way, so both runs see the same street.
    spec = ScenarioSpec(name="sub-street", seed=2001, duration_s=40, dwell_s=10, kind="street", size=MAIN)
    out = tmp_path_factory.mktemp("scenario") / spec.name
    write_scenario(spec, out, progress=False)
    halve(out / "video.mp4", out / "sub.mp4")
    return out


def run(scenario: Path, data: Path, detect_uri: str | None) -> tuple[Runtime, list[dict]]:
    settings = settings_for(load_config(SHIPPED).model_path, deployment_settings(str(SHIPPED)))
    config = scenario_config(scenario, settings, data)
    points = [
        p.model_copy(update={"source": Source(**{**p.source.model_dump(), "detect_uri": detect_uri})})
        for p in config.points
    ]
    config = Config(config.settings, points, config.base_dir, config.points_dir, data, config.database_url)
    rt = Runtime(config)
    result = replay(rt)
    assert not result.errors
    return rt, [case_to_json(c) for c in rt.cases.all_cases()]


def test_a_replay_on_the_sub_stream_raises_the_main_streams_cases_with_main_stream_evidence(street, tmp_path):
    _, alone = run(street, tmp_path / "alone", None)
    rt, sub = run(street, tmp_path / "sub", "sub.mp4")
    assert alone, "the scenario must raise cases, or this test shows nothing"
    key = lambda c: (c["category"], c["subtype"], c["zone_id"])  # noqa: E731
    assert sorted(map(key, sub)) == sorted(map(key, alone))
    for case in sub:
        frames = {name: k for name, k in case["evidence"].items() if name.startswith(("original/", "annotated/"))}
        assert frames
        assert {name: jpeg_size(rt.store.get(k)) for name, k in frames.items()} == dict.fromkeys(frames, MAIN)


def test_a_replay_names_a_missing_detect_file(street, tmp_path):
    settings = settings_for(load_config(SHIPPED).model_path, deployment_settings(str(SHIPPED)))
    config = scenario_config(street, settings, tmp_path)
    [point] = config.points
    rt = Runtime(config)
    missing = point.model_copy(update={"source": Source(kind="file", uri="video.mp4", detect_uri="nowhere.mp4")})
    result = replay(rt, [missing])
    assert "nowhere.mp4" in result.errors[point.id] and "not found" in result.errors[point.id]
