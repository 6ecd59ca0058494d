"""Real bills captured again the ways the real set's other bills were captured.

The untouched part of the real set is described only by its README (grey scans of printouts, a phone photo at
an angle, a folded printout photographed, a yellow paper form, small crops, a reimbursement stamp, identifiers
painted over in white). Its bills may not be looked at, so the tuning bills are captured those ways instead: what
a capture breaks on a tuning bill is a failure to debug; the untouched part stays untouched. Each capture is
deterministic (seeded by the bill's name), so its OCR pages can be cached like the originals'.
"""

from __future__ import annotations

import random
import re

import cv2
import numpy as np

from ocr.synth import degrade as dg


def _grey(img: np.ndarray, r: random.Random) -> np.ndarray:
    """A grey scan of a printout: one channel, a little lower resolution, JPEG."""
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return dg.jpeg(cv2.cvtColor(dg.downscale(grey, 0.75), cv2.COLOR_GRAY2RGB), 70)


def _small(img: np.ndarray, r: random.Random) -> np.ndarray:
    """A small crop of a screen or a low-dpi scan: the whole page at 60% of its pixels."""
    h, w = img.shape[:2]
    return cv2.resize(img, (round(w * 0.6), round(h * 0.6)), interpolation=cv2.INTER_AREA)


def _jpeg(img: np.ndarray, r: random.Random) -> np.ndarray:
    """Sent on by a messenger app: strong JPEG compression."""
    return dg.jpeg(img, 35)


def _tinted(img: np.ndarray, r: random.Random) -> np.ndarray:
    """Printed on yellow paper: the white of the page becomes a yellow tint, the ink stays."""
    tint = np.array([250, 232, 170], np.float32) / 255
    return np.clip(img.astype(np.float32) * tint, 0, 255).astype(np.uint8)


def _faded(img: np.ndarray, r: random.Random) -> np.ndarray:
    """Light print: a worn ribbon or toner, the ink halfway to the paper."""
    return dg.low_contrast(img, 0.45, 0)


def _skewed(img: np.ndarray, r: random.Random) -> np.ndarray:
    """Laid a little crooked on the scanner: turned by 1.5 to 3 degrees either way."""
    angle = r.choice((-1, 1)) * r.uniform(1.5, 3.0)
    return dg.skew(img, np.zeros((0, 4, 2)), angle, (255, 255, 255))[0]


def _photo(img: np.ndarray, r: random.Random) -> np.ndarray:
    """A phone photo: taken at an angle on a desk, in uneven light, with a fold."""
    rng = np.random.default_rng(r.randrange(2**32))
    none = np.zeros((0, 4, 2))
    out, _, _ = dg.fold(img.copy(), none, r)
    out, _ = dg.shadow(out, r)
    out, _, _ = dg.angled_shot(out, none, r, rng)
    return dg.jpeg(dg.blur(out, 0.6), 80)


def _stamped(img: np.ndarray, r: random.Random) -> np.ndarray:
    """Stamped again by whoever reimbursed it (a bureau's or employer's 报销 seal), anywhere over the items."""
    from ocr.synth.fonts import all_faces
    from ocr.synth.layout import Stamp

    h, w = img.shape[:2]
    out = img.copy()
    stamp = Stamp(kind=r.choice(("round", "oval")), cx=round(w * r.uniform(0.3, 0.7)),
                  cy=round(h * r.uniform(0.35, 0.65)),
                  ring_text=r.choice(("医疗保险报销专用章", "单位财务报销专用章", "商业保险理赔专用章")),
                  center_text=r.choice(("已报销", "报销专用", "理赔")))
    dg.draw_stamp(out, stamp, all_faces(), max(h, w) / 1600, r, np.random.default_rng(r.randrange(2**32)))
    return out


# labels of a person's identifiers, as the real set's owners painted them over (README: white boxes)
_IDENTIFIER = re.compile(r"(姓名|交款人|患者|住院号|病案号|病历号|门诊号|身份证号?码?|社会保障(?:卡)?号码?|医保编号|个人编号|"
                         r"卡号|业务流水号)(?:[:：]|$)")  # the whole label: 交款人统一社会信用代码 is no name


def masked(img: np.ndarray, lines) -> np.ndarray:
    """Identifiers painted over in white, as the real set's photos were: after each identifier's label, the
    rest of its line, or (a label alone) the next line to its right on its row. ``lines``: the page's OCR lines
    as scanned (``core.records.TextLine``), which say where the identifiers are."""
    out = img.copy()
    boxes = [(min(p[0] for p in ln.box), min(p[1] for p in ln.box), max(p[0] for p in ln.box),
              max(p[1] for p in ln.box), ln.text) for ln in lines]
    for x0, y0, x1, y1, text in boxes:
        m = _IDENTIFIER.match(text.strip())
        if m is None:
            continue
        h = y1 - y0
        if m.end() < len(text.strip()):  # the value on the label's own line: from where it starts
            start = x0 + (x1 - x0) * m.end() / len(text.strip())
            cv2.rectangle(out, (round(start), round(y0 - 2)), (round(x1 + 3), round(y1 + 2)), (255, 255, 255), -1)
            continue
        right = [b for b in boxes if x1 - 0.3 * h <= b[0] < x1 + 3 * h and abs((b[1] + b[3] - y0 - y1) / 2) < h / 2]
        if right:
            bx0, by0, bx1, by1, _ = min(right, key=lambda b: b[0])
            cv2.rectangle(out, (round(bx0 - 3), round(by0 - 2)), (round(bx1 + 3), round(by1 + 2)),
                          (255, 255, 255), -1)
    return out


_OF_THE_IMAGE = {"grey": _grey, "small": _small, "jpeg": _jpeg, "tinted": _tinted, "faded": _faded, "skewed": _skewed,
                 "photo": _photo, "stamped": _stamped}
CAPTURES = (*_OF_THE_IMAGE, "masked")  # masked needs the page's lines as scanned as well


def known(how: str) -> bool:
    """``how`` is one of ``CAPTURES`` or several joined by ``+`` (``masked+photo``: painted over, then photographed)."""
    return all(part in CAPTURES for part in how.split("+"))


def capture(img: np.ndarray, how: str, name: str, lines=()) -> np.ndarray:
    """``img`` (RGB) captured as ``how`` (see :func:`known`), the same every time for the same bill; ``masked``
    needs the page's OCR ``lines`` as scanned, so it comes first in a combination."""
    for part in how.split("+"):
        if part == "masked":
            img = masked(img, lines)
        else:
            img = np.ascontiguousarray(_OF_THE_IMAGE[part](img, random.Random(f"capture:{part}:{name}")))
    return img
