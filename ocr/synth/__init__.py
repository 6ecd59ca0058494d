"""Renderer of bill-like page images with exact ground truth, for tests, INT8 calibration and the
OCR benchmark.

Kept apart: ``lexicon`` (word lists, names, codes, money and 大写 numerals), ``content`` (what a
bill says), ``layout``/``templates`` (what goes where), ``vat`` (VAT invoices: content and layout),
``render`` (pixels and ink boxes), ``degrade``/``stamp`` (scan and photo effects and box transforms),
``fonts`` (CJK fonts on the system); ``reallike`` (appearances of real receipts: A4 self-printed
receipts, dot-matrix forms on tinted perforated paper, photos of several receipts on one sheet, in a seed
space of their own: ``render_reallike``).
"""

from .fonts import cjk_fonts
from .lexicon import amount_in_words
from .page import GtLine, RenderedDocument, RenderedPage, render_document, render_line, render_page, sample_pages
from .reallike import render_reallike

__all__ = [
    "GtLine",
    "RenderedDocument",
    "RenderedPage",
    "amount_in_words",
    "cjk_fonts",
    "render_document",
    "render_line",
    "render_page",
    "render_reallike",
    "sample_pages",
]
