"""Traditional and variant glyphs → the simplified forms receipts print.

Why: the recogniser was trained on text of every region, and on a real scan it often emits the traditional
form of a character the form prints simplified (費 醫 藥 for 费 医 药). Structured that way, 检查費 matches no
catalogue entry and no label. So the structurer reads labels and fills text fields in simplified forms,
keeping what the OCR read as the field's ``raw``.

How, and why it is safe: ``opencc`` (the OpenCC ``t2s`` tables, character and phrase level) converts each run
of CJK ideographs on its own, and a run is replaced only when its conversion has the same length. Nothing
outside a run of ideographs is touched, so a digit, letter, decimal point or separator never changes: an
amount or a code cannot be changed by normalisation (``claims.structure`` also never normalises fields whose
kind is an amount, number or date, or whose grammar is digits). Measured against ``zhconv`` (MediaWiki
tables) on the real tuning set and the example catalogue's names: see ``benchmarks/results/bills_real.json``
and ``tests/test_claims_glyphs.py``; both fix the tuning bills' 費/醫/藥, opencc is the maintained one and
changes fewer already-simplified catalogue names.

Without ``opencc`` installed the text is returned unchanged (a warning is logged once).
"""

from __future__ import annotations

import functools
import logging
import re

__all__ = ["available", "simplify"]

log = logging.getLogger(__name__)

# CJK unified ideographs (with extension A); compatibility ideographs are already folded by NFKC
_IDEOGRAPHS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
# Characters OpenCC's t2s maps that a simplified receipt legitimately prints as they are (a 乾 in a drug
# name, 著 in 显著): converting them would change a correct name.
_KEEP = frozenset("乾著覆麽瞭")


@functools.cache
def _converter():
    try:
        import opencc
    except ImportError:  # pragma: no cover - a dependency; a bare install still structures bills
        log.warning("opencc is not installed: traditional and variant glyphs are not normalised")
        return None
    return opencc.OpenCC("t2s")


def available() -> bool:
    return _converter() is not None


@functools.lru_cache(maxsize=1 << 16)
def simplify(text: str) -> str:
    """``text`` with each run of ideographs in simplified forms (runs whose conversion would change their
    length, and every character outside the runs, left as they are)."""
    cc = _converter()
    if cc is None or not _IDEOGRAPHS.search(text):
        return text

    def run(m: re.Match) -> str:
        src = m[0]
        out = cc.convert(src)
        if len(out) != len(src):
            return src
        return "".join(s if s in _KEEP else o for s, o in zip(src, out))

    return _IDEOGRAPHS.sub(run, text)
