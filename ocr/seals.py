"""Red seals (印章): found by their ink, their ring unrolled into a straight line the recogniser can read.

Why: a Chinese receipt names its hospital where the hospital stamps it. The red seal (收费专用章) prints the
name along its ring, and it usually lies across the printed name after 收款单位, which the OCR then reads with
characters lost (贵州民院 for 贵州省人民医院); paper forms often print no name at all besides the seal. The
ring is a second witness of the name (``claims.structure`` decides what to make of it).

How: red ink is told from black and blue print by its hue. The form's own red grid and titles are red too, so
straight runs are taken out first, and a seal is the ring left: a circle found by the Hough transform or an
oval fitted around a closed blob, kept when ink covers most of its outline. Faded stamps print pale pink: a second
search in fainter red ink adds the seals the first did not find. A seal's ring band is sampled along
the ellipse, clockwise (the way ring text reads), from the middle of the widest empty stretch of the band's
outer part (where a ring's text ends and starts again), into a strip. Each strip is read twice: as scanned,
and with only the red ink kept (black print crossing the seal turned to paper), which reads the seal better
where the printed name runs under it. Strips are recognised in the page's own batches; both readings are
kept, since which one is right is decided by what the claim expects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MAX_SEALS = 4  # per page: a receipt carries one or two; a photo of several receipts a few
MIN_COVER = 0.6  # share of the outline's length on red ink
RING = (0.93, 0.5)  # the ring band, outer → inner, in the ellipse's radii (the outline itself is at 1.0)
HOUGH_SIDE = 600  # the shorter side the circle search runs at, pixels (seals are 80+ px across at that size)
SATURATED = 60  # HSV saturation (of 255) from which a red pixel is stamp ink as it prints
# ... as a faded or thinly inked stamp prints (pale pink, 35-55: real tuning bills 1094 and 1095 have such seals).
# Searched second, only away from the seals found in saturated ink: one search this low loses seals (an oval merges
# with the ink around it), and tinted paper (about 25) stays below it.
FAINT = 45
EMPTY = 0.02  # share of red pixels below which a column of the band's outer part is empty


@dataclass(frozen=True)
class Seal:
    """An elliptical seal in page pixels: centre, semi-axes, the first axis's angle in degrees (OpenCV's
    ``fitEllipse`` convention), the share of its outline on red ink, and the saturation that ink was told at
    (``SATURATED``, or ``FAINT`` for a faded stamp)."""

    cx: float
    cy: float
    a: float
    b: float
    angle: float
    cover: float
    saturation: int = SATURATED

    @property
    def quad(self) -> tuple[tuple[float, float], ...]:
        r = max(self.a, self.b)
        return ((self.cx - r, self.cy - r), (self.cx + r, self.cy - r), (self.cx + r, self.cy + r),
                (self.cx - r, self.cy + r))

    def points(self, scale: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Page coordinates of (scale × radius, angle theta) on the ellipse; theta grows clockwise on screen."""
        phi = math.radians(self.angle)
        ex, ey = scale * self.a * np.cos(theta), scale * self.b * np.sin(theta)
        return ((self.cx + ex * math.cos(phi) - ey * math.sin(phi)).astype(np.float32),
                (self.cy + ex * math.sin(phi) + ey * math.cos(phi)).astype(np.float32))


def red_ink(image: np.ndarray, saturation: int = SATURATED) -> np.ndarray:
    """1 where an RGB pixel is red at least this saturated (stamp ink, red print), else 0."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    return (((h <= 10) | (h >= 165)) & (s >= saturation) & (v >= 80)).astype(np.uint8)


def _without_straight_runs(ink: np.ndarray) -> np.ndarray:
    """The red ink less the form's ruled lines (long horizontal and vertical runs)."""
    h, w = ink.shape
    lines = np.zeros_like(ink)
    for size in ((max(15, w // 25), 1), (1, max(15, h // 25))):
        lines |= cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, size))
    return ink & ~lines


def _cover(ink: np.ndarray, seal: Seal) -> float:
    """Share of the outline's angles with ink within ±4 % of its radius."""
    h, w = ink.shape
    theta = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    hit = np.zeros(360, bool)
    for scale in (0.96, 0.98, 1.0, 1.02, 1.04):
        xs, ys = seal.points(np.float32(scale), theta)
        hit |= ink[np.clip(ys.astype(int), 0, h - 1), np.clip(xs.astype(int), 0, w - 1)] > 0
    return float(hit.mean())


def _circles(ink: np.ndarray) -> list[Seal]:
    """Round seals by the Hough transform, on the ink shrunk to HOUGH_SIDE (it costs by the pixel), each then
    fitted on the full page."""
    h, w = ink.shape
    k = min(1.0, HOUGH_SIDE / min(h, w))
    small = cv2.resize(ink * 255, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA) if k < 1 else ink * 255
    side = min(small.shape)
    found = cv2.HoughCircles(cv2.GaussianBlur(small, (0, 0), 2 * k), cv2.HOUGH_GRADIENT, dp=1.5, minDist=side * 0.08,
                             param1=100, param2=30 * k, minRadius=round(side * 0.04), maxRadius=round(side * 0.2))
    if found is None:
        return []
    seals = []
    for cx, cy, r in found[0][:8] / k:
        if _cover(ink, Seal(float(cx), float(cy), float(r), float(r), 0.0, 0.0)) < MIN_COVER - 0.1:
            continue
        if (fitted := _outline(ink, float(cx), float(cy), float(r))) is not None:
            seals.append(fitted)
    return seals


def _outline(ink: np.ndarray, cx: float, cy: float, r: float) -> Seal | None:
    """An ellipse through the outermost ink on rays from a circle's centre (a circle found is rarely exact)."""
    h, w = ink.shape
    scales = np.linspace(1.3, 0.75, 56)
    pts = []
    for t in np.linspace(0, 2 * np.pi, 180, endpoint=False):
        xs, ys = (cx + scales * r * math.cos(t)).astype(int), (cy + scales * r * math.sin(t)).astype(int)
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        hit = np.flatnonzero(inside & (ink[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)] > 0))
        if len(hit):
            pts.append((xs[hit[0]], ys[hit[0]]))
    if len(pts) < 60:
        return None
    (ex, ey), (d1, d2), angle = cv2.fitEllipse(np.array(pts, np.float32))
    return Seal(ex, ey, d1 / 2, d2 / 2, angle, 0.0)


