"""Rendered pages and lines with exact ground truth: the public entry points of ``ocr.synth``."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.records import Quad

from . import degrade as dg
from . import lexicon as lx
from .content import KINDS as BILL_KINDS
from .content import sample_bill
from .fonts import all_faces
from .layout import REFERENCE_WIDTH
from .render import draw_text, rasterize
from .templates import INKS, build, paper_colour
from .vat import build as build_vat
from .vat import sample_vat_invoice

ROTATIONS = (0, 90, 180, 270)
VAT = "vat_invoice"
KINDS = (*BILL_KINDS, VAT)  # what ``render_page(kind=...)`` can force


@dataclass(frozen=True)
class GtLine:
    text: str
    box: Quad  # tight quad around the ink, final image pixels, clockwise from the text's own top-left


@dataclass(frozen=True)
class RenderedPage:
    image: np.ndarray  # H x W x 3 uint8 RGB
    lines: tuple[GtLine, ...]  # reading order of the upright page
    rotation: int  # clockwise degrees the page was turned by; turning back by -rotation makes it upright
    seed: int
    meta: dict  # template, fonts, degradations applied, the bill's fields ...


def _quad(q: np.ndarray) -> Quad:
    return tuple((float(x), float(y)) for x, y in q)  # type: ignore[return-value]


def render_page(seed: int, *, rotation: int = 0, degrade: bool = True, width: int = REFERENCE_WIDTH,
                fonts: Sequence[Path] | None = None, kind: str | None = None, photo: bool = False) -> RenderedPage:
    """One bill-like page. The same arguments always give the same pixels.

    Content and layout come from ``random.Random(seed)``; degradations from their own seeded
    generators, so ``degrade=False`` shows the same text in the same places as ``degrade=True``
    (before its geometric effects). ``rotation`` is applied last and exactly.

    ``kind`` forces one of ``KINDS`` (default: a medical bill of a random kind; ``"vat_invoice"`` is
    only drawn when asked for). ``photo`` adds photo damage (folds, shadows, an angled shot) to the
    degradation, from streams of its own: without it a seed renders what it always rendered.
    """
    if rotation not in ROTATIONS:
        raise ValueError(f"rotation must be one of {ROTATIONS}, not {rotation}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    faces = all_faces(tuple(Path(f) for f in fonts) if fonts is not None else None)
    r = random.Random(seed)
    if kind == VAT:
        bill = sample_vat_invoice(r)
        layout = build_vat(bill, r, faces, width)
    else:
        bill = sample_bill(r, kind)
        layout = build(bill, r, faces, width)
    img, gt = rasterize(layout, np.random.default_rng([seed, 0]))
    quads = np.stack([q for _, q in gt]) if gt else np.zeros((0, 4, 2))
    applied: list[dict] = []
    if degrade:
        img, quads, applied = dg.page(
            img, quads, paper=layout.paper, stamps=layout.stamps, faces=faces, scale=width / REFERENCE_WIDTH,
            r=random.Random(f"degrade:{seed}"), rng=np.random.default_rng([seed, 1]),
            photo=random.Random(f"photo:{seed}") if photo else None,
            photo_rng=np.random.default_rng([seed, 3]) if photo else None)
    img, quads = dg.rotate90(img, quads, rotation)
    h, w = img.shape[:2]
    quads = np.clip(quads, 0, [w, h])
    lines = tuple(GtLine(text, _quad(q)) for (text, _), q in zip(gt, quads))
    used = {it.face.name for it in layout.items}
    meta = {
        "template": layout.template,
        "kind": bill.kind,
        "upright_size": [layout.width, layout.height],
        "paper": list(layout.paper),
        "fonts": sorted(used),
        "font_sizes": sorted({it.size for it in layout.items}),
        "degradations": applied,
        "dropped_items": layout.dropped,
        "fields": bill.fields(),
    }
    return RenderedPage(image=img, lines=lines, rotation=rotation, seed=seed, meta=meta)


def render_line(seed: int, text: str | None = None, *, degrade: bool = True) -> tuple[np.ndarray, str]:
    """One text line (RGB, tight with a small margin) and its text: a random bill string unless given.

    Raises ValueError when no available font draws every character of ``text``.
    """
    r = random.Random(seed)
    text = lx.line_text(r) if text is None else text
    faces = [f for f in all_faces() if f.covers(text)]
    if not faces or not text.strip():
        raise ValueError(f"no font draws every character of {text!r}")
    face = r.choice(faces)
    size = r.randint(18, 40)
    paper = paper_colour(r, r.random() < 0.3)
    x0, y0, x1, y1 = face.font(size).getbbox(text, anchor="ls")
    slack = size  # room for the drawing, cropped to the ink below
    canvas = Image.new("RGB", (x1 - x0 + 2 * slack, y1 - y0 + 2 * slack), paper)
    ink = draw_text(canvas, slack - x0, slack - y0, text, face, size, r.choice(INKS), "ls", r.uniform(0.8, 1.0))
    if ink is None:
        raise ValueError(f"nothing drawn for {text!r}")
    lm, rm, tm, bm = (r.randint(2, max(3, size // 4)) for _ in range(4))
    img = np.asarray(canvas.crop((ink[0] - lm, ink[1] - tm, ink[2] + rm, ink[3] + bm)))
    if degrade:
        img, _ = dg.line(img, paper=paper, r=r, rng=np.random.default_rng([seed, 2]))
    return np.ascontiguousarray(img), text


def sample_pages(n: int, seed: int = 0, **kw) -> Iterator[RenderedPage]:
    """``n`` pages, page ``i`` from seed ``seed + i``; keyword arguments go to ``render_page``."""
    for i in range(n):
        yield render_page(seed + i, **kw)
