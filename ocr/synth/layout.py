"""Geometry of a page before any image effect: which text goes where, in which face, size and colour.

A ``Canvas`` places text items and rules (table lines) on an upright page. Every text item is one
future draw call and one ground-truth line; the canvas refuses an item whose box would touch one
already placed (it is dropped and counted), so ground-truth boxes never overlap by construction.
Templates (``templates.py``) decide what goes where; rendering (``render.py``) rasterises.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

from .fonts import Face

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 exclusive)

REFERENCE_WIDTH = 1240  # sizes in templates are pixels at this page width
MIN_SIZE = 12


@dataclass(frozen=True)
class TextItem:
    text: str
    face: Face
    size: int
    x: int  # the anchor point, in upright page pixels
    y: int
    anchor: str  # Pillow anchor: "ls" left-baseline, "ms" middle-baseline, "rs" right-baseline
    color: RGB
    fade: float = 1.0  # ink density 0..1 (worn printer ribbon, faint toner)
    dots: int = 0  # > 1: dot-matrix print with this dot pitch in pixels


@dataclass(frozen=True)
class Rule:
    x0: int
    y0: int
    x1: int
    y1: int
    color: RGB
    width: int = 1


@dataclass(frozen=True)
class Stamp:
    """Where a stamp belongs (a degradation may draw it): centre, kind and its words."""

    kind: str  # "round" (hospital 收费专用章) or "oval" (票据监制章)
    cx: int
    cy: int
    ring_text: str
    center_text: str


@dataclass
class Layout:
    width: int
    height: int
    paper: RGB
    items: list[TextItem] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    qr: tuple[int, int, int] | None = None  # x, y, side: a QR-like code (not text)
    stamps: list[Stamp] = field(default_factory=list)
    template: str = ""
    dropped: int = 0


@dataclass(frozen=True)
class Style:
    """Per-page choices shared by a template's parts."""

    title_face: Face
    label_face: Face
    value_face: Face
    ink: RGB  # values (printed by the hospital's system)
    frame: RGB  # preprinted labels and rules
    colon: str  # "：" or ":"
    joined: bool  # label and value drawn as one string ("票据代码：123") rather than two


@lru_cache(maxsize=8192)
def text_bbox(face: Face, size: int, text: str, anchor: str = "ls") -> Box:
    """The font's box of ``text`` drawn with its anchor at (0, 0) (cached: layouts measure a lot)."""
    return face.font(size).getbbox(text, anchor=anchor)


