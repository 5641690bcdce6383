"""Chinese text for shop signs and licence plates, rendered with the bundled subset font only.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = random_plate(rng, truck=True)
>>> p[1] in PLATE_LETTERS and p[2] == "·" and len(p) == 8
True
>>> plate_patch(p, truck=True).shape
(35, 110, 3)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_PATH = Path(__file__).resolve().parents[1] / "fonts" / "wqy-microhei-subset.ttf"

# Shanghai cameras mostly see local plates, then the neighbouring provinces, then the rest.
PROVINCES = "沪" * 12 + "苏" * 4 + "浙" * 3 + "皖" * 3 + "京津渝冀豫云辽黑湘鲁新赣鄂桂甘晋蒙陕吉闽贵粤青川宁琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # I and O are never issued
SHOP_WORDS = (
    "便利店 水果 超市 面馆 小吃 餐厅 烟酒 五金 理发 药房 快餐 包子 早餐 茶叶 服装 鲜花 手机维修 饭店 干洗 "
    "面包 咖啡 奶茶 烧烤 火锅 馄饨 生鲜 文具 眼镜 商行 日用百货 粮油 副食品 汽配 建材 家电 通讯 数码 蛋糕"
).split()
SHOP_PREFIXES = ("", "", "", "嘉定", "真新", "五谷", "一品", "三六九")
NOTICE_WORDS = ("门前三包责任区", "禁止占道经营", "城管温馨提示", "请勿停车")

# Plate colours (BGR): blue plates with white text on cars, yellow plates with black text on trucks.
_PLATE_COLORS = {False: ((160, 70, 10), (245, 245, 245)), True: ((20, 190, 240), (20, 20, 20))}


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size)


@lru_cache(maxsize=512)
def text_patch(text: str, fg: tuple[int, int, int], bg: tuple[int, int, int], height: int = 32) -> np.ndarray:
    """`text` in one line on a plain background, BGR, `height` pixels tall, width to fit."""
    font = _font(int(height * 0.72))
    left, top, right, bottom = font.getbbox(text)
    width = max(height, right - left + height // 2)
    img = Image.new("RGB", (width, height), bg[::-1])
    ImageDraw.Draw(img).text(
        ((width - (right - left)) / 2 - left, (height - (bottom - top)) / 2 - top), text, font=font, fill=fg[::-1]
    )
    return np.asarray(img)[:, :, ::-1].copy()


def random_plate(rng: np.random.Generator, truck: bool) -> str:
    """A plausible mainland plate such as 沪A·12345 (trucks and cars share the format, not the colour)."""
    tail = [str(d) for d in rng.integers(0, 10, 5)]
    for i in rng.choice(5, size=int(rng.integers(0, 2) if truck else rng.integers(0, 3)), replace=False):
        tail[i] = PLATE_LETTERS[rng.integers(len(PLATE_LETTERS))]
    province = PROVINCES[rng.integers(len(PROVINCES))]
    return f"{province}{PLATE_LETTERS[rng.integers(len(PLATE_LETTERS))]}·{''.join(tail)}"


@lru_cache(maxsize=256)
def plate_patch(plate: str, truck: bool) -> np.ndarray:
    """The plate as a 110x35 BGR patch (the 440x140 mm plate at 4 px/cm), with its white rim."""
    bg, fg = _PLATE_COLORS[truck]
    patch = np.array(text_patch(plate, fg, bg, 35))
    patch = np.array(Image.fromarray(patch).resize((110, 35), Image.BILINEAR))
    patch[[0, 1, -2, -1], :] = fg
    patch[:, [0, 1, -2, -1]] = fg
    return patch


def shop_name(rng: np.random.Generator) -> str:
    return SHOP_PREFIXES[rng.integers(len(SHOP_PREFIXES))] + SHOP_WORDS[rng.integers(len(SHOP_WORDS))]
