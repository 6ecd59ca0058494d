"""The bureau's files reconciliation reads: restriction rules, class dictionaries, the disease dictionary.

Nothing here is built into the product: every file is the bureau's own (CSV or XLSX, read by
``claims.catalogue``), passed in by the caller (``medkg reconcile --rules/--catalogue/--classes/--diseases``).

- **Restriction rules** (drug and service rule files) are loaded as a ``claims.catalogue.Catalogue`` whose
  ``ColumnMap`` also keeps the limit columns the matcher does not know: 数量限制 (``quantity``), 频次限制
  (``frequency``), 疗程限制 (``course``), 总额限制 (``total``), 阶梯限制 (``step``), 极量限制 (``max_dose``).
- **Class dictionaries** (drug, service, material) map an item code to its 费用项目 (the e-receipt's
  category: 西药费, 化验费 …) by the longest class code that prefixes it (national service codes are
  matched on their 国标通配 too).
- **Disease dictionary** (ICD categories with a grouped name) lets a diagnosis named in the record reach a
  disease restriction's wording through its category (淋巴瘤 → 肿瘤类疾病 for 限肿瘤).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process

from claims.catalogue import CatalogEntry, Catalogue, ColumnMap
from claims.names import normalise_name

__all__ = ["LIMIT_COLUMNS", "RECEIPT_CATEGORIES", "RuleBook", "canonical_category", "read_table"]

# limit kinds beyond claims.catalogue.RESTRICTION_KINDS, with the header words that name their columns
LIMIT_COLUMNS: dict[str, tuple[str, ...]] = {
    "quantity": ("数量限制",), "frequency": ("频次限制",), "course": ("疗程限制", "疗程"),
    "total": ("总额限制",), "step": ("阶梯限制",), "max_dose": ("极量限制",),
}

# the e-receipt's standard item names (national 医疗收费票据 layout) and spellings of the same category
RECEIPT_CATEGORIES: tuple[str, ...] = (
    "床位费", "诊察费", "检查费", "化验费", "治疗费", "手术费", "护理费", "卫生材料费", "西药费", "中成药费", "中草药费",
    "一般诊疗费", "挂号费", "其他住院费用", "其他门诊费用", "其他费用", "麻醉费", "输血费", "输氧费", "放射治疗费",
    "病理费", "中医治疗费", "介入治疗费", "康复费", "注射费", "材料费", "药品费")
_CATEGORY_SYNONYMS = {"成药费": "中成药费", "草药费": "中草药费", "中药费": "中成药费", "诊查费": "诊察费",
                      "骨科材料": "卫生材料费", "介入治疗": "卫生材料费", "普外材料": "卫生材料费",
                      "口腔材料": "卫生材料费", "基础材料": "卫生材料费", "材料费": "卫生材料费"}


def canonical_category(name: str | None) -> str | None:
    """The receipt's spelling of a 费用项目 (成药费 → 中成药费, the material classes → 卫生材料费)."""
    if not name:
        return None
    s = "".join(str(name).split()).strip("：:")
    return _CATEGORY_SYNONYMS.get(s, s)


