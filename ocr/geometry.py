"""Quadrilaterals on page images: ordering, sizes, quarter-turn rotations and perspective crops."""

from __future__ import annotations

import cv2
import numpy as np


def order_clockwise(pts: np.ndarray) -> np.ndarray:
    """Four points as top-left, top-right, bottom-right, bottom-left (image coordinates, y down)."""
    pts = np.asarray(pts, dtype=np.float32).reshape(4, 2)
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1], kind="stable")]
    tr, br = right[np.argsort(right[:, 1], kind="stable")]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def quad_size(quad: np.ndarray) -> tuple[float, float]:
    """(width, height) of a clockwise quad: the longer of each pair of opposite sides."""
    q = np.asarray(quad, dtype=np.float32)
    w = max(np.linalg.norm(q[0] - q[1]), np.linalg.norm(q[3] - q[2]))
    h = max(np.linalg.norm(q[0] - q[3]), np.linalg.norm(q[1] - q[2]))
    return float(w), float(h)


def rotate_image(image: np.ndarray, clockwise_degrees: int) -> np.ndarray:
    k = (clockwise_degrees // 90) % 4
    return np.ascontiguousarray(np.rot90(image, -k)) if k else image


def rotate_points(points: np.ndarray, clockwise_degrees: int, width: int, height: int) -> np.ndarray:
    """Map points of a ``width`` x ``height`` image through a clockwise quarter-turn rotation of that image."""
    p = np.asarray(points, dtype=np.float32)
    x, y = p[..., 0], p[..., 1]
    k = (clockwise_degrees // 90) % 4
    if k == 1:
        out = np.stack([height - y, x], axis=-1)
    elif k == 2:
        out = np.stack([width - x, height - y], axis=-1)
    elif k == 3:
        out = np.stack([y, width - x], axis=-1)
    else:
        out = p.copy()
    return out.astype(np.float32)


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Cut a text quad out of the page, straightened by a perspective warp."""
    q = np.asarray(quad, dtype=np.float32)
    w, h = quad_size(q)
    w, h = max(int(round(w)), 1), max(int(round(h)), 1)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(q, dst)
    crop = cv2.warpPerspective(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if h >= 1.5 * w:  # a vertical run of characters: read it top to bottom
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop
