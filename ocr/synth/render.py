"""Rasterise a ``Layout``: paper, rules, a QR-like code, and every text item with its exact ink box."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw

from .fonts import Face
from .layout import RGB, Layout, text_bbox

VISIBLE_ALPHA = 48  # of 255
_VISIBLE = [255 if v >= VISIBLE_ALPHA else 0 for v in range(256)]


def _dotted(mask: Image.Image, pitch: int, ox: int, oy: int) -> Image.Image:
    """The glyphs as a 24-pin dot-matrix head prints them: sampled on a grid of ``pitch`` pixels at
    twice the page resolution (fixed to the page), each hit a round dot slightly wider than the pitch.
    Sampling at page resolution would leave a CJK glyph a 10 x 10 grid, illegible even to people;
    real heads print about 24 dots per character height."""
    a = np.asarray(mask)
    h, w = a.shape
    up = cv2.resize(a, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    on = np.zeros_like(up)
    ys, xs = (-2 * oy) % pitch, (-2 * ox) % pitch
    on[ys::pitch, xs::pitch] = (up[ys::pitch, xs::pitch] > 40) * 255  # a low bar keeps thin strokes
    dot = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (pitch + 1, pitch + 1))
    dotted = cv2.GaussianBlur(cv2.dilate(on, dot), (0, 0), 0.6)
    return Image.fromarray(cv2.resize(dotted, (w, h), interpolation=cv2.INTER_AREA))


def draw_text(img: Image.Image, x: int, y: int, text: str, face: Face, size: int, color: RGB,
              anchor: str = "ls", fade: float = 1.0, dots: int = 0) -> tuple[int, int, int, int] | None:
    """Draw one string onto an RGB image; return the exact box of its ink (x1, y1 exclusive).

    The text is rendered into its own mask first, so the box is the true extent of the drawn pixels
    rather than the font's metrics: pixels at least ``VISIBLE_ALPHA`` covered count, fainter
    anti-aliasing fringes do not. ``dots`` > 1 prints the strokes as a dot-matrix printer would,
    on a grid of that pitch.
    """
    font = face.font(size)
    bx0, by0, bx1, by1 = text_bbox(face, size, text, anchor)
    pad = 2 + font.size // 4  # room for ink a font draws outside its metrics
    ox, oy = x + bx0 - pad, y + by0 - pad
    w, h = bx1 - bx0 + 2 * pad, by1 - by0 + 2 * pad
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).text((x - ox, y - oy), text, font=font, fill=255, anchor=anchor)
    if dots:
        mask = _dotted(mask, dots, ox, oy)
    ink = mask.point(_VISIBLE).getbbox()
    if fade < 1.0:
        mask = mask.point([round(v * fade) for v in range(256)])
    if ink is None:
        return None
    img.paste(color, (ox, oy, ox + w, oy + h), mask)
    return ox + ink[0], oy + ink[1], ox + ink[2], oy + ink[3]


def _paper(layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """Paper colour with a faint low-frequency unevenness (±3 levels)."""
    h, w = layout.height, layout.width
    low = rng.uniform(-3.0, 3.0, size=(max(2, h // 96), max(2, w // 96))).astype(np.float32)
    shade = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    return cv2.merge([cv2.convertScaleAbs(shade, alpha=1.0, beta=float(v)) for v in layout.paper])


def _qr(draw: ImageDraw.ImageDraw, x: int, y: int, side: int, rng: np.random.Generator, color: RGB) -> None:
    n = 25
    cells = rng.random((n, n)) < 0.5
    for fy, fx in ((0, 0), (0, n - 7), (n - 7, 0)):  # finder patterns
        cells[fy:fy + 7, fx:fx + 7] = False
        cells[fy:fy + 7, fx] = cells[fy:fy + 7, fx + 6] = True
        cells[fy, fx:fx + 7] = cells[fy + 6, fx:fx + 7] = True
        cells[fy + 2:fy + 5, fx + 2:fx + 5] = True
    step = side / n
    for i, j in zip(*np.nonzero(cells)):
        draw.rectangle((round(x + j * step), round(y + i * step), round(x + (j + 1) * step) - 1,
                        round(y + (i + 1) * step) - 1), fill=color)


def rasterize(layout: Layout, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """The clean upright page (H x W x 3 RGB) and its ground truth: (text, 4x2 quad) per GT item,
    in the layout's order (reading order)."""
    img = Image.fromarray(_paper(layout, rng))
    draw = ImageDraw.Draw(img)
    for rl in layout.rules:
        draw.line((rl.x0, rl.y0, rl.x1, rl.y1), fill=rl.color, width=rl.width)
    if layout.qr:
        _qr(draw, *layout.qr, rng, (20, 20, 20))
    lines: list[tuple[str, np.ndarray]] = []
    for it in layout.items:
        box = draw_text(img, it.x, it.y, it.text, it.face, it.size, it.color, it.anchor, it.fade, it.dots)
        if box is not None:
            x0, y0, x1, y1 = box
            lines.append((it.text, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)))
    return np.asarray(img), lines
