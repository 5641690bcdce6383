"""Labelled licence-plate crops for training the plate reader: rendered, warped and degraded like a
localiser's output on camera footage.

A plate is drawn to the GB 36-2018 single-row layout (440x140 mm, characters 45x90 mm, a 34 mm gap with a
dot after the second one), each glyph stretched into its box the way the plate typeface is tall and
narrow; a quarter are drawn the way the scene generator draws them (proportional text), so the reader also
reads the generated scenario videos. Then the crop is seen as a localiser would hand it over: a little
off-centre, perspective-warped, small, blurred, noisy and JPEG-compressed.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> img, text = sample_crop(rng)
>>> img.shape, img.dtype, len(text), all(c in CHARSET for c in text)
((32, 128), dtype('uint8'), 7, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw

from pipeline.plates import PROVINCES
from training.synth.text import PLATE_LETTERS, _font, plate_patch, random_plate

# Every character the reader can output, in the order of its output classes (0 is the CTC blank).
SUFFIX_CHARS = "学警挂"
CHARSET = PROVINCES + PLATE_LETTERS + "0123456789" + SUFFIX_CHARS

HEIGHT, WIDTH = 32, 128  # the reader's input, grey

# Plate colours (BGR): blue with white characters (small cars), yellow with black (trucks, buses), green
# with black (new-energy cars; the field fades from near white at the top to green at the bottom).
_KINDS = {
    "blue": ((165, 75, 15), (240, 240, 240)),
    "yellow": ((25, 185, 235), (25, 25, 25)),
    "green": ((70, 190, 60), (20, 20, 20)),
}
_GREEN_TOP = (185, 240, 175)  # pale green: the fade stays saturated enough to be found by colour
KINDS = tuple(_KINDS)


@dataclass(frozen=True)
class _Layout:
    """A single-row plate's geometry in millimetres: size, character boxes' left edges and width, the dot."""

    width: int
    char_x: tuple[float, ...]
    char_w: int
    dot_x: float


# GB 36-2018: the 440x140 mm plate of 7 characters, and the 480x140 mm new-energy plate of 8 (narrower
# characters, a wider gap after the second one).
_LAYOUTS = {
    7: _Layout(440, (15.5, 72.5, 151.5, 208.5, 265.5, 322.5, 379.5), 45, 134.5),
    8: _Layout(480, (15.5, 67.5, 161.5, 213.5, 265.5, 317.5, 369.5, 421.5), 43, 136.0),
}
_CHAR_H, _CHAR_TOP = 90, 25


def random_text(rng: np.random.Generator) -> str:
    """Plate characters without the dot: province, issuing-office letter, five of letters and digits
    (sometimes ending in 学/警/挂)."""
    text = random_plate(rng, truck=bool(rng.random() < 0.5)).replace("·", "")
    if rng.random() < 0.15:  # provinces the scene generator rarely draws must be learned as well
        text = PROVINCES[rng.integers(len(PROVINCES))] + text[1:]
    if rng.random() < 0.35:  # more letters in the tail than the generator's plates carry
        tail = [PLATE_LETTERS[rng.integers(len(PLATE_LETTERS))] if rng.random() < 0.4 else c for c in text[2:]]
        text = text[:2] + "".join(tail)
    if rng.random() < 0.03:
        text = text[:6] + SUFFIX_CHARS[rng.integers(len(SUFFIX_CHARS))]
    return text


def random_green_text(rng: np.random.Generator) -> str:
    """A new-energy plate without the dot: province, office letter, then D or F (electric or hybrid) and five
    more of which the last four are digits (small cars), or five digits then D or F (large vehicles)."""
    head = PROVINCES[rng.integers(len(PROVINCES))] + PLATE_LETTERS[rng.integers(len(PLATE_LETTERS))]
    energy = "DF"[rng.integers(2)]
    digits = "".join(str(d) for d in rng.integers(0, 10, 5))
    if rng.random() < 0.8:
        second = PLATE_LETTERS[rng.integers(len(PLATE_LETTERS))] if rng.random() < 0.5 else digits[0]
        return head + energy + second + digits[1:]
    return head + digits + energy


@lru_cache(maxsize=256)
def _glyph(char: str, weight: int) -> np.ndarray:
    """The character's ink, cropped to its bounds, as a 0-255 mask; `weight` thickens (+) or thins (-)."""
    font = _font(120)
    left, top, right, bottom = font.getbbox(char)
    img = Image.new("L", (right - left + 20, bottom - top + 20), 0)
    ImageDraw.Draw(img).text((10 - left, 10 - top), char, font=font, fill=255)
    mask = np.asarray(img)
    if weight:
        k = np.ones((abs(weight) * 2 + 1,) * 2, np.uint8)
        mask = cv2.dilate(mask, k) if weight > 0 else cv2.erode(mask, k)
    ys, xs = np.nonzero(mask > 64)
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def render_plate(text: str, kind: str, weight: int = 0, scale: float = 2.0) -> np.ndarray:
    """`text` (7 characters, or 8 on a new-energy plate; no dot) on a GB-layout plate of `kind` (one of
    KINDS), BGR.

    >>> render_plate("沪A12345", "yellow").shape, render_plate("沪AD12345", "green").shape
    ((280, 880, 3), (280, 960, 3))
    """
    layout = _LAYOUTS.get(len(text))
    if layout is None:
        raise ValueError(f"a single-row plate has 7 or 8 characters, got {text!r}")
    bg, fg = _KINDS[kind]
    w, h = int(layout.width * scale), int(140 * scale)
    plate = np.empty((h, w, 3), np.float32)
    plate[:] = bg
    if kind == "green":
        fade = np.clip(np.linspace(1.2, -0.2, h, dtype=np.float32), 0, 1)[:, None, None]
        plate = plate * (1 - fade) + np.float32(_GREEN_TOP) * fade
    ink = np.zeros((h, w), np.float32)
    box_w, box_h = int(layout.char_w * scale), int(_CHAR_H * scale)
    for char, x_mm in zip(text, layout.char_x, strict=True):
        glyph = _glyph(char, weight)
        # Glyphs are squeezed into the box as on the tall plate typeface; narrow ones (1) keep their width.
        gw = max(4, min(box_w, int(glyph.shape[1] * box_h / glyph.shape[0])))
        g = cv2.resize(glyph, (gw, box_h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        x0 = int(x_mm * scale) + (box_w - gw) // 2
        y0 = int(_CHAR_TOP * scale)
        ink[y0 : y0 + box_h, x0 : x0 + gw] = np.maximum(ink[y0 : y0 + box_h, x0 : x0 + gw], g)
    cv2.circle(ink, (int(layout.dot_x * scale), int(70 * scale)), int(5 * scale), 1.0, -1)
    rim = int(3 * scale)
    cv2.rectangle(ink, (rim, rim), (w - rim - 1, h - rim - 1), 1.0, max(1, int(2 * scale)))
    a = ink[..., None]
    return (plate * (1 - a) + np.array(fg, np.float32) * a).astype(np.uint8)


def _context(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """What surrounds a plate: a vehicle body of some colour, with shading and a bumper line."""
    base = rng.integers(0, 256, 3).astype(np.float32)
    ramp = np.linspace(rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.2), h, dtype=np.float32)[:, None, None]
    grain = cv2.resize(rng.normal(0, 6, (h // 8 + 1, w // 8 + 1, 3)).astype(np.float32), (w, h))
    img = np.clip(base * ramp + grain, 0, 255).astype(np.uint8)
    y = int(rng.uniform(0, h))
    cv2.line(img, (0, y), (w, y), tuple(int(v) for v in rng.integers(0, 256, 3)), int(rng.integers(1, 6)))
    return img


def sample_crop(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One training crop (HEIGHT x WIDTH grey) and its 7 characters."""
    text = random_text(rng)
    if rng.random() < 0.25:
        truck = bool(rng.random() < 0.6)
        plate = cv2.resize(plate_patch(text[:2] + "·" + text[2:], truck), (220, 70), interpolation=cv2.INTER_LINEAR)
    else:
        plate = render_plate(text, "yellow" if rng.random() < 0.5 else "blue", int(rng.integers(-1, 3)), 0.5)
    plate = np.clip(plate.astype(np.float32) * rng.uniform(0.55, 1.25, 3) + rng.uniform(-40, 40), 0, 255).astype(
        np.uint8
    )
    ph, pw = plate.shape[:2]
    pad_x, pad_y = int(pw * 0.3), int(ph * 0.6)
    canvas = _context(rng, ph + 2 * pad_y, pw + 2 * pad_x)
    canvas[pad_y : pad_y + ph, pad_x : pad_x + pw] = plate
    corners = np.float32([[pad_x, pad_y], [pad_x + pw, pad_y], [pad_x + pw, pad_y + ph], [pad_x, pad_y + ph]])
    # The localiser's quad: its error on each corner, then perspective (a camera above and to one side).
    seen = corners + rng.normal(0, 1, (4, 2)).astype(np.float32) * np.float32([pw * 0.025, ph * 0.06])
    seen[:, 1] += (seen[:, 0] - seen[:, 0].mean()) * rng.uniform(-0.15, 0.15)  # plate seen from one side
    margin = rng.uniform(-0.03, 0.1, 4) * np.float32([pw, ph, pw, ph])
    crop_quad = seen + np.float32(
        [[-margin[0], -margin[1]], [margin[2], -margin[1]], [margin[2], margin[3]], [-margin[0], margin[3]]]
    )
    angle = np.deg2rad(rng.normal(0, 3))
    centre = crop_quad.mean(axis=0)
    rot = np.float32([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    crop_quad = (crop_quad - centre) @ rot.T + centre
    # Small on camera: the plate is first shrunk to its on-screen width, then read at the input size.
    on_screen_w = int(np.clip(rng.lognormal(np.log(80), 0.5), 30, 260))
    on_screen_h = max(7, int(on_screen_w * rng.uniform(0.28, 0.4)))
    dst = np.float32([[0, 0], [on_screen_w, 0], [on_screen_w, on_screen_h], [0, on_screen_h]])
    small = cv2.warpPerspective(
        canvas,
        cv2.getPerspectiveTransform(crop_quad, dst),
        (on_screen_w, on_screen_h),
        flags=cv2.INTER_AREA,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if rng.random() < 0.4:
        k = int(rng.integers(1, 3)) * 2 + 1
        small = cv2.GaussianBlur(small, (k, k), 0) if rng.random() < 0.5 else cv2.blur(small, (k, 1))
    small = np.clip(small + rng.normal(0, rng.uniform(0, 8), small.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        small = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR), text


def vehicle_rear(
    rng: np.random.Generator, plate_width: int, kind: str | None = None, text: str | None = None
) -> tuple[np.ndarray, str, tuple[int, int, int, int]]:
    """A vehicle's rear seen straight on (a shaded body of random colour, a bumper, noise and JPEG),
    with a GB plate `plate_width` pixels wide, of `kind` (None: blue or yellow at random), reading `text`
    (None: a random one of the kind): the image, the plate's text and its box."""
    if kind is None:
        kind = "yellow" if rng.random() < 0.5 else "blue"
    if text is None:
        text = random_green_text(rng) if kind == "green" else random_text(rng)
    ph = round(plate_width * 140 / _LAYOUTS[len(text)].width)
    h, w = max(120, ph * 5), max(200, plate_width * 3)
    img = _context(rng, h, w)
    plate = render_plate(text, kind, int(rng.integers(-1, 3)))
    plate = cv2.resize(plate, (plate_width, ph), interpolation=cv2.INTER_AREA)
    x, y = int(rng.integers(0, w - plate_width)), int(rng.integers(h // 3, h - ph))
    img[y : y + ph, x : x + plate_width] = plate
    img = np.clip(img * rng.uniform(0.6, 1.1) + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(50, 90))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR), text, (x, y, x + plate_width, y + ph)


def localised_crop(
    rng: np.random.Generator, plate_width: int, kind: str, crop_size: tuple[int, int], text: str | None = None
) -> tuple[np.ndarray, str]:
    """A plate of `kind` (reading `text`, None: a random one) on a vehicle rear, `plate_width` pixels wide on
    screen, cut out (BGR, `crop_size` w x h) as the colour localiser hands it to the recogniser: its corners
    off by up to 4 % of the plate's height and width. Measures the recogniser apart from finding the plate."""
    from pipeline.plates import rectify

    image, text, (x1, y1, x2, y2) = vehicle_rear(rng, plate_width, kind, text)
    quad = np.float32([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    quad += rng.uniform(-0.04, 0.04, (4, 2)).astype(np.float32) * np.float32([x2 - x1, y2 - y1])
    return rectify(image, quad, crop_size), text


def sample_batch(seed: int, n: int) -> tuple[np.ndarray, list[str]]:
    """`n` crops from `seed`, deterministic: (n, HEIGHT, WIDTH) uint8 and their texts."""
    rng = np.random.default_rng(seed)
    images, texts = zip(*(sample_crop(rng) for _ in range(n)), strict=True)
    return np.stack(images), list(texts)


__all__ = [
    "CHARSET",
    "HEIGHT",
    "KINDS",
    "WIDTH",
    "localised_crop",
    "random_green_text",
    "random_text",
    "render_plate",
    "sample_batch",
    "sample_crop",
    "vehicle_rear",
]
