"""Real item names for synthetic bills, read at render time from a catalogue folder the caller names
(drug and service restriction rules, material classes: the layout of ``../shared/data/catalog``).

Nothing of a catalogue is embedded or copied here: without a folder the renderer uses its own lexicon.
A bill keeps what its lexicon entry decided (category, spec, unit, class, price); only the name and its
catalogue code come from here, drawn from a stream of the caller's own so the bill's other draws stay put.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .fonts import Face

# (file, code column, name column, kind) — the files' own headers
SOURCES = (
    ("drug_restriction_rules.csv", "药品编码", "药品名称", "drug"),
    ("service_restriction_rules.csv", "诊疗编码", "诊疗名称", "service"),
    ("material_class_dict.csv", "类目编码", "类目名称", "material"),
)
MAX_NAME_CHARS = 24  # the few longer names would shrink to tiny type or be cut in a narrow 项目名称 column

_EXAMS = ("检查", "测定", "镜", "描记", "造影", "监测", "显像", "成像", "扫描", "超声", "检测", "试验", "评估")


def category_of(kind: str, code: str, name: str) -> str:
    """The bill category (``lexicon.CATEGORIES``) a catalogue entry charges under: drugs by the national
    code's first letter (X 西药, Z 中成药), services by their code's chapter (00 + 11 一般医疗服务, 12 一般治疗
    操作, 2x 医技诊疗, 25 化验, 31 临床各系统, 33 手术 of which 3301 麻醉 …) and their name."""
    if kind == "material":
        return "卫生材料费"
    if kind == "drug":
        return "中成药费" if code.startswith("Z") else "西药费"
    chapter = code[2:4] if code.startswith("00") else code[:2]
    if "床位" in name:
        return "床位费"
    if "诊查" in name or "诊察" in name:
        return "诊察费"
    if "挂号" in name:
        return "挂号费"
    if "护理" in name:
        return "护理费"
    if chapter == "33":
        return "麻醉费" if code[2:6] == "3301" or "麻醉" in name else "手术费"
    if chapter == "25":
        return "化验费"
    if chapter in ("21", "22", "23", "24", "26", "27") or any(w in name for w in _EXAMS):
        return "检查费"
    return "治疗费"


@dataclass(frozen=True)
class CatalogueNames:
    """(code, name) pairs per bill category; ``names`` holds every name loaded."""

    by_category: dict[str, tuple[tuple[str, str], ...]]
    services: tuple[tuple[str, str], ...]  # for a category with no names of its own (挂号费, 其他费 …)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(n for pairs in self.by_category.values() for _, n in pairs)

    def drawable(self, faces: list[Face]) -> CatalogueNames:
        """Only names some face draws in full (the page could not print the others)."""
        def keep(pairs):
            return tuple(p for p in pairs if any(f.covers(p[1]) for f in faces))
        return CatalogueNames({c: keep(v) for c, v in self.by_category.items()}, keep(self.services))

    def pick(self, category: str, r: random.Random) -> tuple[str, str]:
        """(code, name) for an item of ``category``; drugs of 中药饮片费 come from 中成药费 (the catalogue has
        no herbal pieces), a category with no names from the services."""
        pool = self.by_category.get("中成药费" if category == "中药饮片费" else category) or self.services
        return r.choice(pool)


@lru_cache(maxsize=4)
def load_catalogue_names(folder: str | Path) -> CatalogueNames:
    """Read the catalogue's drug, service and material names (csv, utf-8-sig); rows without a code or
    name, with a name of one character or longer than ``MAX_NAME_CHARS``, and repeated names are skipped.
    Raises FileNotFoundError when none of the files is there."""
    folder = Path(folder)
    seen: set[str] = set()
    by_category: dict[str, list[tuple[str, str]]] = {}
    services: list[tuple[str, str]] = []
    found = False
    for file, code_col, name_col, kind in SOURCES:
        path = folder / file
        if not path.is_file():
            continue
        found = True
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                code, name = (row.get(code_col) or "").strip(), (row.get(name_col) or "").strip()
                if not code or not (2 <= len(name) <= MAX_NAME_CHARS) or name in seen:
                    continue
                seen.add(name)
                by_category.setdefault(category_of(kind, code, name), []).append((code, name))
                if kind == "service":
                    services.append((code, name))
    if not found:
        raise FileNotFoundError(f"no catalogue files ({', '.join(s[0] for s in SOURCES)}) in {folder}")
    return CatalogueNames({c: tuple(v) for c, v in by_category.items()}, tuple(services))
