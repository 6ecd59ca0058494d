"""A catalogue's restriction rules (限男性, 限儿童, 限工伤保险, 限二级及以上医疗机构, 限住院 …) → Findings.

Why separate from matching: rules are judged against what is known about the patient and the visit,
which comes partly from the bill (sex, age, insurance type, inpatient or outpatient) and partly from the
bureau (the hospital's level). A rule the known facts break is an ``error`` Finding naming the rule and
the evidence; a rule the facts cannot settle (no sex printed, a disease restriction and no diagnosis) is
an ``info`` Finding, so a reviewer knows what to look up; nothing is guessed. A code listed on several
rows of the catalogue is allowed when any one row's conditions all hold.

Rule texts are read as bureaus write them: sex 男/女; age bands 新生儿 (< 28 days), 婴幼儿 (< 3 years),
儿童 (< 18 years, as the national catalogue's notes define it), 成年/成人 (≥ 18), 老年 (≥ 60), or explicit
``14岁以下`` / ``≥65岁``; insurance 工伤/生育/…; level 一级/二级/三级 meaning that level or above; setting
住院/门诊; disease and specialty as regular expressions such as ``(肿瘤|癌)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from core.records import Claim, DocumentType, Finding, HeaderKey, LineItem

from .catalogue import CatalogEntry, Catalogue

__all__ = ["AGE_BANDS", "PatientContext", "line_ref", "match_claim", "parse_age_years", "refresh_restrictions",
           "restriction_findings"]

AGE_BANDS: dict[str, tuple[float, float]] = {  # [low, high) in years
    "新生儿": (0.0, 28 / 365.25), "婴幼儿": (0.0, 3.0), "婴儿": (0.0, 1.0), "幼儿": (1.0, 3.0),
    "儿童": (0.0, 18.0), "未成年": (0.0, 18.0), "成年": (18.0, 200.0), "成人": (18.0, 200.0),
    "老年": (60.0, 200.0),
}
_LEVEL = {"一": 1, "二": 2, "三": 3, "1": 1, "2": 2, "3": 3}
_SETTING = {"住院": "inpatient", "门诊": "outpatient"}


@dataclass(frozen=True)
class PatientContext:
    """What is known about the patient and the visit; ``None`` / empty where unknown."""

    sex: str | None = None  # 男 / 女
    age_years: float | None = None
    insurance_type: str | None = None  # as printed: 城镇职工基本医疗保险, 工伤保险 …
    institution_level: int | None = None  # 1, 2, 3
    setting: str | None = None  # inpatient / outpatient
    diagnoses: Sequence[str] = field(default_factory=tuple)
    department: str | None = None

    @classmethod
    def from_claim(cls, claim: Claim, **known) -> PatientContext:
        """Facts the bill prints (sex, age, insurance type, inpatient/outpatient); ``known`` adds or
        overrides (the hospital's level from the bureau's register, diagnoses from the EMR …)."""
        def text(key: HeaderKey) -> str | None:
            f = claim.header.get(key.value)
            return str(f.value).strip() if f is not None and f.value not in (None, "") else None

        sex = text(HeaderKey.sex)
        sex = {"男": "男", "女": "女", "m": "男", "f": "女", "male": "男", "female": "女"}.get((sex or "").lower())
        age = text(HeaderKey.age)
        setting = {DocumentType.inpatient_e_receipt: "inpatient",
                   DocumentType.outpatient_e_receipt: "outpatient"}.get(claim.doc_type)
        level = text(HeaderKey.hospital_level)  # put there by the hospital register (claims.hospitals)
        facts = {"sex": sex, "age_years": parse_age_years(age) if age else None,
                 "insurance_type": text(HeaderKey.insurance_type), "setting": setting,
                 "institution_level": int(level) if level and level.isdigit() else None}
        facts.update(known)
        return cls(**facts)


def parse_age_years(text: str | Decimal | float) -> float | None:
    """'45岁' → 45, '3月' / '3个月' → 0.25, '12天' → 0.033, '1岁2月' → 1.17, '45' → 45."""
    if isinstance(text, (int, float, Decimal)):
        return float(text)
    s = str(text).strip()
    total, found = 0.0, False
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(岁|周岁|个月|月|周|天|日)?", s):
        found = True
        n = float(num)
        total += {"个月": n / 12, "月": n / 12, "周": n * 7 / 365.25, "天": n / 365.25, "日": n / 365.25}.get(unit, n)
    return total if found else None


def _age_band(rule: str) -> tuple[float, float] | None:
    """[low, high) in years. Whole-year bounds follow Chinese legal usage: 以上/以下/以内 include the
    number (14岁以下 → under 15), 不满/超过 exclude it."""
    for word, band in AGE_BANDS.items():
        if word in rule:
            return band
    if m := re.search(r"(\d+)\s*周?岁?\s*(及以下|以下|以内|及以上|以上)", rule):
        n = float(m.group(1))
        return (0.0, n + 1) if m.group(2) in ("及以下", "以下", "以内") else (n, 200.0)
    if m := re.search(r"(不满|未满|超过|大于|小于)\s*(\d+)", rule):
        n = float(m.group(2))
        return (0.0, n) if m.group(1) in ("不满", "未满", "小于") else (n + 1, 200.0)
    if m := re.search(r"(<=|>=|[<>≤≥])\s*(\d+)", rule):
        op, n = m.group(1), float(m.group(2))
        return {"<": (0.0, n), "≤": (0.0, n + 1), "<=": (0.0, n + 1),
                ">": (n + 1, 200.0), "≥": (n, 200.0), ">=": (n, 200.0)}[op]
    return None


def _judge(kind: str, rule: str, ctx: PatientContext) -> tuple[bool | None, str]:
    """(holds?, evidence). None: the facts cannot settle it."""
    if kind == "sex":
        want = "男" if "男" in rule else "女" if "女" in rule else None
        if want is None:
            return None, f"unreadable rule {rule!r}"
        return (None, "sex not printed") if ctx.sex is None else (ctx.sex == want, f"patient sex {ctx.sex}")
    if kind == "age":
        band = _age_band(rule)
        if band is None:
            return None, f"unreadable rule {rule!r}"
        if ctx.age_years is None:
            return None, "age not printed"
        return band[0] <= ctx.age_years < band[1], f"patient age {ctx.age_years:.3g} years"
    if kind == "insurance":
        if not ctx.insurance_type:
            return None, "insurance type not printed"
        return rule.strip("()（）限保险") in ctx.insurance_type, f"insurance type {ctx.insurance_type}"
    if kind == "level":
        need = next((_LEVEL[c] for c in rule if c in _LEVEL), None)
        if need is None:
            return None, f"unreadable rule {rule!r}"
        if ctx.institution_level is None:
            return None, "institution level unknown"
        return ctx.institution_level >= need, f"institution level {ctx.institution_level}"
    if kind == "setting":
        want = next((v for k, v in _SETTING.items() if k in rule), None)
        if want is None:
            return None, f"unreadable rule {rule!r}"
        if ctx.setting is None:
            return None, "inpatient or outpatient unknown"
        return ctx.setting == want, f"visit is {ctx.setting}"
    if kind in ("disease", "specialty"):
        facts = list(ctx.diagnoses) if kind == "disease" else ([ctx.department] if ctx.department else [])
        if not facts:
            return None, "no diagnosis known" if kind == "disease" else "department unknown"
        try:
            pattern = re.compile(rule)
        except re.error:
            pattern = re.compile(re.escape(rule.strip("()（）")))
        hit = next((f for f in facts if pattern.search(f)), None)
        return hit is not None, (f"{kind} {hit}" if hit else f"{kind}: {', '.join(facts)}")
    return None, f"rule kind {kind} not evaluated"


def restriction_findings(entry: CatalogEntry, ctx: PatientContext, *, where: str = "") -> list[Finding]:
    """Findings for one matched catalogue entry. ``where`` names the bill line for the detail text."""
    if not entry.rules:
        return []
    verdicts = []
    for rules in entry.rules:
        judged = {kind: (rule, *_judge(kind, rule, ctx)) for kind, rule in rules.items()}
        verdicts.append(judged)
        if all(ok is True for _, ok, _ in judged.values()):
            return []  # one row's conditions all hold: allowed
    label = f"{where}{entry.name} [{entry.code}]"
    broken = [v for v in verdicts if any(ok is False for _, ok, _ in v.values())]
    if len(broken) == len(verdicts):
        return [Finding(rule=f"restriction.{kind}", severity="error",
                        detail=f"{label}: restricted to {rule!r}; {evidence}")
                for v in broken[:1] for kind, (rule, ok, evidence) in v.items() if ok is False]
    open_ = next(v for v in verdicts if not any(ok is False for _, ok, _ in v.values()))
    return [Finding(rule=f"restriction.{kind}", severity="info",
                    detail=f"{label}: restricted to {rule!r}; cannot verify: {evidence}")
            for kind, (rule, ok, evidence) in open_.items() if ok is None]


def line_ref(item: LineItem) -> str:
    """How a restriction finding names its bill line (its detail starts with it: ``line 3 '心脏彩超' → ``)."""
    return f"line {item.line_no} {str(item.name.value or item.name.raw or '')!r} → "


def refresh_restrictions(claim: Claim, catalogue: Catalogue) -> Claim:
    """The restriction findings of the claim's matched lines judged again on what the claim says now (a
    clerk corrected the sex, the age or the hospital); the matches themselves are kept."""
    ctx = PatientContext.from_claim(claim)
    findings = [f for f in claim.findings if not f.rule.startswith("restriction.")]
    for item in claim.items:
        if item.match is None:
            continue
        try:
            entry = catalogue.entry_for(item.match)
        except StopIteration:  # the catalogue loaded now no longer lists it
            continue
        findings += restriction_findings(entry, ctx, where=line_ref(item))
    return claim.model_copy(update={"findings": tuple(findings)})


def match_claim(claim: Claim, catalogue: Catalogue, context: PatientContext | None = None,
                **known) -> Claim:
    """Match every line item to the catalogue and add the restriction findings of the matches.

    Unmatched items get a ``catalogue.unmatched`` info finding (with the best candidate, if any).
    """
    ctx = context or PatientContext.from_claim(claim, **known)
    items: list[LineItem] = []
    findings: list[Finding] = []
    for item in claim.items:
        name = str(item.name.value or item.name.raw or "")
        where = line_ref(item)
        m = catalogue.match(name) if name else None
        items.append(item.model_copy(update={"match": m}))
        if m is None:
            best = catalogue.search(name, 1) if name else []
            hint = f"; best candidate {best[0].name} [{best[0].code}] {best[0].score}" if best else ""
            findings.append(Finding(rule="catalogue.unmatched", severity="info", detail=f"line {item.line_no} "
                                    f"{name!r}: no catalogue entry accepted{hint}"))
            continue
        findings += restriction_findings(catalogue.entry_for(m), ctx, where=where)
    return claim.model_copy(update={"items": tuple(items), "findings": claim.findings + tuple(findings)})
