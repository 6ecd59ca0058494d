"""Red ink stamps (印章): a ring or oval outline, words along its upper arc, a star or words in the
middle; semi-transparent, uneven ink, slightly turned. Stamps are never ground truth."""

from __future__ import annotations

import math
import random

import cv2
import numpy as np
from PIL import Image, ImageDraw

from .fonts import Face
from .layout import Stamp


def _star(draw: ImageDraw.ImageDraw, cx: float, cy: float, radius: float) -> None:
    pts = []
    for k in range(10):
        a = -math.pi / 2 + k * math.pi / 5
        rr = radius if k % 2 == 0 else radius * 0.4
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    draw.polygon(pts, fill=255)


def _mask(stamp: Stamp, face: Face, scale: float, r: random.Random) -> Image.Image:
    if stamp.kind == "oval":
        a, b = r.uniform(95, 120) * scale, r.uniform(60, 75) * scale
    else:
        a = b = r.uniform(95, 130) * scale
    size = (round(2 * a + 8), round(2 * b + 8))
    cx, cy = size[0] / 2, size[1] / 2
    m = Image.new("L", size, 0)
    d = ImageDraw.Draw(m)
    line = max(2, round(r.uniform(0.035, 0.05) * b))
    d.ellipse((cx - a, cy - b, cx + a, cy + b), outline=255, width=line)

    ring = stamp.ring_text
    n = max(len(ring), 1)
    cs0 = b * 0.27
    ra, rb = a - line - cs0 * 0.7, b - line - cs0 * 0.7
    arc = (ra + rb) / 2
    cs = max(8, round(min(cs0, arc * math.radians(230) / (n * 1.1))))  # at most 230 degrees of arc
    span = n * cs * 1.1 / arc
    font = face.font(cs)
    for i, ch in enumerate(ring):
        phi = -span / 2 + span * (i + 0.5) / len(ring)
        px, py = cx + ra * math.sin(phi), cy - rb * math.cos(phi)
        angle = math.degrees(math.atan2(rb * math.sin(phi), ra * math.cos(phi)))
        glyph = Image.new("L", (cs * 2, cs * 2), 0)
        ImageDraw.Draw(glyph).text((cs, cs), ch, font=font, fill=255, anchor="mm")
        glyph = glyph.rotate(-angle, resample=Image.Resampling.BILINEAR)
        m.paste(255, (round(px - cs), round(py - cs)), glyph)

    inner = stamp.center_text
    if stamp.kind == "round":
        _star(d, cx, cy, b * 0.28)
        fs = max(10, round(min(b * 0.22, 1.5 * a / max(len(inner), 1))))
        d.text((cx, cy + b * 0.52), inner, font=face.font(fs), fill=255, anchor="mm")
    else:
        fs = max(10, round(min(b * 0.3, 1.3 * a / max(len(inner), 1))))
        d.text((cx, cy + b * 0.1), inner, font=face.font(fs), fill=255, anchor="mm")
    return m.rotate(r.uniform(-25, 25), resample=Image.Resampling.BILINEAR, expand=True)


def draw_stamp(img: np.ndarray, stamp: Stamp, faces: list[Face], scale: float, r: random.Random,
               rng: np.random.Generator) -> dict:
    """Multiply a red stamp into ``img`` (in place) centred at the stamp's point; returns its parameters."""
    pool = [f for f in faces if f.style in ("sans", "serif", "ming") and f.covers(stamp.ring_text + stamp.center_text)]
    face = r.choice(pool or faces)
    mask = np.asarray(_mask(stamp, face, scale, r), np.float32) / 255.0
    # uneven ink: low-frequency density times a little grain
    h, w = mask.shape
    low = cv2.resize(rng.uniform(0.45, 1.0, (max(2, h // 24), max(2, w // 24))).astype(np.float32), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    opacity = r.uniform(0.55, 0.85)
    alpha = np.clip(mask * low * opacity, 0, 1)
    red = np.array([r.randint(190, 235), r.randint(20, 70), r.randint(30, 80)], np.float32) / 255.0
    x0, y0 = stamp.cx - w // 2, stamp.cy - h // 2
    H, W = img.shape[:2]
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if sx0 >= sx1 or sy0 >= sy1:
        return {}
    a = alpha[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0, None]
    region = img[sy0:sy1, sx0:sx1].astype(np.float32)
    img[sy0:sy1, sx0:sx1] = np.clip(region * (1 - a) + region * red * a, 0, 255).astype(np.uint8)
    return {"name": "stamp", "kind": stamp.kind, "center": [stamp.cx, stamp.cy], "opacity": round(opacity, 3),
            "font": face.name}
