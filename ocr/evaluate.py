"""Character accuracy of OCR output against a rendered page's exact ground truth.

Each recognised line is assigned to the ground-truth line its box overlaps most; the recognised pieces of
a ground-truth line are joined left to right and compared by edit distance. White space is ignored (CJK
text has no reliable spaces) and full-/half-width forms are folded. Recognised lines that overlap no ground truth (a stamp's text, say) are
counted apart as ``spurious`` rather than as errors: the ground truth does not describe them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein

from core.records import TextLine
from ocr.geometry import rotate_points


@dataclass
class CharScore:
    errors: int = 0
    chars: int = 0
    lines: int = 0
    exact_lines: int = 0
    spurious: int = 0

    @property
    def accuracy(self) -> float:
        return 1.0 - self.errors / self.chars if self.chars else 1.0

    def __iadd__(self, other: CharScore) -> CharScore:
        for field in ("errors", "chars", "lines", "exact_lines", "spurious"):
            setattr(self, field, getattr(self, field) + getattr(other, field))
        return self


def normalise(text: str) -> str:
    """NFKC folds full- and half-width forms (（ vs (), which the recogniser emits interchangeably."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def rect_of(points: np.ndarray) -> tuple[float, float, float, float]:
    p = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def overlap(a: tuple, b: tuple) -> float:
    """Intersection area over the smaller rectangle's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / max(smaller, 1e-6)


def score_page(predicted: Sequence[TextLine], truth: Sequence[tuple[str, np.ndarray]], *,
               truth_size: tuple[int, int] = (0, 0), rotation: int = 0) -> CharScore:
    """``truth``: (text, quad) in the rendered image's pixels; ``rotation``: what the engine turned that
    image by (clockwise), so truth boxes are mapped into the engine's upright frame first."""
    width, height = truth_size
    gt_rects = [rect_of(rotate_points(q, rotation, width, height)) for _, q in truth]
    assigned: list[list[TextLine]] = [[] for _ in truth]
    score = CharScore()
    for line in predicted:
        r = rect_of(np.array(line.box))
        overlaps = [overlap(r, g) for g in gt_rects]
        best = int(np.argmax(overlaps)) if overlaps else -1
        if best < 0 or overlaps[best] < 0.3:
            score.spurious += 1
            continue
        assigned[best].append(line)
    for (text, _), pieces in zip(truth, assigned):
        pieces.sort(key=lambda t: t.left)
        want, got = normalise(text), normalise("".join(p.text for p in pieces))
        dist = Levenshtein.distance(want, got)
        score.errors += dist
        score.chars += len(want)
        score.lines += 1
        score.exact_lines += int(dist == 0)
    return score
