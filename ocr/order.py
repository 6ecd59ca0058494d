"""Reading order: rows top to bottom, left to right within a row, tolerant of mild skew."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ocr.geometry import quad_size


def skew_angle(quads: Sequence[np.ndarray]) -> float:
    """Median angle (radians) of the lines' top edges, weighted towards long lines."""
    angles = [np.arctan2(q[1, 1] - q[0, 1], q[1, 0] - q[0, 0]) for q in quads if quad_size(q)[0] > 2 * quad_size(q)[1]]
    return float(np.median(angles)) if angles else 0.0


def reading_order(quads: Sequence[np.ndarray]) -> list[int]:
    """Indices of ``quads`` in reading order.

    Centres are first rotated by the page's skew, so a long slightly tilted row still groups as one row;
    a box joins the current row when its centre lies within half a line height of the row's centre.
    """
    if not quads:
        return []
    theta = -skew_angle(quads)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]], dtype=np.float32)
    centres = np.array([q.mean(axis=0) for q in quads]) @ rot.T
    heights = np.array([max(quad_size(q)[1], 1.0) for q in quads])
    rows: list[list[int]] = []
    row_y = row_h = 0.0
    for i in np.argsort(centres[:, 1], kind="stable"):
        if rows and abs(centres[i, 1] - row_y) <= 0.5 * min(heights[i], row_h):
            rows[-1].append(int(i))
            n = len(rows[-1])
            row_y += (centres[i, 1] - row_y) / n
        else:
            rows.append([int(i)])
            row_y, row_h = centres[i, 1], heights[i]
    return [i for row in rows for i in sorted(row, key=lambda j: centres[j, 0])]
