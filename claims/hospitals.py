"""The bureau's register of hospitals (定点医疗机构名录): a claim's hospital as the register names it, with its
code and level.

Why: the hospital's name is printed where the hospital stamps the receipt, so it is the header field the OCR
reads worst (辅中瘤医院 for 福建省肿瘤医院 under the red ink), and a bureau needs the hospital's code and level,
not its name: the level decides restriction rules such as 限二级及以上医疗机构 (``claims.restrictions``). A
bureau keeps this register anyway; given one (``MEDKG_HOSPITAL_REGISTER``), the printed name is matched to it.

How, and why it is safe: names are compared after NFKC, simplified glyphs (``claims.glyphs``) and without
spaces or brackets. An exact name or alias is taken as it is. Otherwise ``rapidfuzz``'s ``fuzz.ratio`` (edit
similarity; insertions and deletions count, as lost and misread characters do) scores every entry; the best is
taken only when it scores ``FLOOR`` and leads every other hospital by ``MARGIN``, and even then the field stays
flagged for review: registers hold families of names a character or two apart (第一/第二人民医院 of one city,
贵州省人民医院 and 贵州省肿瘤医院), and a reading that lost the characters that tell them apart, or names a
hospital the register lacks, can lead the wrong one. Measured on a generated register of 1,890 such names
(``tests/test_claims_hospitals.py``; never on the real bills): with 1 to 3 characters of each name lost or
misread, about a quarter of the readings are matched, 0.2 % to the wrong hospital, and 2.5 % of readings of a
hospital the register lacks are matched to another; without the review flag those would pass as confident. A
matched field keeps the reading in ``raw`` and says what it matched in ``note``; a reading that matches
nothing is flagged ``hospital.not_in_register``.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz, process

from core.records import BillField, Claim, FieldKind, Finding, HeaderKey

from .glyphs import simplify

__all__ = ["FLOOR", "MARGIN", "NOT_IN_REGISTER", "Hospital", "HospitalMatch", "HospitalRegister", "apply_register", "parse_level"]

FLOOR = 75.0  # fuzz.ratio of the best entry (贵州省医院 → 贵州省人民医院 scores 83, 遵义医大附医院 → 遵义医科大学附属医院 82)
MARGIN = 12.0  # over the best entry of another hospital
_DROP = re.compile(r"[\s()（）\[\]【】<>《》\"'“”·.,，、:：;；]")
_LEVELS = {"一": 1, "二": 2, "三": 3, "1": 1, "2": 2, "3": 3}
# the register's columns, by the header words bureaus use (first hit wins)
_COLUMNS = {"code": ("编码", "代码", "code"), "name": ("名称", "name"), "level": ("等级", "级别", "level"),
            "aliases": ("别名", "曾用名", "alias")}


def normal(name: str) -> str:
    return _DROP.sub("", simplify(unicodedata.normalize("NFKC", name)))


def parse_level(text: str) -> int | None:
    """三级甲等 → 3, 二级 → 2, 1 → 1; 未定级 or empty → None."""
    m = re.match(r"\s*([一二三123])", text or "")
    return _LEVELS[m[1]] if m else None


@dataclass(frozen=True)
class Hospital:
    code: str
    name: str
    level: int | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class HospitalMatch:
    hospital: Hospital
    score: float  # fuzz.ratio of the reading and the name (or alias) it matched; 100 for an exact one
    runner_up: float  # the best score of another hospital


class HospitalRegister:
    def __init__(self, hospitals: Iterable[Hospital]):
        self.hospitals = tuple(hospitals)
        self._names: list[str] = []  # normalised name or alias → position in self.hospitals
        self._owner: list[int] = []
        for i, h in enumerate(self.hospitals):
            for n in dict.fromkeys(normal(x) for x in (h.name, *h.aliases) if x.strip()):
                self._names.append(n)
                self._owner.append(i)
        self._exact = {}
        for n, i in zip(self._names, self._owner):
            self._exact.setdefault(n, i)

    def __len__(self) -> int:
        return len(self.hospitals)

    @classmethod
    def from_csv(cls, path: str | Path) -> HospitalRegister:
        """A CSV (UTF-8, with or without BOM) with a header row naming the code and name columns (编码/代码/code,
        名称/name) and optionally the level (等级/级别/level: 三级甲等, 二级, 3 …) and aliases (别名/alias, ``|``
        separated). Raises ``ValueError`` naming what is missing."""
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            raise ValueError(f"{path}: empty hospital register")
        head = [h.strip().lower() for h in rows[0]]
        col = {k: next((i for i, h in enumerate(head) if any(w in h for w in words)), None)
               for k, words in _COLUMNS.items()}
        if col["code"] is None or col["name"] is None:
            raise ValueError(f"{path}: the header must name a code column and a name column, got {rows[0]}")

        def cell(row: list[str], key: str) -> str:
            i = col[key]
            return row[i].strip() if i is not None and i < len(row) else ""

        hospitals = [Hospital(cell(r, "code"), cell(r, "name"), parse_level(cell(r, "level")),
                              tuple(a.strip() for a in cell(r, "aliases").split("|") if a.strip()))
                     for r in rows[1:] if cell(r, "code") and cell(r, "name")]
        if not hospitals:
            raise ValueError(f"{path}: no rows with both a code and a name")
        return cls(hospitals)

    def match(self, reading: str) -> HospitalMatch | None:
        """The register's hospital for a printed (OCR'd) name, or None when none is close and clearly best."""
        key = normal(reading)
        if len(key) < 3:
            return None
        if (i := self._exact.get(key)) is not None:
            return HospitalMatch(self.hospitals[i], 100.0, 0.0)
        best: dict[int, float] = {}
        for _, score, j in process.extract(key, self._names, scorer=fuzz.ratio, limit=None, score_cutoff=FLOOR - MARGIN):
            i = self._owner[j]
            best[i] = max(best.get(i, 0.0), score)
        if not best:
            return None
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        (i, top), runner = ranked[0], (ranked[1][1] if len(ranked) > 1 else 0.0)
        if top < FLOOR or top - runner < MARGIN:
            return None
        return HospitalMatch(self.hospitals[i], round(top, 1), round(runner, 1))


NOT_IN_REGISTER = "hospital.not_in_register"


def apply_register(claim: Claim, register: HospitalRegister, *, confirmed: bool = False) -> Claim:
    """The claim with its hospital named as the register names it, plus ``hospital_code`` and
    ``hospital_level`` header fields; a hospital the register does not know is flagged for review. Applying it
    again replaces what an earlier application added. ``confirmed``: the name is a clerk's correction, taken as
    typed: its code and level come only from an exact name or alias, and a name the register lacks gets the
    finding without flagging the clerk's field."""
    header = {k: f for k, f in claim.header.items()
              if k not in (HeaderKey.hospital_code.value, HeaderKey.hospital_level.value)}
    claim = claim.model_copy(update={"header": header,
                                     "findings": tuple(f for f in claim.findings if f.rule != NOT_IN_REGISTER)})
    field = header.get(HeaderKey.hospital.value)
    if field is None or not isinstance(field.value, str) or not field.value.strip():
        return claim
    m = register.match(field.value)
    if m is not None and confirmed and m.score < 100:
        m = None
    if m is None:
        flagged = field if confirmed else field.model_copy(update={"needs_review": True})
        return claim.model_copy(update={
            "header": {**header, HeaderKey.hospital.value: flagged},
            "findings": (*claim.findings, Finding(rule=NOT_IN_REGISTER, severity="warning",
                                                   detail=f"{field.value!r} is not a hospital of the register "
                                                          f"(or is too far from one to be sure which)"))})
    h = m.hospital
    if not confirmed:
        how = "exactly" if m.score == 100 else f"similarity {m.score:g}, next hospital {m.runner_up:g}"
        note = "; ".join(x for x in (field.note, f"register {h.code}: {how}") if x)
        header[HeaderKey.hospital.value] = field.model_copy(update={
            "value": h.name, "raw": field.raw or field.value, "note": note,
            "needs_review": field.needs_review or m.score < 100})
    for key, value in ((HeaderKey.hospital_code, h.code), (HeaderKey.hospital_level, h.level)):
        if value is not None:
            header[key.value] = BillField(name=key.value, value=str(value), kind=FieldKind.text, raw=str(value),
                                          confidence=field.confidence, note="from the hospital register")
    return claim.model_copy(update={"header": header})
