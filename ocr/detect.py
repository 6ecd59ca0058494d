"""Text detection: PP-OCR DB model → probability map → text quads (Differentiable Binarization post-processing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import pyclipper

from ocr.geometry import order_clockwise

Model = Callable[[np.ndarray], np.ndarray]

# PP-OCR det was trained on BGR images normalised with ImageNet statistics in that channel order.
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255


@dataclass(frozen=True)
class DetParams:
    max_side: int = 1280  # longest side fed to the network; text smaller than ~8 px after scaling is lost
    # a page whose text comes out small at max_side (a phone photo of several receipts, an A4 scan of small print)
    # is detected again finer, up to fine_max_side, so that its median line is about text_px high (0: never)
    fine_max_side: int = 2560
    small_text_px: float = 16.0  # real scans read 17-28 px here, photo sheets 11-15
    text_px: float = 24.0
    thresh: float = 0.3  # pixel probability that counts as text
    box_thresh: float = 0.6  # mean probability inside a candidate box to keep it
    unclip_ratio: float = 1.6  # DB shrinks text regions in training; grow them back by this much
    min_size: float = 3.0  # shorter side, in network pixels
    max_candidates: int = 3000


@dataclass(frozen=True)
class Detection:
    quad: np.ndarray  # (4, 2) float32, clockwise from top-left, in page pixels
    score: float


# OpenVINO keeps compiled kernels and buffers for every input shape it has seen: padding inputs up to a
# few bucket sizes bounds memory (measured: 150 distinct rec widths grew RSS by 2 GB) and saves time.
SHAPE_BUCKET = 256


def pad_to_bucket(x: np.ndarray, axes: tuple[int, ...], bucket: int) -> np.ndarray:
    """Zero-pad ``x`` at the end of ``axes`` up to the next multiple of ``bucket`` (0 = the data mean
    after normalisation, as PP-OCR pads)."""
    pad = [(0, 0)] * x.ndim
    for axis in axes:
        pad[axis] = (0, -x.shape[axis] % bucket)
    return np.pad(x, pad) if any(p[1] for p in pad) else x


def det_input(image_rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """Resize so the longest side is at most ``max_side`` and both sides are multiples of 32, normalise,
    and pad to the shape bucket. Returns NCHW input, (x, y) scale back to the page, and the (h, w) of the
    resized page inside the padded input."""
    h, w = image_rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    nh, nw = max(32, int(round(h * scale / 32)) * 32), max(32, int(round(w * scale / 32)) * 32)
    resized = cv2.resize(image_rgb[:, :, ::-1], (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x = ((resized.astype(np.float32) - _MEAN) / _STD).transpose(2, 0, 1)[None]
    return pad_to_bucket(x, (2, 3), SHAPE_BUCKET), (w / nw, h / nh), (nh, nw)


def _mini_box(contour: np.ndarray) -> tuple[np.ndarray, float]:
    rect = cv2.minAreaRect(contour)
    return order_clockwise(cv2.boxPoints(rect)), min(rect[1])


def _box_score(prob: np.ndarray, quad: np.ndarray) -> float:
    """Mean probability inside the quad (the fast variant: its bounding window, masked by the polygon)."""
    h, w = prob.shape
    x0, y0 = np.clip(np.floor(quad.min(0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(quad.max(0)).astype(int), 0, [w - 1, h - 1])
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    cv2.fillPoly(mask, [(quad - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0])


def _unclip(quad: np.ndarray, ratio: float) -> np.ndarray | None:
    area = cv2.contourArea(quad)
    length = cv2.arcLength(quad, True)
    if length == 0:
        return None
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(quad.astype(np.int64).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    grown = offset.Execute(area * ratio / length)
    if len(grown) != 1:
        return None
    return np.array(grown[0], dtype=np.float32)


def boxes_from_prob(prob: np.ndarray, scale: tuple[float, float], size: tuple[int, int],
                    params: DetParams) -> list[Detection]:
    """DB post-processing: threshold, contours, score, unclip, map back to page pixels."""
    bitmap = (prob > params.thresh).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    width, height = size
    out: list[Detection] = []
    for contour in contours[: params.max_candidates]:
        quad, side = _mini_box(contour)
        if side < params.min_size:
            continue
        score = _box_score(prob, quad)
        if score < params.box_thresh:
            continue
        grown = _unclip(quad, params.unclip_ratio)
        if grown is None:
            continue
        quad, side = _mini_box(grown.reshape(-1, 1, 2))
        if side < params.min_size + 2:
            continue
        quad = quad * np.array(scale, dtype=np.float32)
        quad[:, 0] = np.clip(quad[:, 0], 0, width)
        quad[:, 1] = np.clip(quad[:, 1], 0, height)
        out.append(Detection(quad=quad, score=score))
    return out


class Detector:
    """Page image (RGB) → text quads in page pixels."""

    def __init__(self, model: Model, params: DetParams | None = None):
        self.model, self.params = model, params or DetParams()

    def __call__(self, image_rgb: np.ndarray) -> list[Detection]:
        found = self._detect(image_rgb, self.params.max_side)
        if not (finer := self.finer_side(image_rgb.shape[:2], found)):
            return found
        # finer detection splits lines, it never loses most of them: when it does, the model failed at that size
        # (on an AVX2 CPU without VNNI the INT8 detector smeared a 2560 px photo's small print into blobs and found
        # no box, where it finds 37 at 2240 px and FP32 41 at 2560), so a side halfway down is tried, then the
        # coarse boxes are kept
        for side in (finer, (finer + self.params.max_side) // 2):
            if len(again := self._detect(image_rgb, side)) >= len(found) / 2:
                return again
        return found

    def finer_side(self, shape: tuple[int, int], found: list[Detection]) -> int | None:
        """The longest side to detect again at when the text found is small at ``max_side`` and the page has
        pixels to spare; None when it is not."""
        p, longest = self.params, max(shape)
        if not found or p.fine_max_side <= p.max_side or longest <= p.max_side:
            return None
        scale = p.max_side / longest
        height = float(np.median([min(np.linalg.norm(d.quad[1] - d.quad[0]), np.linalg.norm(d.quad[2] - d.quad[1]))
                                  for d in found])) * scale
        if height >= p.small_text_px:
            return None
        side = min(longest, p.fine_max_side, int(p.max_side * p.text_px / max(height, 1.0)))
        return side if side > p.max_side else None

    def _detect(self, image_rgb: np.ndarray, max_side: int) -> list[Detection]:
        x, scale, (vh, vw) = det_input(image_rgb, max_side)
        prob = self.model(x)[0, 0, :vh, :vw]
        h, w = image_rgb.shape[:2]
        return boxes_from_prob(prob, scale, (w, h), self.params)
