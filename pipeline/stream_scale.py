"""Boxes carried between a camera's two streams: found on its sub-stream, judged, tracked and drawn on its main one
(`Source.detect_uri`). The two show the same view at different sizes, so a box moves by a factor per axis.

>>> d = sv.Detections(xyxy=np.array([[10, 20, 30, 40]], np.float32), class_id=np.array([0]))
>>> scaled(d, (2.0, 3.0)).xyxy.tolist()
[[20.0, 60.0, 60.0, 120.0]]
>>> scaled(d, (1.0, 1.0)) is d
True
"""

from __future__ import annotations

import dataclasses

import numpy as np
import supervision as sv

Factors = tuple[float, float]


def scaled(detections: sv.Detections, factors: Factors) -> sv.Detections:
    """`detections` with every box's x times `factors[0]` and y times `factors[1]`; the very object at (1, 1),
    so a camera without a sub-stream goes through untouched."""
    if factors == (1.0, 1.0):
        return detections
    fx, fy = factors
    xyxy = detections.xyxy * np.array([fx, fy, fx, fy], dtype=detections.xyxy.dtype)
    return dataclasses.replace(detections, xyxy=xyxy, data=dict(detections.data))


def inverse(factors: Factors) -> Factors:
    """The factors that carry boxes back.

    >>> inverse((2.0, 4.0))
    (0.5, 0.25)
    """
    return 1 / factors[0], 1 / factors[1]


def factors_between(small: np.ndarray, large: np.ndarray) -> Factors:
    """The factors from `small`'s pixels to `large`'s (two images of one view).

    >>> factors_between(np.zeros((360, 640, 3)), np.zeros((720, 1280, 3)))
    (2.0, 2.0)
    """
    return large.shape[1] / small.shape[1], large.shape[0] / small.shape[0]
