"""Capture conditions applied after composition: time of day, lamps, rain, haze, blur, sensor noise, JPEG.

>>> import numpy as np
>>> cond = Conditions.sample(np.random.default_rng(3))
>>> img = np.full((36, 64, 3), 128, np.uint8)
>>> out = cond.apply(img, np.zeros((36, 64), np.uint8), [], horizon_y=10.0, rng=np.random.default_rng(0))
>>> out.shape, out.dtype
((36, 64, 3), dtype('uint8'))
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TIMES = ("day", "dusk", "night")
WEATHERS = ("clear", "rain", "haze")


@dataclass(frozen=True)
class Conditions:
    """One camera's look: fixed for a scenario, drawn anew for each dataset image."""

    time: str
    weather: str
    gain: float  # exposure
    tint: tuple[float, float, float]  # BGR white balance
    noise: float  # sensor noise sigma, grey levels
    blur: int  # horizontal motion-blur length, pixels (0 = sharp)
    jpeg: int  # re-encode quality (100 = none)
    haze: float  # haze strength at the horizon

    @classmethod
    def sample(cls, rng: np.random.Generator, time: str | None = None, weather: str | None = None) -> Conditions:
        time = time or str(rng.choice(TIMES, p=[0.55, 0.2, 0.25]))
        weather = weather or str(rng.choice(WEATHERS, p=[0.6, 0.2, 0.2]))
        tint = {
            "day": (1.0, 1.0, 1.0),
            "dusk": (0.75, 0.88, 1.05),
            "night": (1.05, 0.95, 0.9),
        }[time]
        jitter = rng.uniform(0.92, 1.08, 3)
        return cls(
            time=time,
            weather=weather,
            gain=float(rng.uniform(0.8, 1.15)),
            tint=tuple(float(t * j) for t, j in zip(tint, jitter, strict=True)),
            noise=float(rng.uniform(1.0, 5.0) * (2.0 if time == "night" else 1.0)),
            blur=int(rng.choice([0, 0, 0, 3, 5])),
            jpeg=int(rng.choice([100, 100, rng.integers(35, 90)])),
            haze=float(rng.uniform(0.35, 0.7)) if weather == "haze" else float(rng.choice([0.0, rng.uniform(0, 0.15)])),
        )

    def apply(
        self,
        img: np.ndarray,
        emissive: np.ndarray,
        lamps: list[tuple[float, float, float]],
        horizon_y: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """`emissive` marks pixels that keep their light at night; `lamps` are (u, v, radius) glows."""
        h, w = img.shape[:2]
        out = img.astype(np.float32)
        if self.time != "day":
            light = self._light_map(h, w, emissive, lamps)
            out *= light[..., None]
        out *= np.array(self.tint, np.float32) * np.float32(self.gain)
        if self.haze > 0.01:
            rows = np.arange(h, dtype=np.float32)
            far = np.clip(1.0 - (rows - horizon_y) / max(1.0, h - horizon_y), 0, 1) ** 2
            alpha = (self.haze * far)[:, None, None]
            haze = np.array([200, 200, 195] if self.time == "day" else [90, 90, 100], np.float32)
            out = out * (1 - alpha) + haze * alpha
        if self.weather == "rain":
            out = out * 0.85 + out.mean(2, keepdims=True) * 0.15
            streaks = np.zeros((h, w), np.float32)
            for _ in range(int(w * h / 900)):
                x, y = rng.uniform(0, w), rng.uniform(0, h)
                length = rng.uniform(6, 16)
                cv2.line(streaks, (int(x), int(y)), (int(x + length * 0.25), int(y + length)), 1.0, 1, cv2.LINE_AA)
            out += streaks[..., None] * 45
        if self.blur:
            out = cv2.filter2D(out, -1, np.full((1, self.blur), 1.0 / self.blur, np.float32))
        out += rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(self.noise)
        out = np.clip(out, 0, 255).astype(np.uint8)
        if self.jpeg < 100:
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg])
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return out

    def _light_map(self, h: int, w: int, emissive: np.ndarray, lamps: list[tuple[float, float, float]]) -> np.ndarray:
        ambient = 0.62 if self.time == "dusk" else 0.38
        small = np.full((h // 4, w // 4), ambient, np.float32)
        if self.time == "night":
            yy, xx = np.mgrid[0 : h // 4, 0 : w // 4].astype(np.float32) * 4
            for u, v, r in lamps:
                # Lamps light the ground below them: a pool centred a little under the lamp head.
                r = max(r, 20.0)
                d2 = (xx - u) ** 2 + ((yy - v - r * 1.2) / 1.6) ** 2
                small += 0.55 * np.exp(-d2 / (2 * (r * 1.5) ** 2))
        light = cv2.resize(np.minimum(small, 1.0), (w, h), interpolation=cv2.INTER_LINEAR)
        return np.maximum(light, emissive.astype(np.float32) * 0.95)