def _ovals(ink: np.ndarray) -> list[Seal]:
    """Ellipses around closed blobs of ring ink: the oval seals the circle transform misses."""
    side = min(ink.shape)
    k = max(3, round(side * 0.012)) | 1
    closed = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    seals = []
    for c in contours:
        if len(c) < 20:
            continue
        (cx, cy), (d1, d2), angle = cv2.fitEllipse(c)
        if 0.08 * side <= min(d1, d2) and max(d1, d2) <= 0.45 * side:
            seals.append(Seal(cx, cy, d1 / 2, d2 / 2, angle, 0.0))
    return seals


def find_seals(image: np.ndarray, limit: int = MAX_SEALS) -> list[Seal]:
    """The red seals on an RGB page: those in saturated ink, best-covered first, then faint ones away from them;
    overlapping candidates keep the better one."""
    kept: list[Seal] = []
    for saturation in (SATURATED, FAINT):
        ink = _without_straight_runs(red_ink(image, saturation))
        scored = [Seal(s.cx, s.cy, s.a, s.b, s.angle, _cover(ink, s), saturation) for s in _ovals(ink) + _circles(ink)]
        for s in sorted(scored, key=lambda s: -s.cover):
            if s.cover < MIN_COVER or min(s.a, s.b) < 0.5 * max(s.a, s.b):
                continue
            if any(math.hypot(s.cx - k.cx, s.cy - k.cy) < 0.6 * max(k.a, k.b) for k in kept):
                continue
            kept.append(s)
    return kept[:limit]


def unroll(image: np.ndarray, seal: Seal) -> tuple[np.ndarray, np.ndarray]:
    """The seal's ring band as two straight RGB strips, outer edge up, read left to right: as scanned, and
    with only the red ink kept (as black on white). Each holds the ring's text and a third of it again."""
    outer, inner = RING
    mean_r = (seal.a + seal.b) / 2
    cols = max(32, round(2 * math.pi * mean_r * (outer + inner) / 2))
    rows = max(16, round((outer - inner) * mean_r))
    radii = np.linspace(outer, inner, rows, dtype=np.float32)

    # the red ink of the seal's square only (the ring lies within its longer radius), not of the whole page again
    r = math.ceil(max(seal.a, seal.b)) + 2
    x0, y0 = max(0, math.floor(seal.cx) - r), max(0, math.floor(seal.cy) - r)
    ink = red_ink(image[y0:math.floor(seal.cy) + r + 1, x0:math.floor(seal.cx) + r + 1], seal.saturation)

    def sample(img: np.ndarray, theta: np.ndarray, mode: int, fill, origin=(0, 0)) -> np.ndarray:
        t, s = np.meshgrid(theta, radii)
        xs, ys = seal.points(s, t)
        return cv2.remap(img, xs - origin[0], ys - origin[1], mode, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)

    theta = np.linspace(0, 2 * np.pi, cols, endpoint=False, dtype=np.float32)
    profile = sample(ink, theta, cv2.INTER_NEAREST, 0, (x0, y0))[: rows * 2 // 5].mean(axis=0)
    start = _widest_gap_middle(profile)
    theta = theta + theta[start] if start is not None else theta + np.float32(math.pi / 2 - math.radians(seal.angle))
    used = np.flatnonzero(sample(ink, theta, cv2.INTER_NEAREST, 0, (x0, y0))[: rows * 2 // 5].mean(axis=0) > EMPTY)
    lo, hi = (max(0, used[0] - rows // 2), used[-1] + rows // 2) if len(used) else (0, cols)
    scanned = sample(image, theta, cv2.INTER_LINEAR, (255, 255, 255))[:, lo:hi]
    # a third of the ring again after its end: a ring whose text has no clear gap (吉林大学第一医院住院处) is
    # then read whole once, wherever the strip starts
    scanned = np.concatenate([scanned, scanned[:, : scanned.shape[1] // 3]], axis=1)
    c = scanned.astype(np.int16)
    redness = c[..., 0] - np.maximum(c[..., 1], c[..., 2])
    only_red = np.clip(255 - 2 * redness, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(scanned), np.dstack([only_red] * 3)


def _widest_gap_middle(profile: np.ndarray) -> int | None:
    """Index of the middle of the longest circular run of empty columns, or None when none is empty."""
    empty = np.convolve(np.r_[profile[-2:], profile, profile[:2]], np.ones(5) / 5, "valid") < EMPTY
    n = len(empty)
    best_len, best_end, run = 0, 0, 0
    for i in range(2 * n):
        run = run + 1 if empty[i % n] else 0
        if min(run, n) > best_len:
            best_len, best_end = min(run, n), i
    return None if best_len == 0 else (best_end - best_len // 2) % n
