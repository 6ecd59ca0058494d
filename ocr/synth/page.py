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
from .catalogue import CatalogueNames, load_catalogue_names
from .content import KINDS as BILL_KINDS
from .content import item_fields, sample_bill
from .fonts import all_faces
from .layout import REFERENCE_WIDTH
from .render import draw_text, rasterize
from .templates import INKS, build, build_pages, paper_colour
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


@dataclass(frozen=True)
class RenderedDocument:
    """A bill printed on several pages: each page with its own ground truth (``meta["fields"]``: the items
    it prints, the total only where printed), and the whole document's in ``meta["fields"]`` here."""

    pages: tuple[RenderedPage, ...]
    seed: int
    meta: dict


def _quad(q: np.ndarray) -> Quad:
    return tuple((float(x), float(y)) for x, y in q)  # type: ignore[return-value]


def _catalogue_names(catalogue: str | Path | None, faces) -> CatalogueNames | None:
    return load_catalogue_names(Path(catalogue)).drawable(faces) if catalogue is not None else None


def render_page(seed: int, *, rotation: int = 0, degrade: bool = True, width: int = REFERENCE_WIDTH,
                fonts: Sequence[Path] | None = None, kind: str | None = None, photo: bool = False,
                catalogue: str | Path | None = None) -> RenderedPage:
    """One bill-like page. The same arguments always give the same pixels.

    Content and layout come from ``random.Random(seed)``; degradations from their own seeded
    generators, so ``degrade=False`` shows the same text in the same places as ``degrade=True``
    (before its geometric effects). ``rotation`` is applied last and exactly.

    ``kind`` forces one of ``KINDS`` (default: a medical bill of a random kind; ``"vat_invoice"`` is
    only drawn when asked for). ``photo`` adds photo damage (folds, shadows, an angled shot) to the
    degradation, from streams of its own: without it a seed renders what it always rendered.

    ``catalogue``: a catalogue folder (the layout of ``../shared/data/catalog``) to name the line items
    of medical bills from, read at render time (``ocr.synth.catalogue``); each item's ground truth then
    also holds its ``code``. The names come from a stream of their own: the page is the bill it would
    be without, with other names (and the layout those names need).
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
        names = _catalogue_names(catalogue, faces)
        bill = sample_bill(r, kind, names=names, names_r=random.Random(f"catalogue:{seed}"))
        layout = build(bill, r, faces, width)
    return _pixels(layout, bill.kind, bill.fields(), faces, width, seed, (seed,), degrade=degrade, photo=photo,
                   rotation=rotation)


def _pixels(layout, kind: str, fields: dict, faces, width: int, seed: int, stream: tuple, *, degrade: bool,
            photo: bool, rotation: int = 0) -> RenderedPage:
    """Rasterise and degrade one laid-out page; ``stream`` keys its random generators (a page's seed, or
    a document's seed and page number), so each page is damaged in its own way."""
    key = ":".join(map(str, stream))
    img, gt = rasterize(layout, np.random.default_rng([*stream, 0]))
    quads = np.stack([q for _, q in gt]) if gt else np.zeros((0, 4, 2))
    applied: list[dict] = []
    if degrade:
        img, quads, applied = dg.page(
            img, quads, paper=layout.paper, stamps=layout.stamps, faces=faces, scale=width / REFERENCE_WIDTH,
            r=random.Random(f"degrade:{key}"), rng=np.random.default_rng([*stream, 1]),
            photo=random.Random(f"photo:{key}") if photo else None,
            photo_rng=np.random.default_rng([*stream, 3]) if photo else None)
    img, quads = dg.rotate90(img, quads, rotation)
    h, w = img.shape[:2]
    quads = np.clip(quads, 0, [w, h])
    lines = tuple(GtLine(text, _quad(q)) for (text, _), q in zip(gt, quads))
    used = {it.face.name for it in layout.items}
    meta = {
        "template": layout.template,
        "kind": kind,
        "upright_size": [layout.width, layout.height],
        "paper": list(layout.paper),
        "fonts": sorted(used),
        "font_sizes": sorted({it.size for it in layout.items}),
        "degradations": applied,
        "dropped_items": layout.dropped,
        "fields": fields,
    }
    return RenderedPage(image=img, lines=lines, rotation=rotation, seed=seed, meta=meta)


def render_document(seed: int, *, rows_per_page: int | None = None, degrade: bool = True, photo: bool = False,
                    width: int = REFERENCE_WIDTH, fonts: Sequence[Path] | None = None,
                    catalogue: str | Path | None = None) -> RenderedDocument:
    """A long 费用清单 (20 to 60 items) printed over as many pages as its rows need (``rows_per_page``,
    default 14 to 24): page 1 with the title, patient block and the first rows, later pages continuing the
    grid under a repeated header, the last with the totals. Its own seed space: ``render_document(s)``
    and ``render_page(s)`` are unrelated bills.

    Each page's ``meta["fields"]`` is the whole bill's ground truth with ``items`` cut to the page's own
    and, on every page but the last, no total, total in words or payments (it prints none);
    ``meta["page"]`` and ``meta["pages"]`` number it. The document's ``meta["fields"]`` is the whole bill.
    ``catalogue``: item names from a catalogue folder, as for ``render_page``.
    """
    faces = all_faces(tuple(Path(f) for f in fonts) if fonts is not None else None)
    r = random.Random(f"document:{seed}")
    bill = sample_bill(r, "itemised", n_items=(20, 60), names=_catalogue_names(catalogue, faces),
                       names_r=random.Random(f"catalogue:document:{seed}"))
    per_page = rows_per_page or r.randint(14, 24)
    laid = build_pages(bill, r, faces, width, per_page)
    whole = bill.fields()
    pages = []
    for k, (layout, items) in enumerate(laid):
        last = k == len(laid) - 1
        fields = whole | {"items": [item_fields(i) for i in items]}
        if not last:
            fields |= {"total": None, "total_words": None, "payments": {}}
        page = _pixels(layout, bill.kind, fields, faces, width, seed, (seed, 100 + k), degrade=degrade,
                       photo=photo)
        page.meta.update(page=k, pages=len(laid))
        pages.append(page)
    return RenderedDocument(pages=tuple(pages), seed=seed, meta={"rows_per_page": per_page, "fields": whole})


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
