"""A bureau's catalogue (drugs, services, materials) and fuzzy matching of bill lines against it.

Why this shape: the catalogue is the bureau's own file (CSV or XLSX, its own headers), so loading takes a
column mapping (or guesses one from common headers) and nothing about any particular catalogue is built
in. Matching is two-stage so it stays fast on catalogues of 10⁵ entries: a character-bigram inverted
index (IDF-weighted overlap, unigrams as a fallback for very short or badly misread names) proposes a
few dozen candidates, then rapidfuzz scores them on normalised names (``claims.names``) with a blend of
``fuzz.ratio`` (whole-name edit similarity: robust to one misread, dropped or doubled character) and
``fuzz.partial_ratio`` (a catalogue name inside a longer printed one: 注射用 prefixes, brand words). Token
scorers (``token_set_ratio``) are not used: Chinese names have no spaces to tokenise on. A best candidate
below ``threshold`` is still accepted when it scores at least ``floor`` and clearly leads (``margin``) every
candidate with another code and name; otherwise the item is unmatched (``match`` returns None) and
``search`` still lists the candidates for a reviewer.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process

from core.records import CatalogCandidate, CatalogMatch

from .names import normalise_name

__all__ = ["DEFAULT_FLOOR", "DEFAULT_MARGIN", "DEFAULT_THRESHOLD", "RESTRICTION_KINDS", "CatalogEntry", "Catalogue", "ColumnMap", "normalise_name"]

# Acceptance, tuned on the "dev" split of benchmarks/catalogue.py (see its docstring and output): a best
# candidate is a match when it scores DEFAULT_THRESHOLD, or when it scores DEFAULT_FLOOR and leads the best
# candidate with another code and name by DEFAULT_MARGIN (one misread in a 4-character name already costs
# 25 points, but such a name is usually still far closer to its entry than to any other).
DEFAULT_THRESHOLD = 76.0
DEFAULT_FLOOR = 66.0
DEFAULT_MARGIN = 15.0
RATIO_WEIGHT = 0.9  # the rest goes to partial_ratio
RESTRICTION_KINDS = ("sex", "age", "insurance", "level", "setting", "disease", "specialty")

# header words that usually name each column, for ColumnMap.guess (first hit wins)
_HEADER_HINTS: dict[str, tuple[str, ...]] = {
    "code": ("编码", "代码", "编号", "code"),
    "name": ("名称", "品名", "name"),
    "category": ("费用类别", "费用项目", "收费类别", "类别", "分类", "领域标识", "category"),
    "sex": ("性别", "sex", "gender"), "age": ("年龄", "age"), "insurance": ("险种", "insurance"),
    "level": ("机构", "医院等级", "level"), "setting": ("就医", "门诊住院", "setting"),
    "disease": ("疾病", "诊断", "适应症", "disease"), "specialty": ("专科", "科室", "specialty"),
}


@dataclass(frozen=True)
class ColumnMap:
    """Which column of the bureau's file holds what. ``restrictions`` maps a kind (one of
    ``RESTRICTION_KINDS``) to its column; any restriction column may be absent."""

    code: str
    name: str
    category: str | None = None
    restrictions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def guess(cls, headers: Sequence[str]) -> ColumnMap:
        """Recognise common Chinese/English headers (药品编码, 诊疗名称, 性别限制, code, name …)."""
        found: dict[str, str] = {}
        for kind, hints in _HEADER_HINTS.items():
            for h in headers:
                hl = h.strip().lower()
                if h not in found.values() and any(w in hl for w in hints):
                    found[kind] = h
                    break
        if "code" not in found or "name" not in found:
            raise ValueError(f"cannot tell the code and name columns from headers {list(headers)}; pass a ColumnMap")
        return cls(found["code"], found["name"], found.get("category"),
                   {k: found[k] for k in RESTRICTION_KINDS if k in found})


@dataclass(frozen=True)
class CatalogEntry:
    """One catalogue item. ``rules`` holds one restriction mapping per source row (a code listed on
    several rows is allowed when any row's conditions hold)."""

    code: str
    name: str
    category: str | None
    key: str  # normalised name
    rules: tuple[Mapping[str, str], ...] = ()


def _bigrams(key: str) -> list[str]:
    return [key[i:i + 2] for i in range(len(key) - 1)]


class Catalogue:
    """Entries plus the n-gram index over their normalised names. Build once, match many times."""

    def __init__(self, entries: Iterable[CatalogEntry], *, threshold: float = DEFAULT_THRESHOLD,
                 floor: float = DEFAULT_FLOOR, margin: float = DEFAULT_MARGIN, candidates: int = 48):
        self.entries: tuple[CatalogEntry, ...] = tuple(entries)
        self.threshold, self.floor, self.margin = threshold, floor, margin
        self.n_candidates = candidates
        self.keys = [e.key for e in self.entries]
        self._by_key: dict[str, list[int]] = defaultdict(list)
        self._by_code: dict[str, list[int]] = defaultdict(list)
        grams: dict[str, list[int]] = defaultdict(list)
        unis: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(self.entries):
            self._by_key[e.key].append(i)
            self._by_code[e.code].append(i)
            for g in set(_bigrams(e.key)):
                grams[g].append(i)
            for c in set(e.key):
                unis[c].append(i)
        n = max(len(self.entries), 1)
        self._grams = {g: (np.asarray(ids, np.int32), math.log(1 + n / len(ids))) for g, ids in grams.items()}
        self._unis = {c: (np.asarray(ids, np.int32), math.log(1 + n / len(ids))) for c, ids in unis.items()}

    # -- loading -----------------------------------------------------------------------------------

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]], columns: ColumnMap | None = None,
                  **kw) -> Catalogue:
        rows = list(rows)
        if columns is None:
            columns = ColumnMap.guess(list(rows[0].keys()) if rows else [])
        merged: dict[tuple[str, str], tuple[str | None, list[dict[str, str]]]] = {}
        for row in rows:
            code, name = _cell(row, columns.code), _cell(row, columns.name)
            if not code or not name:
                continue
            rule = {k: v for k, col in columns.restrictions.items() if (v := _cell(row, col))}
            category = _cell(row, columns.category) or None if columns.category else None
            _, rules = merged.setdefault((code, name), (category, []))
            if rule not in rules:
                rules.append(rule)
        # a row without conditions makes the item unrestricted, whatever other rows say
        entries = (CatalogEntry(code, name, cat, normalise_name(name), tuple(rules) if all(rules) else ())
                   for (code, name), (cat, rules) in merged.items())
        return cls(entries, **kw)

    @classmethod
    def from_csv(cls, path: str | Path, columns: ColumnMap | None = None, *, encoding: str = "utf-8-sig",
                 delimiter: str = ",", **kw) -> Catalogue:
        with open(path, newline="", encoding=encoding) as fh:
            return cls.from_rows(csv.DictReader(fh, delimiter=delimiter), columns, **kw)

    @classmethod
    def from_xlsx(cls, path: str | Path, columns: ColumnMap | None = None, *, sheet: str | None = None,
                  **kw) -> Catalogue:
        """The first row of the sheet (the active one unless named) holds the headers."""
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        try:
            ws = wb[sheet] if sheet else wb.active
            it = ws.iter_rows(values_only=True)
            headers = [str(h).strip() if h is not None else "" for h in next(it, ())]
            rows = [dict(zip(headers, r)) for r in it]
        finally:
            wb.close()
        return cls.from_rows(rows, columns, **kw)

    def __add__(self, other: Catalogue) -> Catalogue:
        return Catalogue(self.entries + other.entries, threshold=self.threshold, floor=self.floor,
                         margin=self.margin, candidates=self.n_candidates)

    def __len__(self) -> int:
        return len(self.entries)

    def by_code(self, code: str) -> tuple[CatalogEntry, ...]:
        return tuple(self.entries[i] for i in self._by_code.get(code, ()))

    # -- matching ----------------------------------------------------------------------------------

    def _candidates(self, key: str) -> np.ndarray:
        n = len(self.entries)
        if n == 0 or not key:
            return np.zeros(0, np.int32)

        def overlap(postings: Mapping[str, tuple[np.ndarray, float]], grams: Iterable[str]) -> np.ndarray:
            hits = [postings[g] for g in dict.fromkeys(grams) if g in postings]
            if not hits:
                return np.zeros(n)
            ids = np.concatenate([h[0] for h in hits])
            weights = np.concatenate([np.full(len(h[0]), h[1]) for h in hits])
            return np.bincount(ids, weights, minlength=n)

        score = overlap(self._grams, _bigrams(key))
        if np.count_nonzero(score) < self.n_candidates:  # short or badly misread: let characters vote
            score = score + 0.5 * overlap(self._unis, key)
        k = min(self.n_candidates, np.count_nonzero(score))
        if k == 0:
            return np.zeros(0, np.int32)
        top = np.argpartition(-score, k - 1)[:k]
        return top[np.argsort(-score[top], kind="stable")]

    def search(self, name: str, top_k: int = 5) -> list[CatalogCandidate]:
        """The best ``top_k`` entries for a printed name, scored 0–100, best first (no threshold)."""
        key = normalise_name(name)
        exact = self._by_key.get(key, [])
        ids = list(dict.fromkeys([*exact, *self._candidates(key).tolist()]))
        if not ids:
            return []
        choices = [self.keys[i] for i in ids]
        ratio = process.cdist([key], choices, scorer=fuzz.ratio, dtype=np.float32)[0]
        partial = process.cdist([key], choices, scorer=fuzz.partial_ratio, dtype=np.float32)[0]
        score = RATIO_WEIGHT * ratio + (1 - RATIO_WEIGHT) * partial
        order = np.lexsort((-ratio, -score))[:top_k]
        return [CatalogCandidate(code=self.entries[ids[j]].code, name=self.entries[ids[j]].name,
                                 category=self.entries[ids[j]].category, score=round(float(score[j]), 2))
                for j in order]

    def lead(self, found: Sequence[CatalogCandidate]) -> float:
        """How far the best candidate leads the best one with another code *and* another name (entries
        sharing either cannot be told apart, or need not be)."""
        if not found:
            return 0.0
        best = self.entry_for(found[0])
        rivals = [c.score for c in found[1:] if c.code != best.code and self.entry_for(c).key != best.key]
        return found[0].score - (rivals[0] if rivals else 0.0)

    def accepts(self, score: float, lead: float, threshold: float | None = None) -> bool:
        t = self.threshold if threshold is None else threshold
        return score >= t or (score >= min(self.floor, t) and lead >= self.margin)

    def match(self, name: str, top_k: int = 5, threshold: float | None = None) -> CatalogMatch | None:
        """The best entry if it is accepted (see ``accepts``), else None (the item is unmatched)."""
        found = self.search(name, max(top_k, 10))
        if not found or not self.accepts(found[0].score, self.lead(found), threshold):
            return None
        best = found[0]
        method = "exact" if self.entry_for(best).key == normalise_name(name) else "fuzzy"
        return CatalogMatch(code=best.code, name=best.name, category=best.category, score=best.score,
                            method=method, alternatives=tuple(found[1:top_k]))

    def _index_of(self, c: CatalogCandidate) -> int:
        return next(i for i in self._by_code[c.code] if self.entries[i].name == c.name)

    def entry_for(self, match: CatalogMatch | CatalogCandidate) -> CatalogEntry:
        return self.entries[self._index_of(match)]


def _cell(row: Mapping[str, object], column: str | None) -> str:
    if column is None:
        return ""
    v = row.get(column)
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():  # spreadsheet cells turn codes into floats
        v = int(v)
    return str(v).strip()
