"""Item grids of photographed bills: rendered with photo damage, read by the real OCR engine.

Each case is a tuning seed (7200+, ``render_page(..., photo=True)``) whose items were all lost or partly
lost before the page's geometry was modelled: rows fanning out to a vanishing point beside the page (far
side left or right), columns leaning towards one above or below it (far side top), a 单位 column that OCR
read as one tall vertical line. The benchmark's photo seeds (9200+) are never used here.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from decimal import Decimal

import pytest

from claims.layout import Cell, cells_of, group_rows, upright_columns
from claims.structure import structure_page
from core.records import TextLine
from ocr.synth import render_page

CASES = {  # seed: what the photo does to its itemised list
    7264: "far side right: rows fan out",
    7205: "far side top: columns lean",
    7229: "far side left, and a 单位 column read as one vertical line",
}


def _key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


@pytest.mark.parametrize("seed", sorted(CASES))
def test_photographed_itemised_list_keeps_every_item(ocr_engine, seed):
    page = render_page(seed, photo=True)
    assert page.meta["template"] == "itemised"
    assert any(d["name"] == "angled_shot" for d in page.meta["degradations"])
    claim = structure_page(ocr_engine.read_image(page.image, doc_id=f"photo{seed}"))
    truth = Counter((_key(i["name"]), Decimal(i["amount"])) for i in page.meta["fields"]["items"])
    got = Counter((_key(str(i.name.value)), i.amount.value) for i in claim.items)
    assert sum((truth & got).values()) >= len(truth) - 1, (CASES[seed], truth - got, got - truth)
    assert sum((got - truth).values()) <= 1, (CASES[seed], got - truth)


def _perspective(x: float, y: float, far: float) -> tuple[float, float]:
    """A page point seen with its right edge (or with ``far`` < 0 its bottom edge) narrowed: a
    homography whose vanishing point lies 1 / |far| pixels from the page's origin."""
    w = 1 + far * (x if far > 0 else y)
    return x / w, y / w


def _line(x0: float, x1: float, y: float, text: str, far: float) -> TextLine:
    corners = [(x0, y), (x1, y), (x1, y + 24), (x0, y + 24)]
    return TextLine(box=tuple(_perspective(x, yy, far) for x, yy in corners), text=text, confidence=0.99)


def test_rows_fanning_to_a_vanishing_point_are_levelled():
    """Without OCR: a grid whose far right edge is 14 % shorter. Its top and bottom rows slope by
    several degrees in opposite directions; after levelling each printed row is one row again."""
    far = 0.14 / 1200
    lines = [_line(60 + 380 * k, 300 + 380 * k, 100 + 40 * r, f"r{r}c{k}", far) for r in range(30) for k in range(3)]
    slopes = [math.degrees(math.atan2(ln.box[1][1] - ln.box[0][1], ln.box[1][0] - ln.box[0][0]))
              for ln in lines[:3] + lines[-3:]]
    assert max(slopes) - min(slopes) > 4
    rows = group_rows(cells_of(lines))
    assert [sorted(c.text for c in row) for row in rows] == [[f"r{r}c{k}" for k in range(3)] for r in range(30)]


def test_leaning_columns_are_stood_upright():
    """Without OCR: a far top edge makes a right-aligned amount column lean into the narrow column
    beside it; ``upright_columns`` puts every amount back under its header."""
    far = -0.12 / 1400
    header = [_line(100, 160, 60, "名称", far), _line(900, 960, 60, "金额", far), _line(1000, 1050, 60, "类别", far)]
    body = [[_line(100, 220, 100 + 36 * r, f"药{r}", far), _line(900 + 10 * (r % 3), 980, 100 + 36 * r, "12.00", far),
             _line(1000, 1040, 100 + 36 * r, "甲", far)] for r in range(36)]
    cells = cells_of([*header, *(c for row in body for c in row)])
    head, rows = cells[:3], [cells[3 + 3 * r: 6 + 3 * r] for r in range(36)]
    lean = [row[1].x1 for row in rows]
    assert max(lean) - min(lean) > 20  # the amounts' right edge drifts by more than a gutter
    head, rows = upright_columns(head, rows)
    assert max(row[1].x1 for row in rows) - min(row[1].x1 for row in rows) < 4
    assert all(isinstance(c, Cell) for row in rows for c in row)
