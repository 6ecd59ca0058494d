"""Print under a red seal: the stamp's ink taken out by colour deconvolution, and the text there detected again.

Why: a seal pressed across a grid hides the print under it from the detector (a light dot-matrix amount under the
ring, a category name under the star), and the claim loses the item. Painting the red pixels out loses the print
where the two inks overlap (化验费 came back as 费), and a single colour channel leaves dark stamps legible (their
words then read as lines of their own). Inks on paper multiply: in absorbance (−log of the light a channel reflects)
a pixel is the sum of each ink's amount times that ink's colour. With the stamp's colour (the mean absorbance of the
pixels ``ocr.seals.red_ink`` marks) and the print's (the other dark pixels), each pixel is split into the two by
least squares, and the print alone is drawn again as grey on white.

Only the band of page rows a seal spans is handled, the page's full width (a band four radii wide either side of
the seal cut lines that cross it at its sides and read fewer items: 0.925 → 0.915 on development dot-matrix forms),
and only text the page's own detection missed is added: a new box mostly inside the page's own
boxes is dropped. A box that overlaps one of the page's boxes reaching into the seal reads that line again, and
replaces it when it reads what the page read and what the stamp hid (``supersedes``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ocr.geometry import crop_quad, quad_size
from ocr.seals import SATURATED, Seal, red_ink

VERSION = "unstamped-band/1+reread/2+thickest/1"  # part of OCR cache keys (benchmarks.bills_real.ocr_config)
BAND = 1.15  # the band's half height, in the seal's largest radius
COVERED = 0.5  # a new box with at least this share of its area inside the page's own boxes is not new
REREAD_IOU = 0.5  # a box that overlaps one of the page's own this much reads that line again
REREAD_CONFIDENCE = 0.9  # ... and its reading replaces the page's only when at least this sure
THICKEST = 3.0  # a box found under a seal is at most this many times as thick as the page's median line
DARK = 0.6  # summed absorbance above which a pixel is ink
MIN_PIXELS = 20  # pixels needed to estimate an ink's colour
_RED = np.array([0.1, 1.0, 1.0], np.float32)  # absorbance of red ink: it reflects red, absorbs green and blue
_BLACK = np.ones(3, np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-6)


def unstamp(image: np.ndarray, saturation: int = SATURATED) -> np.ndarray:
    """The RGB image with its red stamp ink (red from ``saturation`` on: ``ocr.seals.red_ink``) taken out: the other
    print as grey on white (RGB)."""
    f = image.astype(np.float32)
    paper = np.percentile(f.reshape(-1, 3), 95, axis=0) + 1.0
    absorb = np.maximum(0.0, -np.log((f + 1.0) / paper))
    stamp = red_ink(image, saturation) > 0
    near_stamp = cv2.dilate(stamp.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    print_ = (absorb.sum(-1) > DARK) & ~near_stamp
    red = _unit(absorb[stamp].mean(0) if stamp.sum() >= MIN_PIXELS else _RED)
    other = _unit(absorb[print_].mean(0) if print_.sum() >= MIN_PIXELS else _BLACK)
    amounts = absorb.reshape(-1, 3) @ np.linalg.pinv(np.stack([red, other], 1)).T
    grey = 255.0 * np.exp(-np.maximum(0.0, amounts[:, 1]) * other.mean()).reshape(image.shape[:2])
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def covered(quad: np.ndarray, mask: np.ndarray) -> float:
    """Share of the quad's area (within the mask's bounds) on the mask's ones."""
    x0, y0 = np.maximum(np.floor(quad.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(quad.max(0)).astype(int) + 1, mask.shape[::-1])
    if x1 <= x0 or y1 <= y0:
        return 0.0
    one = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(one, [(quad - [x0, y0]).astype(np.int32)], 1)
    return float((one & mask[y0:y1, x0:x1]).sum()) / max(1, int(one.sum()))


def _iou(p: np.ndarray, q: np.ndarray) -> float:
    """Of the two quads' upright bounding boxes."""
    (ax0, ay0), (ax1, ay1), (bx0, by0), (bx1, by1) = p.min(0), p.max(0), q.min(0), q.max(0)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    return float(inter / max((ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter, 1e-6))


def _meets(quad: np.ndarray, seal: Seal) -> bool:
    """The quad's box reaches into the seal's circle (its larger radius)."""
    (x0, y0), (x1, y1) = quad.min(0), quad.max(0)
    dx, dy = max(x0 - seal.cx, 0.0, seal.cx - x1), max(y0 - seal.cy, 0.0, seal.cy - y1)
    return dx * dx + dy * dy < max(seal.a, seal.b) ** 2


@dataclass(frozen=True)
class Found:
    """A box detected under a seal: its quad in page pixels, its crop from the unstamped band, and the page's own
    box it reads again (an index into the page's quads), or None for print the page's detection missed."""

    quad: np.ndarray
    crop: np.ndarray
    rereads: int | None = None


def under_seals(image: np.ndarray, seals: Sequence[Seal], quads: Sequence[np.ndarray],
                detect: Callable[[np.ndarray], list[np.ndarray]]) -> list[Found]:
    """Print under the seals, detected in the unstamped band of rows each seal spans: boxes the page's own
    detection (``quads``) missed, and boxes that overlap one of its boxes reaching into a seal (the stamp may have
    cut that box short: ``supersedes`` decides once both are read). ``detect``: an RGB image → its text quads."""
    h, w = image.shape[:2]
    taken = np.zeros((h, w), np.uint8)
    for q in quads:
        cv2.fillPoly(taken, [np.asarray(q, np.int32)], 1)
    # a box thicker than the page's print is no line of it (a shadow on a photo came out as one 470 px high)
    thickest = THICKEST * float(np.median([min(quad_size(q)) for q in quads])) if quads else h
    found: list[Found] = []
    again: set[int] = set()
    for seal in seals:
        half = BAND * max(seal.a, seal.b)
        y0, y1 = max(0, int(seal.cy - half)), min(h, int(seal.cy + half) + 1)
        if y1 - y0 < 8:
            continue
        band = unstamp(np.ascontiguousarray(image[y0:y1]), seal.saturation)
        for q in detect(band):
            if min(quad_size(q)) > thickest:
                continue
            on_page = (q + np.array([0.0, y0], np.float32)).astype(np.float32)
            if covered(on_page, taken) < COVERED:
                found.append(Found(on_page, crop_quad(band, q)))
                cv2.fillPoly(taken, [on_page.astype(np.int32)], 1)  # found once when two seals' bands overlap
                continue
            iou, old = max(((_iou(on_page, np.asarray(q)), i) for i, q in enumerate(quads)), key=lambda t: t[0],
                           default=(0.0, -1))
            if iou >= REREAD_IOU and old not in again and _meets(np.asarray(quads[old], np.float32), seal):
                found.append(Found(on_page, crop_quad(band, q), old))
                again.add(old)
    return found


_UNSPACED = re.compile(r"[\s,，:：;；.。·]")


def supersedes(page_text: str, unstamped_text: str, confidence: float) -> bool:
    """The reading under the stamp (read with ``confidence``) is the page's reading with what the stamp hid: it holds
    every character the page read, in order, and more (药费 → 西药费, 91.84 → 191.84, 7998 → 7998.93), and is read
    surely (个人账户 → 个人账户5个 at 0.885, the seal's ink left over 支付, is not). A different reading of the same
    characters (其他费 / 莫他费, 508.60 / 608.60) is not taken."""
    if confidence < REREAD_CONFIDENCE:
        return False
    a = _UNSPACED.sub("", unicodedata.normalize("NFKC", page_text))
    b = _UNSPACED.sub("", unicodedata.normalize("NFKC", unstamped_text))
    if len(b) <= len(a) or not a:
        return False
    rest = iter(b)
    return all(c in rest for c in a)
