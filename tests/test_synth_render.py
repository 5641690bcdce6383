"""Camera geometry, occlusion-aware labels and the sprite looks the detector must tell apart."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.taxonomy import CLASSES
from training.synth.camera import Camera
from training.synth.effects import Conditions
from training.synth.items import Goods, Stall
from training.synth.painter import Painter
from training.synth.people import Person
from training.synth.scene import MIN_PLACED_PX, Ground, Placed, populate, render, sample_camera
from training.synth.street import StreetLayout, render_backdrop
from training.synth.text import FONT_PATH, NOTICE_WORDS, PROVINCES, SHOP_PREFIXES, SHOP_WORDS, random_plate
from training.synth.vehicles import LOOK_LABEL, TRUCK_LOOKS, Truck

CAM = Camera(640, 360, focal=500.0, height=6.0, yaw_deg=20.0, pitch_deg=14.0)
CLEAR = Conditions("day", "clear", 1.0, (1.0, 1.0, 1.0), 0.0, 0, 100, 0.0)


def test_pixel_height_grows_with_distance_below_the_horizon() -> None:
    level = Camera(640, 360, focal=500.0, height=6.0, yaw_deg=20.0, pitch_deg=0.0)
    for cam in (level, CAM):
        rows = []
        for z in (8.0, 16.0, 32.0):
            (foot, head), _ = cam.project(np.array([[0.0, 0.0, z], [0.0, 1.7, z]]))
            rows.append((foot[1] - cam.horizon_y, foot[1] - head[1]))
        assert rows[0][0] > rows[1][0] > rows[2][0] and rows[0][1] > rows[1][1] > rows[2][1]
        if cam is level:  # exact for an untilted camera: height / depth below horizon = object / camera height
            assert all(h / below == pytest.approx(1.7 / 6.0, rel=1e-6) for below, h in rows)


def test_ground_lookups_invert_the_projection() -> None:
    x, z = CAM.ground_at(200.0, 300.0)
    uv, _ = CAM.project(np.array([[x, 0.0, z]]))
    assert tuple(uv[0]) == pytest.approx((200.0, 300.0), abs=1e-6)
    assert CAM.ground_x_at(200.0, z) == pytest.approx(x, abs=1e-6)
    assert CAM.ground_at(100.0, CAM.horizon_y - 5) is None


def _scene(placed: list[Placed], cam: Camera = CAM) -> tuple[np.ndarray, list]:
    layout = StreetLayout.sample(np.random.default_rng(0))
    backdrop = render_backdrop(layout, cam, night=False)
    return render(cam, layout, backdrop, placed, CLEAR, np.random.default_rng(0))


def _ground(u: float, v: float) -> tuple[float, float]:
    return CAM.ground_at(u, v)


def test_hidden_objects_lose_their_label_and_visible_ones_keep_it() -> None:
    rng = np.random.default_rng(1)
    x, z = _ground(320, 250)
    goods = Goods(((-0.2, 0.2, 0.0, 0.3, -0.2, 0.2, (90, 140, 185), "carton"),))
    stall = Stall.sample(rng)
    person = Person.sample(rng)
    # A small carton right behind a stall is hidden; the person beside it is not.
    _, labels = _scene([Placed(stall, x, z, 0.0), Placed(goods, x, z + 0.6), Placed(person, x + 3.0, z)])
    labelled = {CLASSES[label.class_id] for label in labels}
    assert labelled == {"stall", "person"}


def test_labels_are_clipped_to_the_frame() -> None:
    rng = np.random.default_rng(2)
    x, z = _ground(5, 250)
    _, labels = _scene([Placed(Stall.sample(rng), x, z, 0.0)])
    assert len(labels) == 1 and labels[0].box[0] == 0.0


def test_tables_and_chairs_are_placed_at_least_the_smallest_size_tall() -> None:
    # Chairs set around a table used to skip the size check: stools beside a far table came out 10 px tall.
    heights = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        layout = StreetLayout.sample(rng)
        cam = sample_camera(rng, layout, (640, 360))
        ground = Ground(cam, rng)
        for item in populate(rng, layout, cam):
            if item.sprite.label in ("table", "chair"):
                box = ground.screen_box(item.sprite, ground.footprint(item.sprite, item.x, item.z, item.heading))
                heights.append(box[3] - box[1])
    assert len(heights) > 40 and min(heights) >= MIN_PLACED_PX


def test_truck_looks_map_to_classes_and_never_mix_dirt_with_an_open_load() -> None:
    assert {LOOK_LABEL[look] for look in TRUCK_LOOKS} == {"truck", "truck_dirty", "truck_uncovered"}
    rng = np.random.default_rng(3)
    for look in TRUCK_LOOKS:
        truck = Truck.sample(rng, look)
        assert truck.label == LOOK_LABEL[look]
        assert not (truck.mud and truck.look == "uncovered")
    with pytest.raises(ValueError, match="truck look"):
        Truck.sample(rng, "muddy")


def test_dirty_and_uncovered_trucks_differ_from_clean_ones_where_it_matters() -> None:
    """Mud browns the lower body; an open load rises above the rim. Compare against the same truck clean."""
    x, z = _ground(320, 260)
    shots = {}
    for look in ("clean", "dirty", "uncovered"):
        truck = Truck.sample(np.random.default_rng(4), look)
        img = np.full((360, 640, 3), 128, np.uint8)
        p = Painter(img, CAM)
        p.begin(1)
        truck.draw(p, x, z, math.pi, 0.0)
        shots[look] = (img, p.end().box)
    clean, (x0, y0, x1, y1) = shots["clean"]
    lower = (slice(int((y0 + y1) / 2), int(y1)), slice(int(x0), int(x1)))
    assert np.abs(shots["dirty"][0][lower].astype(int) - clean[lower]).mean() > 5
    assert shots["uncovered"][1][1] < y0 - 5  # the heap makes the truck taller


def test_plates_and_signs_use_only_glyphs_in_the_subset_font() -> None:
    glyphs = set((FONT_PATH.parent / "subset-chars.txt").read_text(encoding="utf-8"))
    rng = np.random.default_rng(5)
    plates = {random_plate(rng, truck=bool(i % 2)) for i in range(50)}
    texts = plates | set(SHOP_WORDS) | set(SHOP_PREFIXES) | set(NOTICE_WORDS) | set(PROVINCES)
    assert set("".join(texts)) <= glyphs


@pytest.mark.parametrize("look", ["uncovered", "dirty"])
def test_a_truck_is_labelled_by_the_look_the_frame_shows(look: str) -> None:
    """Broadside from a pole the heap and mud show; head-on from below the cab roof, an open load hides
    behind the cab, so a labeller would call that truck plain, and so does the generator."""
    truck = Truck.sample(np.random.default_rng(5), look)
    x, z = _ground(320, 260)
    _, side = _scene([Placed(truck, x, z, 0.0)])
    low = Camera(640, 360, focal=500.0, height=2.0, yaw_deg=0.0, pitch_deg=0.0)
    _, ahead = _scene([Placed(truck, 0.0, 16.0, -math.pi / 2)], low)
    assert [CLASSES[label.class_id] for label in side] == [truck.label]
    expected = "truck" if look == "uncovered" else truck.label  # mud on the cab front still shows
    assert [CLASSES[label.class_id] for label in ahead] == [expected]
