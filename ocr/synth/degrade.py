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


# -- photo damage --------------------------------------------------------------------------------
# A bill photographed by a patient rather than scanned: folded, in uneven light, taken at an angle.
# Folds and shadows only change brightness (and shift whole regions without text), so every box stays
# exact; the angled shot is one homography applied to the image and the boxes alike.


def _side(shape: tuple[int, ...], p0: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Signed distance (pixels) of every pixel centre from the line through ``p0`` with unit ``normal``."""
    h, w = shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return (xs + 0.5 - p0[0]) * normal[0] + (ys + 0.5 - p0[1]) * normal[1]


def _corner_distances(quads: Quads, p0: np.ndarray, normal: np.ndarray) -> np.ndarray:
    return (quads - p0) @ normal if quads.size else np.zeros((0, 4))


def fold(img: np.ndarray, quads: Quads, r: random.Random) -> tuple[np.ndarray, Quads, dict]:
    """A crease across the page (bills are folded in halves or thirds): the far side a little darker, a
    thin shadow and highlight along the crease and, where the crease crosses no text line, the far side
    shifted by a pixel or two. A text line the crease cut would be broken, which no box describes, so
    then nothing is shifted."""
    h, w = img.shape[:2]
    across = r.random() < 0.75  # across the width: a horizontal crease
    angle = np.radians(r.uniform(-2.0, 2.0))
    normal = np.array([-np.sin(angle), np.cos(angle)]) if across else np.array([np.cos(angle), np.sin(angle)])
    length = h if across else w
    target = length * r.choice((1 / 3, 1 / 2, 2 / 3)) + length * r.uniform(-0.04, 0.04)
    shift = r.randint(1, 3)
    clear = None  # the nearest crease position that no box comes within a few pixels of
    for off in sorted(range(-round(0.05 * length), round(0.05 * length) + 1, 2), key=abs):
        p0 = np.array([w / 2, target + off]) if across else np.array([target + off, h / 2])
        d = _corner_distances(quads, p0, normal)
        if not ((d.min(axis=1) < shift + 3) & (d.max(axis=1) > -3)).any():
            clear = p0
            break
    p0 = clear if clear is not None else (np.array([w / 2, target]) if across else np.array([target, h / 2]))
    out = img.astype(np.float32)
    moved = (0, 0)
    if clear is not None:
        dx, dy = (int(v) for v in np.round(normal * shift))
        moved = (dx, dy)
        M = np.float32([[1, 0, dx], [0, 1, dy]])
        shifted = cv2.warpAffine(out, M, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        far = (_side(img.shape, p0, normal) > 0)[..., None]
        out = np.where(far, shifted, out)
        d = _corner_distances(quads, p0, normal)
        quads = quads + np.where((d.min(axis=1) > 0)[:, None, None], np.array([dx, dy], np.float64), 0.0)
    d = _side(img.shape, p0, normal)[..., None]
    darken = r.uniform(0.88, 0.97)
    step = 1 - (1 - darken) / (1 + np.exp(-d / 2.0))  # a soft step: the far side faces away from the light
    dark, light, sigma = r.uniform(25, 50), r.uniform(8, 20), r.uniform(0.8, 1.6)
    crease = -dark * np.exp(-((d + 1) ** 2) / (2 * sigma**2)) + light * np.exp(-((d - 2) ** 2) / (2 * sigma**2))
    out = np.clip(out * step + crease, 0, 255).astype(np.uint8)
    return out, quads, {"name": "fold", "across": across, "at": [round(float(v), 1) for v in p0],
                        "degrees": round(float(np.degrees(angle)), 3), "darken": round(darken, 3),
                        "shift": list(moved)}


def shadow(img: np.ndarray, r: random.Random) -> tuple[np.ndarray, dict]:
    """Uneven light: a gradient from one side, a vignette, or the soft shadow of the hand holding the
    phone (a palm and four fingers reaching in from an edge)."""
    h, w = img.shape[:2]
    kind = r.choice(("gradient", "vignette", "hand", "hand"))
    strength = r.uniform(0.15, 0.35) if kind != "hand" else r.uniform(0.25, 0.45)
    if kind == "gradient":
        a = r.uniform(0, 2 * np.pi)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (xs / w - 0.5) * np.cos(a) + (ys / h - 0.5) * np.sin(a)
        mask = np.clip(t + 0.5, 0, 1)
    elif kind == "vignette":
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        mask = np.clip(((xs / w - 0.5) ** 2 + (ys / h - 0.5) ** 2) * 2, 0, 1)
    else:
        s = 8  # drawn small and blurred: a shadow has no sharp edge
        sm = np.zeros((h // s + 1, w // s + 1), np.float32)
        sh, sw = sm.shape
        edge = r.choice(("bottom", "left", "right"))
        along = r.uniform(0.2, 0.8)
        cx, cy = {"bottom": (along * sw, sh), "left": (0, along * sh), "right": (sw, along * sh)}[edge]
        palm = r.uniform(0.12, 0.2) * sw
        cv2.ellipse(sm, (round(cx), round(cy)), (round(palm), round(palm * 1.2)), 0, 0, 360, 1.0, -1)
        inward = {"bottom": -90, "left": 0, "right": 180}[edge] + r.uniform(-25, 25)
        for k in range(4):  # fingers fan out from the palm towards the page
            a = np.radians(inward + (k - 1.5) * 14)
            fx, fy = cx + np.cos(a) * palm * 1.6, cy + np.sin(a) * palm * 1.6
            cv2.ellipse(sm, (round(fx), round(fy)), (round(palm * 0.75), round(palm * 0.16)),
                        float(np.degrees(a)), 0, 360, 1.0, -1)
        sm = cv2.GaussianBlur(sm, (0, 0), max(2.0, palm * 0.25))
        mask = cv2.resize(sm, (w, h), interpolation=cv2.INTER_LINEAR)
    tint = np.array([1.0, 1.0, r.uniform(1.0, 1.08)], np.float32)  # shade is a little bluer than light
    factor = 1 - strength * mask[..., None] / tint
    out = np.clip(img.astype(np.float32) * factor, 0, 255).astype(np.uint8)
    return out, {"name": "shadow", "kind": kind, "strength": round(strength, 3)}


def _surface(h: int, w: int, r: random.Random, rng: np.random.Generator) -> np.ndarray:
    """What a bill lies on: a desk, a table cloth or a bed sheet, unevenly lit, with a little grain."""
    base = np.array(r.choice(((120, 85, 60), (160, 130, 95), (70, 70, 75), (200, 200, 195), (90, 110, 140))),
                    np.float32)
    low = cv2.resize(rng.uniform(0.75, 1.1, (4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 6, (h, w)).astype(np.float32)
    return np.clip(base * low[..., None] + grain[..., None], 0, 255).astype(np.uint8)


def angled_shot(img: np.ndarray, quads: Quads, r: random.Random, rng: np.random.Generator
                ) -> tuple[np.ndarray, Quads, dict]:
    """A photo taken at an angle: the far side of the page shrinks (perspective), the page turns a few
    degrees and lies on a surface seen around it. One homography moves pixels and boxes alike."""
    h, w = img.shape[:2]
    mx, my = r.uniform(0.03, 0.08), r.uniform(0.03, 0.08)
    W, H = round(w * (1 + 2 * mx)), round(h * (1 + 2 * my))
    src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    dst = src + np.float32([mx * w, my * h])
    far = r.choice(("top", "bottom", "left", "right"))
    k = r.uniform(0.02, 0.07)  # how much narrower the far edge looks
    inwards = {"top": ((0, 1), k * w, (1, 0)), "bottom": ((3, 2), k * w, (1, 0)),
               "left": ((0, 3), k * h, (0, 1)), "right": ((1, 2), k * h, (0, 1))}[far]
    (a, b), amount, axis = inwards
    dst[a] += np.float32(axis) * amount
    dst[b] -= np.float32(axis) * amount
    theta = np.radians(r.uniform(-3.0, 3.0))
    centre = np.float32([W / 2, H / 2])
    rot = np.float32([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    dst = (dst - centre) @ rot.T + centre
    dst += np.float32([[r.uniform(-0.01, 0.01) * w, r.uniform(-0.01, 0.01) * h] for _ in range(4)])
    Hm = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    page_px = cv2.warpPerspective(img, Hm, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    cover = cv2.warpPerspective(np.ones((h, w), np.float32), Hm, (W, H), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT)[..., None]
    out = page_px * cover + _surface(H, W, r, rng) * (1 - cover)
    return (np.clip(out, 0, 255).astype(np.uint8), perspective_points(quads, Hm),
            {"name": "angled_shot", "far_side": far, "narrowing": round(k, 4),
             "degrees": round(float(np.degrees(theta)), 3)})


# -- the chain ---------------------------------------------------------------------------------

PROBABILITIES = {
    "stamp": 0.7, "wobble": 0.15, "skew": 0.5, "downscale": 0.2, "blur": 0.35, "low_contrast": 0.25,
    "noise": 0.5, "jpeg": 0.5,
}
PHOTO_PROBABILITIES = {"fold": 0.35, "shadow": 0.4, "angled_shot": 0.4}


def page(img: np.ndarray, quads: Quads, *, paper: RGB, stamps: list[Stamp], faces: list[Face], scale: float,
         r: random.Random, rng: np.random.Generator, photo: random.Random | None = None,
         photo_rng: np.random.Generator | None = None) -> tuple[np.ndarray, Quads, list[dict]]:
    """Degrade a clean upright page: stamps, geometry, then optics and encoding, each with its own
    seeded probability. Returns the image, transformed quads and a record of what was applied.

    ``photo`` (with ``photo_rng``) adds photo damage from its own streams: a fold after the stamps; an
    angled shot instead of the scanner's wobble and skew; a shadow over the scene. Without it the
    scan chain draws exactly what it always drew, so existing seeds keep their pixels."""
    applied: list[dict] = []
    img = img.copy()
    border = paper if r.random() < 0.7 else (r.randint(150, 210),) * 3
    for st in stamps:
        if r.random() < PROBABILITIES["stamp"]:
            params = draw_stamp(img, st, faces, scale, r, rng)
            if params:
                applied.append(params)
    shot = False
    if photo is not None:
        if photo.random() < PHOTO_PROBABILITIES["fold"]:
            img, quads, params = fold(img, quads, photo)
            applied.append(params)
        shot = photo.random() < PHOTO_PROBABILITIES["angled_shot"]
    if not shot and r.random() < PROBABILITIES["wobble"]:
        amount = r.uniform(0.005, 0.025)
        img, quads = wobble(img, quads, r, amount, border)
        applied.append({"name": "wobble", "amount": round(amount, 4)})
    if not shot and r.random() < PROBABILITIES["skew"]:
        angle = r.uniform(-3.0, 3.0)
        img, quads = skew(img, quads, angle, border)
        applied.append({"name": "skew", "degrees_ccw": round(angle, 3)})
    if photo is not None:
        if shot:
            img, quads, params = angled_shot(img, quads, photo, photo_rng or np.random.default_rng(0))
            applied.append(params)
        if photo.random() < PHOTO_PROBABILITIES["shadow"]:
            img, params = shadow(img, photo)
            applied.append(params)
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
