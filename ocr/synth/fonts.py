"""CJK fonts on this system: discovery, face choice inside .ttc collections, glyph coverage, caching."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from PIL import ImageFont

FONT_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".local/share/fonts",
    Path.home() / ".fonts",
)
FONT_SUFFIXES = {".ttf", ".ttc", ".otf", ".otc"}
DEBIAN_PACKAGES = "fonts-noto-cjk fonts-wqy-microhei fonts-wqy-zenhei fonts-arphic-ukai fonts-arphic-uming"
_PROBE = "医疗住院收费票据金额合计壹贰叁"  # a font lacking any of these is not a CJK font for our purpose
_MISSING = "\U0010fffd"  # a code point no font maps: renders as the .notdef glyph


@dataclass(frozen=True)
class Face:
    """One face of a font file: ``index`` selects it inside a .ttc collection."""

    path: Path
    index: int
    name: str  # family name, e.g. "Noto Sans CJK SC"
    style: str  # sans | serif | kai | ming | mono

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        return _load(str(self.path), self.index, int(size))

    def covers(self, text: str) -> bool:
        return all(_has_glyph(str(self.path), self.index, c) for c in set(text) - {" "})


@lru_cache(maxsize=512)
def _load(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=index)


@lru_cache(maxsize=64)
def _notdef(path: str, index: int) -> tuple:
    f = _load(path, index, 24)
    mask = f.getmask(_MISSING)
    return mask.size, bytes(mask)


@cache
def _has_glyph(path: str, index: int, ch: str) -> bool:
    f = _load(path, index, 24)
    mask = f.getmask(ch)
    if mask.getbbox() is None:  # blank: a missing glyph in fonts whose .notdef is empty
        return False
    return (mask.size, bytes(mask)) != _notdef(path, index)


@lru_cache(maxsize=64)
def _missing_chars(path: str, index: int) -> frozenset[str]:
    return frozenset(c for c in _PROBE if not _has_glyph(path, index, c))


def _style(name: str) -> str:
    n = name.lower()
    if "mono" in n:
        return "mono"
    if "kai" in n:
        return "kai"
    if "ming" in n or "song" in n:
        return "ming"
    if "serif" in n:
        return "serif"
    return "sans"


def _faces_of(path: Path) -> list[Face]:
    faces = []
    for index in range(32):
        try:
            f = _load(str(path), index, 24)
        except OSError:
            break
        family, weight = f.getname()
        family = family or path.stem
        name = family if weight in {None, "", "Regular", "Book", "Light"} else f"{family} {weight}"
        faces.append(Face(path, index, name, _style(family)))
    return faces


@lru_cache(maxsize=64)
def faces(path: Path) -> tuple[Face, ...]:
    """The simplified-Chinese faces of a font file: SC/CN faces where a collection has them.

    A collection such as Noto CJK holds JP/KR/SC/TC/HK variants of the same design: only the SC
    ones draw simplified glyph shapes. Mono variants are kept as their own style.
    """
    all_faces = [f for f in _faces_of(Path(path)) if not _missing_chars(str(f.path), f.index)]
    def region(f: Face) -> str:
        words = f.name.split()
        return words[-2] if words[-1] in {"Bold", "Medium", "Black", "Thin"} and len(words) > 1 else words[-1]

    regional = [f for f in all_faces if region(f) in {"SC", "CN"}]
    other = [f for f in all_faces if region(f) not in {"JP", "KR", "TC", "HK", "TW", "MBE"}]
    chosen = regional or other or all_faces[:1]
    return tuple(chosen)


@lru_cache(maxsize=1)
def _system_fonts() -> tuple[Path, ...]:
    found = []
    for root in FONT_DIRS:
        if not root.is_dir():
            continue
        for dirpath, _, files in os.walk(root):
            for fn in files:
                p = Path(dirpath) / fn
                if p.suffix.lower() in FONT_SUFFIXES:
                    found.append(p)
    return tuple(sorted(p for p in found if faces(p)))


def cjk_fonts() -> list[Path]:
    """CJK-capable font files on this system, sorted by path.

    Raises RuntimeError naming the Debian packages to install when there is none.
    """
    found = list(_system_fonts())
    if not found:
        raise RuntimeError(
            "no CJK font found under " + ", ".join(str(d) for d in FONT_DIRS)
            + f"; install one, e.g. `apt-get install {DEBIAN_PACKAGES}`"
        )
    return found


def all_faces(fonts: tuple[Path, ...] | None = None) -> list[Face]:
    """Every usable face of the given font files (default: the system's CJK fonts)."""
    paths = fonts if fonts is not None else tuple(cjk_fonts())
    out = [f for p in paths for f in faces(Path(p))]
    if not out:
        raise RuntimeError(f"none of the given fonts draws Chinese: {[str(p) for p in paths]}")
    return out
