"""The OCR pipeline: detect → orient → sort → crop → classify direction → recognise, batched across pages.

Whole-page orientation comes from two cheap signals the pipeline computes anyway: tall detection boxes
mean the page lies on its side (turn it a quarter), and the direction classifier's votes over all lines
say whether it is upside down. A page found upside down keeps its detection (boxes are turned with it); a page on its side is
detected again once turned, since the detector's boxes around vertical text are looser. A line the classifier turns on
its own is read both ways up (``settle_turned``): the classifier is sometimes sure of a turn it should not make.
Print that a red seal hides from the detector is detected again with the stamp's ink taken out (``ocr.stamps``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np

from core.records import Page, Provenance, SealText, TextLine, TextSource
from core.settings import Settings, get_settings
from ocr.classify import DirectionClassifier
from ocr.detect import Detector, DetParams
from ocr.errors import Deadline
from ocr.geometry import crop_quad, order_clockwise, quad_size, rotate_image, rotate_points
from ocr.models import OcrModels, load
from ocr.order import reading_order
from ocr.readers import PageImage
from ocr.recognize import Recognition, Recognizer
from ocr.seals import find_seals, unroll
from ocr.stamps import supersedes, under_seals

PAGES_PER_BATCH = 4  # pages whose crops share recognition batches (bounds memory on long PDFs)
FLIP_THRESHOLD = 0.9  # a single line is turned only when the classifier is this sure it is upside down
PREPARE_VERSION = "plain/1+seals/2+finer-guard/1+turned/1"  # how a page is prepared and read (OCR cache keys)


@dataclass
class _PageWork:
    """One page between detection and recognition."""

    image: np.ndarray
    quads: list[np.ndarray]
    crops: list[np.ndarray]
    turned: list[bool]  # crops turned upside down on their own (the classifier was sure they were)
    extra: list[bool]  # crops of print found under a seal (ocr.stamps), read in batches of their own
    rereads: list[tuple[int, np.ndarray, np.ndarray]]  # (position in quads, quad, crop): a line read again unstamped
    rotation: int
    seals: list[tuple[tuple, list[np.ndarray]]]  # each seal's box and its unrolled strips


def lies_on_side(quads: Sequence[np.ndarray]) -> bool:
    """Tall boxes outweigh wide ones: the text runs vertically, so the page is turned by a quarter."""
    tall = wide = 0.0
    for q in quads:
        w, h = quad_size(q)
        if h > 1.5 * w:
            tall += h
        elif w > 1.5 * h:
            wide += w
    return tall > wide


def _turn(image: np.ndarray, quads: list[np.ndarray], degrees: int) -> tuple[np.ndarray, list[np.ndarray]]:
    h, w = image.shape[:2]
    turned = [order_clockwise(rotate_points(q, degrees, w, h)) for q in quads]
    return rotate_image(image, degrees), turned


def settle_turned(recognizer: Recognizer, crops: Sequence[np.ndarray], turned: Sequence[bool],
                  first: Sequence[Recognition]) -> list[Recognition]:
    """``first`` (one reading per crop) where each crop the classifier turned on its own (``turned``) is read the
    other way up too, and the surer reading kept. The classifier is sure of a turn it should not make on about 1.5 %
    of the lines of real upright scans (92 turned reads 26, 172.25 reads 1225: docs/real-bills.md, twelfth
    round); a line truly upside down reads far surer as turned. Read in batches of their own, so the other lines
    read the same."""
    out = list(first)
    back = [i for i, t in enumerate(turned) if t]
    if back:
        for i, rec in zip(back, recognizer([np.ascontiguousarray(np.rot90(crops[i], 2)) for i in back])):
            if rec.confidence > first[i].confidence:
                out[i] = rec
    return out


class OcrEngine:
    """Pages in, `Page` records out. Load once (``OcrEngine.load()``), call many times; not thread-safe."""

    def __init__(self, models: OcrModels, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self.models = models
        self.detector = Detector(models.det, DetParams(max_side=self.settings.ocr_det_max_side,
                                                       fine_max_side=self.settings.ocr_det_fine_max_side))
        self.classifier = DirectionClassifier(models.cls)
        self.recognizer = Recognizer(models.rec, models.charset, batch_size=self.settings.ocr_rec_batch)
        self.provenance = Provenance(model="pp-ocr", version=models.version, precision=models.rec.executes)

    @classmethod
    def load(cls, generation: str | None = None, precision: str | None = None,
             settings: Settings | None = None) -> OcrEngine:
        s = settings or get_settings()
        models = load(generation or s.ocr_models, precision or s.ocr_precision, threads=s.inference_threads(),
                      root=s.models)
        return cls(models, s)

    # -- stages -------------------------------------------------------------------------------------
    def _detect_and_orient(self, image: np.ndarray, deadline: Deadline) -> _PageWork:
        quads = [d.quad for d in self.detector(image)]
        deadline.check()
        rotation = 0
        if lies_on_side(quads):
            # detect again on the turned page: DB boxes of vertical text are looser (lines merge)
            rotation, image = 90, rotate_image(image, 90)
            quads = [d.quad for d in self.detector(image)]
            deadline.check()
        crops = [crop_quad(image, q) for q in quads]
        turned: list[bool] = []
        if crops:
            p180 = self.classifier(crops)
            weights = np.array([max(c.shape[1] / max(c.shape[0], 1), 1.0) for c in crops])
            page_flipped = float((p180 * weights).sum()) > 0.5 * float(weights.sum())
            if page_flipped:
                rotation = (rotation + 180) % 360
                image, quads = _turn(image, quads, 180)
                p180 = 1.0 - p180
                crops = [np.ascontiguousarray(np.rot90(c, 2)) for c in crops]
            turned = [bool(p > FLIP_THRESHOLD) for p in p180]
            crops = [np.ascontiguousarray(np.rot90(c, 2)) if t else c for c, t in zip(crops, turned)]
        deadline.check()
        found = find_seals(image, self.settings.ocr_seals)
        under = under_seals(image, found, quads, lambda band: [d.quad for d in self.detector(band)]) \
            if found and self.settings.ocr_under_seals else []
        more = [f for f in under if f.rereads is None]
        extra = [False] * len(quads) + [True] * len(more)
        quads, crops, turned = quads + [f.quad for f in more], crops + [f.crop for f in more], turned + [False] * len(more)
        seals = [(s.quad, list(unroll(image, s))) for s in found]
        deadline.check()
        order = reading_order(quads)
        position = {i: k for k, i in enumerate(order)}
        rereads = [(position[f.rereads], f.quad, f.crop) for f in under if f.rereads is not None]
        return _PageWork(image, [quads[i] for i in order], [crops[i] for i in order], [turned[i] for i in order],
                         [extra[i] for i in order], rereads, rotation, seals)

    def read(self, pages: Iterable[PageImage], doc_id: str = "") -> list[Page]:
        """OCR pages; crops of several pages share recognition batches. Pages with a text layer skip OCR."""
        out: list[Page] = []
        it = iter(pages)
        while chunk := list(islice(it, PAGES_PER_BATCH)):
            # the per-page time limit, pooled over the pages that share recognition batches
            deadline = Deadline(self.settings.page_timeout_s * len(chunk), f"pages {chunk[0].index}-{chunk[-1].index}")
            work: list[tuple[PageImage, _PageWork]] = []
            for page in chunk:
                if page.text_lines is not None:
                    out.append(self._text_layer_page(page, doc_id))
                else:
                    work.append((page, self._detect_and_orient(page.image, deadline)))
            own = [(c, t) for _, w in work for c, t, x in zip(w.crops, w.turned, w.extra) if not x]
            texts = iter(settle_turned(self.recognizer, [c for c, _ in own], [t for _, t in own],
                                       self.recognizer([c for c, _ in own])))
            # print found or read again under seals, in batches of its own too
            extras = [c for _, w in work for c, x in zip(w.crops, w.extra) if x]
            unstamped = self.recognizer(extras + [c for _, w in work for _, _, c in w.rereads])
            new, again = iter(unstamped[:len(extras)]), iter(unstamped[len(extras):])
            # seal strips in batches of their own: the page's lines read the same with seals read or not
            rings = iter(self.recognizer([s for _, w in work for _, strips in w.seals for s in strips]))
            deadline.check()
            for page, w in work:
                recs = [next(new) if x else next(texts) for x in w.extra]
                quads = list(w.quads)
                for k, quad, _ in w.rereads:
                    if supersedes(recs[k].text, (rec := next(again)).text, rec.confidence):
                        recs[k], quads[k] = rec, quad
                lines = [TextLine(box=tuple(map(tuple, quad)), text=rec.text, confidence=min(rec.confidence, 1.0),
                                  alternatives=rec.alternatives)
                         for quad, rec in zip(quads, recs) if rec.text.strip()]
                seals = [SealText(box=box, readings=tuple((r.text, round(min(r.confidence, 1.0), 4))
                                                          for r in (next(rings) for _ in strips)))
                         for box, strips in w.seals]
                h, wd = w.image.shape[:2]
                out.append(Page(doc_id=doc_id, index=page.index, width=wd, height=h, rotation=w.rotation,
                                lines=tuple(lines), seals=tuple(seals), provenance=self.provenance))
        return sorted(out, key=lambda p: p.index)

    @staticmethod
    def _text_layer_page(page: PageImage, doc_id: str) -> Page:
        """A PDF page with its own text: no OCR, but the same reading order as OCR'd pages."""
        lines = page.text_lines or ()
        order = reading_order([np.array(line.box, dtype=np.float32) for line in lines])
        h, w = page.image.shape[:2]
        return Page(doc_id=doc_id, index=page.index, width=w, height=h, source=TextSource.pdf_text,
                    lines=tuple(lines[i] for i in order), provenance=Provenance(model="pdf-text-layer"))

    def read_image(self, image: np.ndarray, doc_id: str = "") -> Page:
        return self.read([PageImage(index=0, image=image, dpi=None)], doc_id)[0]
