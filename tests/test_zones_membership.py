"""ZoneTester: membership judged at the box's bottom-centre."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from feixian.domain import ZONE_KINDS_FOR, Category, Zone, ZoneKind
from pipeline.zones import ZoneTester, bottom_centres, zone_testers

# A shop-front strip, slanted like a painted line seen in perspective.
FRONT = Zone(id="front", kind="no_occupation", polygon=[(20, 100), (300, 120), (300, 200), (20, 180)])


def test_bottom_centre_decides():
    tester = ZoneTester(FRONT)
    boxes = np.array(
        [
            [100, 20, 140, 150],  # tall item standing in the strip, top far above it
            [100, 150, 140, 230],  # overlaps the strip but stands below it
            [0, 120, 30, 160],  # bottom-centre x=15, left of the strip
            [280, 150, 320, 190],  # bottom-centre (300, 190): on the right edge
        ]
    )
    assert tester.contains(boxes).tolist() == [True, False, False, True]


def test_agrees_with_supervision_polygon_zone():
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 330, size=(500, 2))
    boxes = np.concatenate([xy - [10, 30], xy + [10, 0]], axis=1)
    ref = sv.PolygonZone(np.array(FRONT.polygon, dtype=int), triggering_anchors=(sv.Position.BOTTOM_CENTER,))
    ours = ZoneTester(FRONT).contains(boxes)
    theirs = ref.trigger(sv.Detections(xyxy=boxes))
    # Rasterisations may differ by a pixel along the edges; inside and outside must agree.
    assert (ours != theirs).mean() < 0.02 and ours.sum() > 50


def test_points_outside_the_raster_and_empty_input():
    tester = ZoneTester(FRONT)
    assert tester.contains(np.array([[-50, -50, -40, -40], [900, 900, 950, 990]])).tolist() == [False, False]
    assert tester.contains(np.zeros((0, 4))).shape == (0,)


def test_bottom_centres():
    assert bottom_centres(np.array([[10.0, 20, 30, 60]])).tolist() == [[20.0, 60.0]]


def test_zone_testers_select_kinds():
    road = Zone(id="road", kind="roadway", polygon=[(0, 0), (10, 0), (10, 10)])
    exit_ = Zone(id="exit", kind="site_exit", polygon=[(0, 0), (10, 0), (10, 10)])
    testers = zone_testers([FRONT, road, exit_], ZONE_KINDS_FOR[Category.VEHICLE])
    assert [t.id for t in testers] == ["road", "exit"]
    assert testers[0].kind is ZoneKind.ROADWAY


def test_absurd_coordinates_are_a_clear_error():
    with pytest.raises(ValueError, match="pixels"):
        ZoneTester(Zone(id="z", kind="roadway", polygon=[(0, 0), (1e6, 0), (0, 10)]))


def test_an_object_cut_by_the_frame_bottom_stands_in_a_zone_drawn_to_the_last_row():
    # A 320x240 frame: the zone's last row is 239, and a truck running off the bottom has y2 = 240.
    road = ZoneTester(Zone(id="road", kind="roadway", polygon=[(0, 120), (319, 120), (319, 239), (0, 239)]))
    boxes = np.array([[100.0, 150, 220, 240], [100, 60, 220, 120], [100, 60, 220, 120.5]])
    # The second box's last pixel row is 119, above the zone; the third reaches into row 120.
    assert road.contains(boxes).tolist() == [True, False, True]
