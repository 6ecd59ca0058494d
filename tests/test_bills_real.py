"""Real bills (../shared/data/bills/real, read in place) degraded on purpose: a bill that cannot be read
gives a claim with clear review flags or a clear error, never a confident wrong total.

Only tuning bills are used (benchmarks/real_bills/README.md: the untouched part is never debugged on).
Each image is made too faint, cut half out of frame, torn (a corner gone through the items), and turned
by 90°; the claims are scored with the benchmark's own rules (``benchmarks.bills_real``): every total is
right or flagged, and no wrong amount is left unflagged. Skips with a message when the real set is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.bills_real import REAL_DIR, Score, pair_claims, part_of, score_receipt, transcriptions
from claims.document import structure_image

pytestmark = pytest.mark.skipif(not REAL_DIR.is_dir(), reason=f"the real bills are not here ({REAL_DIR}: they live "
                                                              "in ../shared/data/bills/real, next to the checkout)")

BILLS = ("mebi_730", "mebi_35")  # tuning bills: an A4 scan and a grey low-resolution e-receipt


def _faint(img: np.ndarray) -> np.ndarray:
    return (255 - (255 - img.astype(np.float32)) * 0.1).astype(np.uint8)


def _half_out_of_frame(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[: img.shape[0] // 2])


def _torn(img: np.ndarray) -> np.ndarray:
    out = img.copy()
    h, w = out.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    out[(xs / w + ys / h) > 1.1] = 255  # the lower right corner torn away, through items and totals
    return out


def _turned(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(img))


DAMAGE = {"faint": _faint, "half out of frame": _half_out_of_frame, "torn": _torn, "turned 90°": _turned}


def _load(name: str):
    from ocr.readers import read_pages

    truth = transcriptions([name])[name]
    assert part_of(name) == "tuning"
    return truth, read_pages(REAL_DIR / truth["image"])[0].image


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("name", BILLS)
def test_a_damaged_real_bill_is_flagged_never_confidently_wrong(ocr_engine, name, damage):
    truth, image = _load(name)
    page = ocr_engine.read_image(DAMAGE[damage](image), doc_id=name)
    claims = structure_image(page)
    score = Score()
    for receipt, claim in pair_claims(claims, truth["receipts"]):
        score.add(score_receipt(receipt, claim, None, name))
    assert score.totals.get("wrong", 0) == 0, (damage, score.totals)
    assert not score.wrong_unflagged, (damage, score.wrong_unflagged)
    if damage == "turned 90°":  # a quarter turn is undone by the OCR: the bill reads as well as upright
        assert score.items_tp >= 0.8 * score.items_true, (score.items_tp, score.items_true)
