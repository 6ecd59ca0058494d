"""Page geometry for structuring bills: OCR lines as deskewed cells, rows, right neighbours, columns.

Why deskew first: a scanned or photographed bill is rarely straight, and across a 1,200-pixel row a
1.5° skew moves a value by 30 pixels, more than the gap between two printed rows. The skew is read
from the OCR quads themselves (the top edge of every wide line), and each line's box is turned back
by it; rows and columns are then plain interval tests on the turned boxes. The original quad is kept
for the ``BillField.box`` a reviewer is shown.
"""

from __future__ import annotations

import math
import statistics
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from core.records import Quad, TextLine

__all__ = [
    "Cell",
    "cells_of",
    "column_of",
    "columns_from_headers",
    "group_rows",
    "nfkc",
    "right_neighbour",
    "same_row",
    "skew_angle",
]


def nfkc(text: str) -> str:
    """Full-width forms folded to half-width (ＡＢ１２：→ AB12:), surrounding whitespace dropped."""
    return unicodedata.normalize("NFKC", text).strip()


@dataclass(frozen=True)
class Cell:
    """One OCR line in deskewed page coordinates (x0 < x1, y0 < y1) with its text and original quad."""

    text: str
    confidence: float
    box: Quad
    x0: float
    y0: float
    x1: float
    y1: float
    index: int  # position in the page's reading order

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def key(self) -> str:
        """The text folded and without spaces, for matching labels and headers."""
        return "".join(nfkc(self.text).split())


def skew_angle(lines: Sequence[TextLine]) -> float:
    """Median slope (radians, y down) of the top edges of lines at least three times wider than tall."""
    angles = []
    for line in lines:
        (x0, y0), (x1, y1) = line.box[0], line.box[1]
        w, h = x1 - x0, line.bottom - line.top
        if w > 3 * max(h, 1):
            angles.append(math.atan2(y1 - y0, x1 - x0))
    return statistics.median(angles) if angles else 0.0


def cells_of(lines: Sequence[TextLine]) -> list[Cell]:
    """The page's lines as cells, turned back by the page's skew (about the origin)."""
    a = -skew_angle(lines)
    c, s = math.cos(a), math.sin(a)
    out = []
    for i, line in enumerate(lines):
        pts = [(x * c - y * s, x * s + y * c) for x, y in line.box]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        # a turned axis-aligned box grows by the corners: shrink back to the text's own height
        h = math.dist(line.box[0], line.box[3]) if len(line.box) == 4 else max(ys) - min(ys)
        cy = sum(ys) / 4
        out.append(Cell(line.text, line.confidence, line.box, min(xs), cy - h / 2, max(xs), cy + h / 2, i))
    return out


def same_row(a: Cell, b: Cell, tolerance: float = 0.5) -> bool:
    """Centres closer vertically than ``tolerance`` × the taller cell's height."""
    return abs(a.cy - b.cy) <= tolerance * max(a.height, b.height, 1.0)


def right_neighbour(cell: Cell, cells: Iterable[Cell], max_gap: float) -> Cell | None:
    """The nearest cell to the right of ``cell`` on its row, starting within ``max_gap`` pixels of it.

    This is how a dot-matrix value is found: printed after its pre-printed label, offset and not on
    the same baseline, but still closer to it than to anything else on the row.
    """
    best = None
    for other in cells:
        if other is cell or other.x0 < cell.x1 - 0.3 * cell.height:
            continue
        gap = other.x0 - cell.x1
        if gap <= max_gap and same_row(cell, other, 0.6) and (best is None or other.x0 < best.x0):
            best = other
    return best


def group_rows(cells: Sequence[Cell], tolerance: float = 0.5) -> list[list[Cell]]:
    """Cells grouped into rows (top to bottom), each row sorted left to right."""
    rows: list[list[Cell]] = []
    for cell in sorted(cells, key=lambda c: c.cy):
        if rows:
            row = rows[-1]
            mean = sum(c.cy for c in row) / len(row)
            height = max(max(c.height for c in row), cell.height)
            if abs(cell.cy - mean) <= tolerance * height:
                row.append(cell)
                continue
        rows.append([cell])
    return [sorted(r, key=lambda c: c.x0) for r in rows]


def columns_from_headers(headers: Sequence[Cell], body: Sequence[Cell] = ()) -> list[tuple[float, float]]:
    """Column x-ranges from header cells (left to right) and the table's body cells.

    Headers are centred over their columns but columns differ in width (a narrow 序号 beside a wide,
    left-aligned 项目名称), so the midpoint between two headers can cut a column. The boundary is put in
    the gutter instead: between two header centres, the middle of the longest stretch of x that the
    fewest body cells cover (the midpoint when there is no body). The outer columns are open-ended.
    """
    cx = [h.cx for h in headers]
    bounds = [-math.inf] + [_gutter(a, b, body) for a, b in pairwise(cx)] + [math.inf]
    return list(pairwise(bounds))


def _gutter(a: float, b: float, body: Sequence[Cell]) -> float:
    if not body or b - a < 2:
        return (a + b) / 2
    xs = range(math.ceil(a), math.floor(b) + 1)
    cover = [sum(1 for c in body if c.x0 <= x <= c.x1) for x in xs]
    low = min(cover)
    best, run_start, best_span = (a + b) / 2, None, -1
    for k, n in enumerate(cover + [low + 1]):  # a sentinel closes the last run
        if n == low and run_start is None:
            run_start = k
        elif n != low and run_start is not None:
            if k - run_start > best_span:
                best_span, best = k - run_start, xs[0] + (run_start + k - 1) / 2
            run_start = None
    return best


def column_of(cell: Cell, columns: Sequence[tuple[float, float]]) -> int:
    """The column the cell overlaps most (by x extent)."""
    def overlap(rng: tuple[float, float]) -> float:
        return min(cell.x1, rng[1]) - max(cell.x0, rng[0])
    return max(range(len(columns)), key=lambda j: overlap(columns[j]))
