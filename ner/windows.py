"""Sliding windows over long texts, and stitching their per-character scores back into one sequence.

Windows overlap by ``overlap`` characters; each character takes its scores from the window in which it
sits furthest from an edge (the middle of each overlap is the hand-over point), so no character is ever
scored without context on one side unless it is at the very start or end of the text.
"""

from __future__ import annotations

import numpy as np


def windows(n: int, size: int, overlap: int) -> list[tuple[int, int]]:
    if size <= overlap:
        raise ValueError("window size must exceed the overlap")
    if n <= size:
        return [(0, n)]
    out, start, step = [], 0, size - overlap
    while True:
        end = min(start + size, n)
        out.append((start, end))
        if end == n:
            return out
        start += step
        if n - start < size:  # last window full-size, ending at the text's end
            start = n - size


def stitch(n: int, parts: list[tuple[tuple[int, int], np.ndarray]]) -> np.ndarray:
    """Per-character scores [n, L] from window scores ``[((start, end), scores[end-start, L]), ...]``."""
    if not parts:
        return np.zeros((0, 0), np.float32)
    out = np.empty((n, parts[0][1].shape[1]), np.float32)
    for k, ((s, e), sc) in enumerate(parts):
        lo = s if k == 0 else (s + parts[k - 1][0][1]) // 2  # hand-over: middle of the overlap
        hi = e if k == len(parts) - 1 else (parts[k + 1][0][0] + e) // 2
        out[lo:hi] = sc[lo - s:hi - s]
    return out
