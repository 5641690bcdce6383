"""Per-point multi-object tracking: ByteTrack over the detector's boxes, blind to class.

Association ignores classes because one physical object changes class from frame to frame: a truck is
`truck` in one frame and `truck_dirty` in the next, a vendor cart `cart` then `stall`. The rules need
it to keep one id. ByteTrack is Roboflow's `trackers.ByteTrackTracker` (supervision's own ByteTrack
moved there), driven by capture times so an irregular push camera is tracked as well as a steady file.

>>> from datetime import datetime, timedelta, timezone
>>> import numpy as np, supervision as sv
>>> tracker = PointTracker(frame_rate=5)
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> for i in range(3):
...     dets = sv.Detections(xyxy=np.array([[10.0 + i, 10, 60 + i, 40]]), confidence=np.array([0.8]),
...                          class_id=np.array([2]), data={"class_name": np.array(["truck"])})
...     out = tracker.update(dets, t0 + timedelta(seconds=0.2 * i))
>>> out.tracker_id.tolist()
[0]
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import supervision as sv
from pydantic import BaseModel, ConfigDict, Field
from trackers import ByteTrackTracker


class TrackerSettings(BaseModel):
    """ByteTrack tuning for street cameras sampled at a few frames per second."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lost_track_s: float = Field(
        default=1.5,
        gt=0,
        le=30,
        description="Seconds a track survives without a matching box (missed detections, short occlusion).",
    )
    high_confidence: float = Field(
        default=0.35,
        gt=0,
        lt=1,
        description="Boxes at or above this score are matched first and may start tracks; weaker ones only "
        "extend existing tracks (the runtime sets it to the model's conf_threshold).",
    )
    match_iou: float = Field(
        default=0.1, gt=0, lt=1, description="Minimum IoU between a track's predicted box and a detection."
    )
    duplicate_iou: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description="Boxes overlapping more than this in one frame are one object seen under two classes "
        "(class-aware NMS keeps both); only the most confident enters the tracker. 1 = keep all.",
    )


class PointTracker:
    """Tracks one point's detections; `update` returns them with `tracker_id` set.

    A detection gets an id from its second consecutive sighting on (ByteTrack confirms a track before
    naming it); unconfirmed ones carry `tracker_id == -1` and are still returned, since the occupation
    rule does not need ids. Ids survive `lost_track_s` of missed detections.

    Args:
        frame_rate: the point's detection rate (frames per second), ByteTrack's motion-model step.
        settings: tuning; see `TrackerSettings`.
    """

    def __init__(self, frame_rate: float, settings: TrackerSettings | None = None):
        if frame_rate <= 0:
            raise ValueError("frame_rate must be positive")
        self.settings = settings or TrackerSettings()
        s = self.settings
        self._tracker = ByteTrackTracker(
            # trackers counts the lost buffer in 30 fps frames; with timestamps it becomes buffer/30 s.
            lost_track_buffer=max(1, round(s.lost_track_s * 30)),
            frame_rate=frame_rate,
            track_activation_threshold=s.high_confidence,
            minimum_consecutive_frames=1,
            minimum_iou_threshold=s.match_iou,
            high_conf_det_threshold=s.high_confidence,
        )

    def update(self, detections: sv.Detections, at: datetime | None = None) -> sv.Detections:
        """Associate one frame's detections with the point's tracks.

        `at` is the frame's capture time: pass it, so gaps and irregular push cameras move the motion
        model and the lost-track clock by real time. None = frames arrive steadily at `frame_rate`.
        """
        if at is not None and at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        if detections.confidence is None:
            raise ValueError("detections need confidence scores for ByteTrack's two-stage matching")
        if len(detections) > 1 and self.settings.duplicate_iou < 1:
            detections = detections.with_nms(threshold=self.settings.duplicate_iou, class_agnostic=True)
        tracked = self._tracker.update(detections, timestamp=at.timestamp() if at is not None else None)
        if len(tracked) == 0:  # the tracker's empty result drops the input's data columns
            tracked = detections[np.zeros(0, dtype=int)]
            tracked.tracker_id = np.zeros(0, dtype=int)
        return tracked

    def reset(self) -> None:
        """Forget every track (a new stream on this point)."""
        self._tracker.reset()