class Canvas:
    def __init__(self, width: int, r: random.Random, faces: list[Face], paper: RGB, template: str):
        self.width = width
        self.scale = width / REFERENCE_WIDTH
        self.r = r
        self.faces = faces
        self.layout = Layout(width=width, height=0, paper=paper, template=template)
        self._boxes: list[Box] = []  # every placed text box and reserved area
        self.bottom = 0

    # -- units ----------------------------------------------------------------------------
    def px(self, v: float) -> int:
        """A length given at the reference width, in this page's pixels."""
        return max(1, round(v * self.scale))

    def size(self, lo: int, hi: int) -> int:
        return max(MIN_SIZE, self.px(self.r.randint(lo, hi)))

    # -- measuring ------------------------------------------------------------------------
    @staticmethod
    def baseline_in(face: Face, size: int, top: int, bottom: int) -> int:
        """Baseline that centres a line of CJK text vertically between top and bottom."""
        _, y0, _, y1 = text_bbox(face, size, "票据金额")
        return round((top + bottom) / 2 - (y0 + y1) / 2)

    @staticmethod
    def width_of(text: str, face: Face, size: int) -> int:
        x0, _, x1, _ = text_bbox(face, size, text)
        return x1 - x0

    # -- placing --------------------------------------------------------------------------
    def reserve(self, box: Box) -> None:
        self._boxes.append(box)
        self.bottom = max(self.bottom, box[3])

    def free(self, box: Box, pad: int = 2) -> bool:
        x0, y0, x1, y1 = box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad
        return all(x1 <= b[0] or b[2] <= x0 or y1 <= b[1] or b[3] <= y0 for b in self._boxes)

    def _fit(self, text: str, face: Face, size: int, max_width: int | None) -> tuple[str, int]:
        if not max_width:
            return text, size
        while size > MIN_SIZE and self.width_of(text, face, size) > max_width:
            size -= 1
        while len(text) > 1 and self.width_of(text, face, size) > max_width:
            text = text[:-1]
        return text, size

    def _face_for(self, text: str, face: Face) -> Face | None:
        if face.covers(text):
            return face
        return next((f for f in self.faces if f.covers(text)), None)

    def text(
        self,
        x: int,
        y: int,
        text: str,
        face: Face,
        size: int,
        color: RGB,
        *,
        anchor: str = "ls",
        max_width: int | None = None,
        fade: float = 1.0,
        dots: int = 0,
        shifts: tuple[tuple[int, int], ...] = ((0, 0),),
    ) -> Box | None:
        """Place one string with its anchor at (x, y); returns its box, or None when it could not go.

        ``max_width`` shrinks the size (down to MIN_SIZE) and then cuts characters off the end;
        ``shifts`` are offsets tried in order (the first that fits wins), for misaligned printing.
        """
        text = text.strip()
        use = self._face_for(text, face) if text else None
        if use is None:
            self.layout.dropped += bool(text)
            return None
        text, size = self._fit(text, use, size, max_width)
        bx0, by0, bx1, by1 = text_bbox(use, size, text, anchor)
        for dx, dy in shifts:
            box = (x + dx + bx0, y + dy + by0, x + dx + bx1, y + dy + by1)
            if box[0] < 0 or box[2] > self.width or box[1] < 0 or not self.free(box):
                continue
            self.layout.items.append(TextItem(text, use, size, x + dx, y + dy, anchor, color, fade, dots))
            self.reserve(box)
            return box
        self.layout.dropped += 1
        return None

    def rule(self, x0: int, y0: int, x1: int, y1: int, color: RGB, width: int = 1) -> None:
        self.layout.rules.append(Rule(x0, y0, x1, y1, color, width))
        self.bottom = max(self.bottom, y0, y1)

    def box_rules(self, x0: int, y0: int, x1: int, y1: int, color: RGB, width: int = 1) -> None:
        self.rule(x0, y0, x1, y0, color, width)
        self.rule(x1, y0, x1, y1, color, width)
        self.rule(x1, y1, x0, y1, color, width)
        self.rule(x0, y1, x0, y0, color, width)

    def cell(
        self,
        x0: int,
        x1: int,
        top: int,
        bottom: int,
        text: str,
        face: Face,
        size: int,
        color: RGB,
        align: str = "left",
        pad: int | None = None,
        **kw,
    ) -> Box | None:
        """A string inside a table cell, vertically centred, never wider than the cell."""
        if not text:
            return None
        pad = self.px(8) if pad is None else pad
        y = self.baseline_in(face, size, top, bottom)
        x, anchor = {"left": (x0 + pad, "ls"), "center": ((x0 + x1) // 2, "ms"), "right": (x1 - pad, "rs")}[align]
        return self.text(x, y, text, face, size, color, anchor=anchor, max_width=x1 - x0 - 2 * pad, **kw)

    def pair(self, x: int, y: int, label: str, value: str, style: Style, size: int, *,
             max_width: int | None = None) -> Box | None:
        """A label and its value at baseline y: one string when the style joins them, else two
        strings far enough apart (at least 1.5 em) that a detector sees two lines."""
        if style.joined:
            return self.text(x, y, f"{label}{style.colon}{value}", style.label_face, size, style.ink, max_width=max_width)
        lab = f"{label}{style.colon}" if self.r.random() < 0.7 else label
        lbox = self.text(x, y, lab, style.label_face, size, style.frame, max_width=max_width)
        if lbox is None:
            return None
        vx = lbox[2] + max(self.px(24), round(size * self.r.uniform(1.5, 2.5)))
        room = None if max_width is None else max_width - (vx - x)
        if room is not None and room < size:
            return lbox
        vbox = self.text(vx, y, value, style.value_face, size, style.ink, max_width=room)
        return lbox if vbox is None else (lbox[0], min(lbox[1], vbox[1]), vbox[2], max(lbox[3], vbox[3]))

    def finish(self, min_height: int = 0, margin: int = 40) -> Layout:
        self.layout.height = max(min_height, self.bottom + self.px(margin))
        return self.layout
