"""Page geometry for structuring bills: OCR lines as deskewed cells, rows, right neighbours, columns.

Why deskew first: a scanned or photographed bill is rarely straight, and across a 1,200-pixel row a
1.5° skew moves a value by 30 pixels, more than the gap between two printed rows. The skew is read
from the OCR quads themselves (the top edge of every wide line), and each line's box is turned back
by it; a photo taken at an angle is then levelled row by row (``row_level``: the rows' vanishing
point) and a table's leaning columns stood upright (``upright_columns``). Rows and columns are then
plain interval tests on the corrected boxes. The original quad is kept for the ``BillField.box`` a
reviewer is shown.
"""

from __future__ import annotations

import math
import statistics
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

from core.records import Quad, TextLine

from .glyphs import simplify

__all__ = [
    "Cell",
    "cells_of",
    "column_of",
    "columns_from_headers",
    "group_rows",
    "median_height",
    "nfkc",
    "right_neighbour",
    "row_level",
    "same_row",
    "skew_angle",
    "unstack",
    "upright_columns",
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
    alternatives: tuple[tuple[int, str, float], ...] = ()  # the recogniser's runner-ups (core.records.TextLine)

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
        """The text folded, without spaces and in simplified glyphs, for matching labels and headers."""
        return simplify("".join(nfkc(self.text).split()))


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
    """The page's lines as cells, turned back by the page's skew (about the origin) and then levelled
    by the rows' vanishing point (``row_level``), so that one printed row is one band of y everywhere."""
    a = -skew_angle(lines)
    c, s = math.cos(a), math.sin(a)
    turned = [[(x * c - y * s, x * s + y * c) for x, y in line.box] for line in lines]
    level = row_level([q for q, line in zip(turned, lines) if len(line.box) == 4])
    out = []
    for i, (line, pts) in enumerate(zip(lines, turned)):
        xs = [p[0] for p in pts]
        ys = [level(x, y) for x, y in pts]
        # a turned axis-aligned box grows by the corners: shrink back to the text's own height
        h = math.dist((xs[0], ys[0]), (xs[3], ys[3])) if len(pts) == 4 else max(ys) - min(ys)
        cy = sum(ys) / len(ys)
        out.append(Cell(line.text, line.confidence, line.box, min(xs), cy - h / 2, max(xs), cy + h / 2, i,
                        line.alternatives))
    return out


def row_level(quads: Sequence[Sequence[tuple[float, float]]]):
    """``(x, y) -> y`` that makes the page's printed rows level: the height at which the row through a
    point crosses the page's middle.

    Why: a photo taken at an angle is a perspective view, and in it the rows of a page are not parallel
    but meet in a vanishing point beside the page; with a far edge 10 % shorter, rows a page apart differ
    in slope by several degrees, so no one rotation makes them all level. The point is fitted to the
    centre lines of the wide OCR lines.
    """
    segs = []
    for q in quads:
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = q
        left, right = ((x0 + x3) / 2, (y0 + y3) / 2), ((x1 + x2) / 2, (y1 + y2) / 2)
        if math.dist(left, right) > 3 * max(math.dist((x0, y0), (x3, y3)), 1):
            segs.append((left, right))
    fit = _vanishing_point(segs, across=False)
    if fit is None:
        return lambda x, y: y
    v, mid, scale = fit

    def level(x: float, y: float) -> float:
        px, py = (x - mid[0]) / scale, (y - mid[1]) / scale
        b, c = v[0] - px * v[2], px * v[1] - py * v[0]  # the line (px, py, 1) × v: a·x + b·y + c = 0
        return mid[1] - scale * c / b if abs(b) > 1e-12 else y  # ... where it meets x = mid

    return level


def _vanishing_point(segs: Sequence[tuple[tuple[float, float], tuple[float, float]]], across: bool):
    """The point where lines through ``segs`` meet, homogeneous in coordinates centred and scaled by the
    segments' extent, or ``None`` when there are too few or it is implausible for a page's rows
    (``across`` False: it must lie to the side) or columns (``across`` True: above or below).

    Least squares on homogeneous lines, each weighted by its length (a long segment's slope is surer),
    refitted without the segments that disagree most (a fold, a stamp's curved text, a chance alignment);
    parallel lines give a point at infinity, i.e. a plain rotation or shear. A point closer than four
    page extents is not a perspective a photo of a flat page can have."""
    if len(segs) < 8:
        return None
    pts = np.array([p for seg in segs for p in seg], float)
    mid, scale = pts.mean(axis=0), float(np.ptp(pts, axis=0).max()) or 1.0
    ends = np.concatenate([(pts - mid) / scale, np.ones((len(pts), 1))], axis=1)
    lines = np.cross(ends[0::2], ends[1::2])
    weight = np.linalg.norm(lines[:, :2], axis=1)  # the segment's length
    lines /= np.maximum(weight, 1e-12)[:, None]
    keep = weight > 0
    for _ in range(3):
        a = lines[keep] * weight[keep, None]
        v = np.linalg.eigh(a.T @ a)[1][:, 0]  # the least-squares null vector
        resid = np.abs(lines @ v) / np.linalg.norm(v)
        keep &= resid <= max(3 * np.median(resid[keep]), 1e-4)
    off = v[0] if across else v[1]  # the component that must be small
    if abs(off) > 0.2 * math.hypot(v[0], v[1]) or math.hypot(v[0], v[1]) < 4 * abs(v[2]):
        return None
    return v, mid, scale


def median_height(cells: Sequence[Cell]) -> float:
    """The page's typical text height: the median cell height (0 on an empty page)."""
    return sorted(c.height for c in cells)[len(cells) // 2] if cells else 0.0


def unstack(cells: list[Cell], line_height: float) -> list[Cell]:
    """Single characters printed one under another (a 单位 column of 支, 瓶 …) can come back from OCR as
    one tall vertical line, which would join the grid's rows: such a line is cut into one cell per
    character, each a line high, keeping its quad for provenance."""
    out = []
    for c in cells:
        n = len(c.key)
        if n >= 2 and c.height > 1.8 * line_height and c.height > 1.5 * (c.x1 - c.x0):
            step = c.height / n
            out += [replace(c, text=ch, y0=c.y0 + k * step, y1=c.y0 + (k + 1) * step, alternatives=())
                    for k, ch in enumerate(c.key)]
        else:
            out.append(c)
    return out


def join_spaced(cells: list[Cell], word: str, line_height: float) -> list[Cell]:
    """A two-character ``word`` printed with wide letter spacing (合      计) that OCR read as two cells, one per
    character, on one row and within three line heights of each other: one cell again, so it reads as the word."""
    first, second = word
    out = list(cells)
    for a in [c for c in cells if c.key == first]:
        b = min((c for c in out if c.key == second and same_row(a, c) and 0 < c.x0 - a.x1 <= 3 * line_height),
                key=lambda c: c.x0, default=None)
        if b is not None and a in out:
            out[out.index(a)] = replace(a, text=word, x1=b.x1, y0=min(a.y0, b.y0), y1=max(a.y1, b.y1),
                                        alternatives=())
            out.remove(b)
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
        # boxes of neighbours overlap a little, on light or tinted paper by up to a character: a cell starting
        # that far inside this one is still its neighbour when it reaches well past it
        overlap = cell.x1 - other.x0
        inside = overlap > cell.height or (overlap > 0.3 * cell.height and other.x1 < cell.x1 + 2 * cell.height)
        if other is cell or inside:
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


def upright_columns(header: Sequence[Cell], rows: Sequence[Sequence[Cell]]
                    ) -> tuple[list[Cell], list[list[Cell]]]:
    """The table's cells with x moved so that its columns stand upright under the header.

    Why: in a photo taken from above or below, the page's vertical lines meet in a vanishing point, so
    each column leans by an amount that grows with its distance from the middle, and down a long table
    the right-aligned amounts drift into the gutter beside a narrow column (金额 | 类别). The columns'
    vanishing point is read from the table itself: an edge (left, right or centre) that lines up between
    two neighbouring rows is a short piece of one column's line. Nothing moves when the lean is too small
    to matter.
    """
    lines = [list(header), *rows]
    segs = []
    for above, below in pairwise(lines):
        for a in above:
            for b in below:
                tol = 0.3 * min(a.height, b.height)
                segs += [((ea, a.cy), (eb, b.cy)) for ea, eb in ((a.x0, b.x0), (a.x1, b.x1), (a.cx, b.cx))
                         if b.cy > a.cy and abs(ea - eb) < tol]
    fit = _vanishing_point(segs, across=True) if len(segs) >= 12 else None
    if fit is None:
        return list(header), [list(r) for r in rows]
    v, mid, scale = fit
    y_ref = (statistics.fmean(h.cy for h in header) - mid[1]) / scale

    def back(x: float, y: float) -> float:
        px, py = (x - mid[0]) / scale, (y - mid[1]) / scale
        a, b, c = py * v[2] - v[1], v[0] - px * v[2], px * v[1] - py * v[0]  # the line (px, py, 1) × v
        return mid[0] - scale * (b * y_ref + c) / a if abs(a) > 1e-12 else x  # ... where it meets y = y_ref

    moved = [[replace(c, x0=back(c.x0, c.cy), x1=back(c.x1, c.cy)) for c in r] for r in lines]
    if max(max(abs(m.x0 - c.x0), abs(m.x1 - c.x1)) for r, mr in zip(lines, moved) for c, m in zip(r, mr)) < 2.0:
        return list(header), [list(r) for r in rows]
    return moved[0], moved[1:]


def _gutter(a: float, b: float, body: Sequence[Cell]) -> float:
    if not body or b - a < 2:
        return (a + b) / 2
    xs = np.arange(math.ceil(a), math.floor(b) + 1)
    x0 = np.array([c.x0 for c in body])[:, None]
    x1 = np.array([c.x1 for c in body])[:, None]
    cover = ((x0 <= xs) & (xs <= x1)).sum(axis=0).tolist()
    low = min(cover)
    best, run_start, best_span = (a + b) / 2, None, -1
    for k, n in enumerate(cover + [low + 1]):  # a sentinel closes the last run
        if n == low and run_start is None:
            run_start = k
        elif n != low and run_start is not None:
            if k - run_start > best_span:
                best_span, best = k - run_start, float(xs[0]) + (run_start + k - 1) / 2
            run_start = None
    return best


def column_of(cell: Cell, columns: Sequence[tuple[float, float]]) -> int:
    """The column the cell overlaps most (by x extent)."""
    def overlap(rng: tuple[float, float]) -> float:
        return min(cell.x1, rng[1]) - max(cell.x0, rng[0])
    return max(range(len(columns)), key=lambda j: overlap(columns[j]))
