"""The captures the real tuning bills are read again as (``benchmarks/captures.py``): deterministic per bill, and
combined in the order given."""

from __future__ import annotations

import numpy as np

from benchmarks.captures import CAPTURES, capture, known
from ocr.synth import render_page


def test_captures_are_deterministic_and_combine_in_order():
    page = render_page(300).image
    for how in CAPTURES:
        assert np.array_equal(capture(page, how, "bill"), capture(page, how, "bill")), how
    grey_then_jpeg = capture(capture(page, "grey", "bill"), "jpeg", "bill")
    assert np.array_equal(capture(page, "grey+jpeg", "bill"), grey_then_jpeg)
    assert not np.array_equal(capture(page, "jpeg+grey", "bill"), grey_then_jpeg)


def test_only_known_captures_are_accepted():
    assert known("masked+photo") and known("grey")
    assert not known("grey+sepia") and not known("") and not known("grey+")
