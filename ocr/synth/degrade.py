"""Scan-like image effects and the matching transforms of ground-truth boxes.

Boxes are ``(N, 4, 2)`` float arrays in pixel-edge coordinates (a pixel ``(i, j)`` covers
``[j, j+1) x [i, i+1)``). OpenCV warps use pixel-centre coordinates, hence the half-pixel shifts.
Every effect takes its randomness from the generators it is given.
"""

from __future__ import annotations

import random

import cv2
import numpy as np

from .fonts import Face
from .layout import RGB, Stamp
from .stamp import draw_stamp

Quads = np.ndarray  # (N, 4, 2) float64


# -- geometry ----------------------------------------------------------------------------------


def affine_points(quads: Quads, M: np.ndarray) -> Quads:
    p = quads.reshape(-1, 2) - 0.5
    out = p @ M[:, :2].T + M[:, 2] + 0.5
    return out.reshape(quads.shape)


def perspective_points(quads: Quads, Hm: np.ndarray) -> Quads:
    if quads.size == 0:
        return quads
    p = quads.reshape(-1, 1, 2) - 0.5
    return (cv2.perspectiveTransform(p, Hm) + 0.5).reshape(quads.shape)


def skew(img: np.ndarray, quads: Quads, angle: float, border: RGB) -> tuple[np.ndarray, Quads]:
    """Rotate by ``angle`` degrees (counter-clockwise positive, as OpenCV) about the centre,
    growing the canvas so nothing is cut."""
    h, w = img.shape[:2]
    M = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    cos, sin = abs(M[0, 0]), abs(M[0, 1])
    nw, nh = int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos))
    M[0, 2] += (nw - w) / 2
    M[1, 2] += (nh - h) / 2
    out = cv2.warpAffine(img, M, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=tuple(int(v) for v in border))
    return out, affine_points(quads, M)


def wobble(img: np.ndarray, quads: Quads, rng: random.Random, amount: float, border: RGB) -> tuple[np.ndarray, Quads]:
    """A mild perspective: each page corner moves inwards by up to ``amount`` of the page size."""
    h, w = img.shape[:2]
    src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    sx, sy = [1, -1, -1, 1], [1, 1, -1, -1]
    dst = np.float32([[x + s * rng.uniform(0, amount) * w, y + t * rng.uniform(0, amount) * h]
                      for (x, y), s, t in zip(src, sx, sy)])
    Hm = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(img, Hm, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=tuple(int(v) for v in border))
    return out, perspective_points(quads, Hm)


def rotate90(img: np.ndarray, quads: Quads, rotation: int) -> tuple[np.ndarray, Quads]:
    """Rotate clockwise by 0/90/180/270 degrees, exactly (no resampling). Each quad keeps its point
    order, so its first point is still the text's own top-left corner."""
    if rotation % 90 or not 0 <= rotation < 360:
        raise ValueError(f"rotation must be 0, 90, 180 or 270, not {rotation}")
    out, q = img, quads.copy()
    for _ in range(rotation // 90):
        h = out.shape[0]
        out = np.rot90(out, k=-1)
        q = np.stack([h - q[..., 1], q[..., 0]], axis=-1)
    return np.ascontiguousarray(out), q


# -- photometric -------------------------------------------------------------------------------


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma)


def downscale(img: np.ndarray, factor: float) -> np.ndarray:
    """Lose resolution like a low-dpi scan: shrink, then grow back to the same size."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def low_contrast(img: np.ndarray, factor: float, shift: float) -> np.ndarray:
    x = img.astype(np.float32)
    out = 255 - (255 - x) * factor + shift  # ink fades towards the paper; paper moves a little
    return np.clip(out, 0, 255).astype(np.uint8)


def noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    n = rng.standard_normal(img.shape[:2], dtype=np.float32) * sigma
    return np.clip(img.astype(np.float32) + n[..., None], 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


# -- the chain ---------------------------------------------------------------------------------

PROBABILITIES = {
    "stamp": 0.7, "wobble": 0.15, "skew": 0.5, "downscale": 0.2, "blur": 0.35, "low_contrast": 0.25,
    "noise": 0.5, "jpeg": 0.5,
}


def page(img: np.ndarray, quads: Quads, *, paper: RGB, stamps: list[Stamp], faces: list[Face], scale: float,
         r: random.Random, rng: np.random.Generator) -> tuple[np.ndarray, Quads, list[dict]]:
    """Degrade a clean upright page: stamps, geometry, then optics and encoding, each with its own
    seeded probability. Returns the image, transformed quads and a record of what was applied."""
    applied: list[dict] = []
    img = img.copy()
    border = paper if r.random() < 0.7 else (r.randint(150, 210),) * 3
    for st in stamps:
        if r.random() < PROBABILITIES["stamp"]:
            params = draw_stamp(img, st, faces, scale, r, rng)
            if params:
                applied.append(params)
    if r.random() < PROBABILITIES["wobble"]:
        amount = r.uniform(0.005, 0.025)
        img, quads = wobble(img, quads, r, amount, border)
        applied.append({"name": "wobble", "amount": round(amount, 4)})
    if r.random() < PROBABILITIES["skew"]:
        angle = r.uniform(-3.0, 3.0)
        img, quads = skew(img, quads, angle, border)
        applied.append({"name": "skew", "degrees_ccw": round(angle, 3)})
    return _optics(img, r, rng, applied), quads, applied


def _optics(img: np.ndarray, r: random.Random, rng: np.random.Generator, applied: list[dict]) -> np.ndarray:
    """Resolution loss, blur, contrast, sensor noise and JPEG, in scan order. Strengths stay where
    18 px text is still legible to a person: the pages test OCR, not guesswork."""
    lost = False
    if r.random() < PROBABILITIES["downscale"]:
        f = r.uniform(0.6, 0.9)
        img = downscale(img, f)
        applied.append({"name": "downscale", "factor": round(f, 3)})
        lost = True
    if r.random() < PROBABILITIES["blur"] * (0.3 if lost else 1.0):
        s = r.uniform(0.4, 0.9)
        img = blur(img, s)
        applied.append({"name": "blur", "sigma": round(s, 3)})
    if r.random() < PROBABILITIES["low_contrast"]:
        f, sh = r.uniform(0.5, 0.8), r.uniform(-15, 5)
        img = low_contrast(img, f, sh)
        applied.append({"name": "low_contrast", "factor": round(f, 3), "shift": round(sh, 2)})
    if r.random() < PROBABILITIES["noise"]:
        s = r.uniform(2, 10)
        img = noise(img, s, rng)
        applied.append({"name": "noise", "sigma": round(s, 3)})
    if r.random() < PROBABILITIES["jpeg"]:
        q = r.randint(30, 90)
        img = jpeg(img, q)
        applied.append({"name": "jpeg", "quality": q})
    return img


def line(img: np.ndarray, *, paper: RGB, r: random.Random, rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """Degrade a single text-line image: a slight tilt, then the page optics."""
    applied: list[dict] = []
    if r.random() < 0.3:
        angle = r.uniform(-1.5, 1.5)
        img, _ = skew(img, np.zeros((0, 4, 2)), angle, paper)
        applied.append({"name": "skew", "degrees_ccw": round(angle, 3)})
    return _optics(img, r, rng, applied), applied
