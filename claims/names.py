"""Normalised item names: the form both a bill's line and a catalogue entry are compared in.

Why: a bill prints the same drug as ``阿莫西林胶囊（进口） 0.25g×24粒`` that a catalogue lists as
``阿莫西林胶囊``; OCR adds full-/half-width swaps and stray spaces. Folding what carries no identity
(width, case, spaces, dashes, packaging specs, qualifiers such as 进口/国产/甲类, trade names in square
brackets) lets the fuzzy scorer spend its tolerance on real misreads. What *does* carry identity is kept:
round-bracket content that is not a qualifier or pack spec (``(经腹腔镜加收)``, ``(18AA-Ⅱ)``,
concentrations such as ``(20%)``), digits inside names (维生素B12), and the dosage form, whose synonyms are
folded to one spelling (片剂→片, 胶囊剂→胶囊, 针剂→注射液 …).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["normalise_name"]

_OPEN, _CLOSE = "([{【〔〈《<", ")]}】〕〉》>"
_SQUARE = set("[{【〔")  # trade names and qualifiers, never part of a catalogue's generic name
_DASHES = dict.fromkeys(map(ord, "‐‑‒–—―─－~〜～"), "-")
_DOTS = dict.fromkeys(map(ord, "·•・"), "")

# qualifiers printed beside a name that do not change what the item is
_QUALIFIER = re.compile(
    r"(进口|国产|合资|原研|仿制|otc|rx|甲类?|乙类?|丙类?|自费|医保|非医保|基药?|国基|省基|集采|带量|国谈|谈判|"
    r"精[一二]?|麻|毒|限|处方|非处方|新|口服|外用|[甲乙丙]|\*+)")

_UNIT = (r"(?:mg|μg|µg|ug|mcg|kg|g|ml|l|iu|万iu|万u|万单位|单位|u|mmol|meq|cm|mm|t|s|片|粒|支|袋|瓶|盒|丸|贴|枚|"
         r"揿|喷|板|包|张|个|只|根|套|人份|剂|滴)")
_NUM = r"\d+(?:\.\d+)?"
_TOKEN = rf"(?:{_NUM}{_UNIT}?|{_UNIT})"
_SPEC = re.compile(rf"{_NUM}{_UNIT}?(?:[x*:/\-]?{_TOKEN})*")  # 0.25gx24粒/盒, 10ml:0.5g, 5mg*28片
_DOSE = re.compile(rf"{_NUM}{_UNIT}")  # a spec names at least one quantity with its unit
_TRAILING_SPEC = re.compile(rf"(?<![\d.\-a-z]){_SPEC.pattern}$")


# dosage-form synonyms, longest first; applied to the end of the name only
_FORMS = (("口服溶液剂", "口服溶液"), ("软胶囊剂", "软胶囊"), ("胶囊剂", "胶囊"), ("颗粒剂", "颗粒"), ("糖浆剂", "糖浆"),
          ("滴眼剂", "滴眼液"), ("乳膏剂", "乳膏"), ("软膏剂", "软膏"), ("注射剂", "注射液"), ("针剂", "注射液"),
          ("片剂", "片"), ("丸剂", "丸"), ("散剂", "散"), ("栓剂", "栓"), ("酊剂", "酊"))


def _is_pack_spec(text: str) -> bool:
    return bool(_SPEC.fullmatch(text) and _DOSE.search(text))


def _strip_spec(s: str) -> str:
    """Remove a pack spec at the end of ``s`` (spaces still in): glued to the name (阿莫西林片0.25gx24片,
    spaces inside the spec ignored), else the longest run of space-separated words that forms one."""
    joined = "".join(s.split())
    m = _TRAILING_SPEC.search(joined)
    if m and m.start() > 0 and _DOSE.search(m.group()):
        return joined[: m.start()].rstrip(",;、，/")
    parts = s.split(" ")
    for k in range(1, len(parts)):
        if _is_pack_spec("".join(parts[k:])):
            return " ".join(parts[:k]).rstrip(" ,;、，/")
    return s


def _brackets(s: str) -> str:
    """Drop bracket groups that are qualifiers, pack specs or square-bracket trade names; keep the rest
    as ``(…)``. Unbalanced brackets (OCR drops them) are kept as plain ``(`` / ``)``."""
    out: list[str] = []
    stack: list[tuple[int, str]] = []  # (position in out, opening char)
    for ch in s:
        if ch in _OPEN:
            stack.append((len(out), ch))
            out.append("(")
        elif ch in _CLOSE and stack:
            start, opener = stack.pop()
            content = "".join(out[start + 1:])
            if opener in _SQUARE or _QUALIFIER.fullmatch(content) or _is_pack_spec(content) or not content:
                del out[start:]
            else:
                out.append(")")
        elif ch in _CLOSE:
            out.append(")")
        else:
            out.append(ch)
    return "".join(out)


@lru_cache(maxsize=65536)
def normalise_name(name: str) -> str:
    """The comparable form of an item name.

    >>> normalise_name("阿莫西林胶囊（进口） 0.25g×24粒"), normalise_name("头孢曲松钠针剂[罗氏芬]")
    ('阿莫西林胶囊', '头孢曲松钠注射液')
    >>> normalise_name("复方氨基酸注射液（18AA-Ⅱ）"), normalise_name("卵巢修补术(经腹腔镜加收)")
    ('复方氨基酸注射液(18aa-ii)', '卵巢修补术(经腹腔镜加收)')
    """
    s = unicodedata.normalize("NFKC", name).casefold().translate(_DASHES).translate(_DOTS)
    s = " ".join(s.replace("×", "x").split())
    s = _brackets(s)
    s = "".join(_strip_spec(s).split())  # spaces separate a spec from the name, so strip it first
    for long, short in _FORMS:
        if s.endswith(long) and len(s) > len(long):
            s = s[: -len(long)] + short
            break
    return s or unicodedata.normalize("NFKC", name).strip()