def read_table(path: str | Path) -> list[dict[str, str]]:
    """Rows of a CSV (UTF-8, BOM or not) or XLSX file, headers from the first row."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        try:
            it = wb.active.iter_rows(values_only=True)
            headers = [str(h).strip() if h is not None else "" for h in next(it, ())]
            return [{h: "" if v is None else str(v) for h, v in zip(headers, r)} for r in it]
        finally:
            wb.close()
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def rule_columns(headers: Sequence[str]) -> ColumnMap:
    """``ColumnMap.guess`` plus the limit columns (``LIMIT_COLUMNS``) the headers have."""
    base = ColumnMap.guess(headers)
    extra = {}
    for kind, words in LIMIT_COLUMNS.items():
        col = next((h for h in headers if any(w in h for w in words) and h not in base.restrictions.values()), None)
        if col:
            extra[kind] = col
    # a rule file's 领域标识 is a domain, not a receipt category: categories come from the class dictionaries
    category = base.category if base.category and "领域" not in base.category else None
    return ColumnMap(base.code, base.name, category, {**base.restrictions, **extra})


@dataclass(frozen=True)
class DiseaseClass:
    code: str
    name: str
    group: str
    key: str


@dataclass
class RuleBook:
    """Restriction rules (a ``Catalogue`` keyed by code, matched by name), the class dictionaries' prefix
    table (code prefix → 费用项目) and the disease dictionary."""

    rules: Catalogue
    classes: Mapping[str, str] = field(default_factory=dict)  # code prefix -> canonical category
    diseases: Sequence[DiseaseClass] = ()

    def __post_init__(self):
        self._prefix_lengths = sorted({len(p) for p in self.classes}, reverse=True)
        self._disease_keys = [d.key for d in self.diseases]
        self._name_matches: dict[str, tuple] = {}  # printed name -> (CatalogMatch | None,): bills repeat names
        self._disease_hits: dict[tuple[str, float], list] = {}

    @classmethod
    def load(cls, rules: Iterable[str | Path] = (), classes: Iterable[str | Path] = (),
             diseases: Iterable[str | Path] = (), catalogue: Iterable[str | Path] = ()) -> RuleBook:
        """Rule files (and plain catalogue files: entries without restrictions, for matching names to codes),
        class dictionaries and disease dictionaries, each CSV or XLSX."""
        rows: list[dict] = []
        cats = None
        for path in [*rules, *catalogue]:
            table = read_table(path)
            if not table:
                continue
            columns = rule_columns(list(table[0].keys()))
            # one Catalogue per file (its own columns), then joined
            part = Catalogue.from_rows(table, columns)
            cats = part if cats is None else cats + part
        rows.clear()
        prefixes: dict[str, str] = {}
        for path in classes:
            for row in read_table(path):
                cat = canonical_category(row.get("费用项目") or row.get("费用类别") or "")
                if not cat:
                    continue
                for col in ("类目编码", "国标通配", "省标通配"):
                    code = (row.get(col) or "").strip()
                    if code and len(code) >= 2:
                        prefixes.setdefault(code, cat)
        found: list[DiseaseClass] = []
        for path in diseases:
            for row in read_table(path):
                name = (row.get("类目名称") or "").strip()
                if name:
                    found.append(DiseaseClass((row.get("类目编码") or "").strip(), name,
                                              (row.get("归并名称") or "").strip(), normalise_name(name)))
        return cls(cats if cats is not None else Catalogue(()), prefixes, tuple(found))

    @classmethod
    def from_settings(cls, settings=None) -> RuleBook | None:
        """The files named by ``MEDKG_RECONCILE_RULES`` / ``_CATALOGUE`` / ``_CLASSES`` / ``_DISEASES`` (several
        joined by ``os.pathsep``); None when none is set."""
        import os

        if settings is None:
            from core.settings import get_settings

            settings = get_settings()

        def paths(value: str) -> list[str]:
            return [p for p in value.split(os.pathsep) if p.strip()]

        named = {k: paths(getattr(settings, f"reconcile_{k}")) for k in ("rules", "catalogue", "classes", "diseases")}
        if not any(named.values()):
            return None
        return cls.load(**named)

    # -- codes and names -----------------------------------------------------------------------------

    def entries(self, code: str) -> tuple[CatalogEntry, ...]:
        return self.rules.by_code(code) if code else ()

    def entry(self, code: str | None, name: str | None, min_score: float = 85.0
              ) -> tuple[CatalogEntry | None, str, float]:
        """The rule entry for a billed item: by code when the code is known, else by name (the catalogue's
        matcher, accepted here only at ``min_score``: a restriction is not pinned on an item by a loose match,
        e.g. 一级护理 → 特级护理 at 76); (entry, method, score)."""
        if code:
            found = self.entries(code)
            if found:
                return self._merged(found), "code", 100.0
        if name:
            m = self._name_matches.get(name)
            if m is None:
                m = self._name_matches.setdefault(name, (self.rules.match(name),))
            m = m[0]
            if m is not None and m.score >= min_score:
                return self._merged(self.rules.by_code(m.code)), m.method, m.score
        return None, "", 0.0

    @staticmethod
    def _merged(found: tuple[CatalogEntry, ...]) -> CatalogEntry:
        """Several files may list one code: their rule rows together (no rows anywhere: unrestricted)."""
        if len(found) == 1:
            return found[0]
        rows = tuple(r for e in found for r in e.rules)
        if any(not e.rules for e in found):
            rows = ()
        first = found[0]
        return CatalogEntry(first.code, first.name, first.category, first.key, rows)

    def category_of(self, code: str | None) -> str | None:
        """The 费用项目 of an item code: the longest class code that prefixes it."""
        if not code:
            return None
        for n in self._prefix_lengths:
            if n <= len(code) and (cat := self.classes.get(code[:n])):
                return cat
        return None

    def disease_classes(self, name: str, threshold: float) -> list[tuple[DiseaseClass, float]]:
        """Dictionary entries a diagnosis's name maps to, with scores at or above ``threshold`` (100: the class's
        name is inside the diagnosis's; else rapidfuzz ``ratio`` on normalised names); best first."""
        if not self.diseases or not name:
            return []
        cached = self._disease_hits.get((name, threshold))
        if cached is None:
            key = normalise_name(name)
            # a class whose whole name the diagnosis contains (急性脑梗死 → 脑梗死) scores 100; otherwise whole-name
            # similarity. Not partial matching: 脑梗死 inside 大脑动脉的闭塞和狭窄，未造成脑梗死 is not that class.
            inside = [(i, 100.0) for i, k in enumerate(self._disease_keys) if len(k) >= 2 and k in key]
            inside.sort(key=lambda x: -len(self._disease_keys[x[0]]))
            hits = process.extract(key, self._disease_keys, scorer=fuzz.ratio, limit=3, score_cutoff=threshold)
            seen, out = set(), []
            for i, score in [*inside[:3], *((i, float(sc)) for _, sc, i in hits)]:
                if i not in seen:
                    seen.add(i)
                    out.append((self.diseases[i], score))
            cached = self._disease_hits[(name, threshold)] = out[:3]
        return cached
