"""The catalogue's restrictions for each billed item, judged against the visit's context and the patient's
record; the quantity, frequency, course and total limits against the stay.

Rule ids (severity):

- ``recon.restriction.<kind>`` for kind in sex, age, insurance, level, setting, specialty, disease (error):
  every rule row of the item has a condition the known facts break; a disease restriction (限…使用) holds only
  for an **affirmed** diagnosis of the patient: a negated, possible, historical or family mention never
  satisfies it (it is cited as evidence of why the rule was not met). With no clinical record of the patient
  in the graph the disease finding is a warning (the record may be missing, not the disease);
- ``recon.restriction.unverified`` (info): a condition the known facts cannot settle (sex not known …);
- ``recon.limit.quantity`` / ``recon.limit.frequency`` / ``recon.limit.course`` / ``recon.limit.total``
  (error): 数量/频次限制, 疗程限制 and 总额限制 against the days of the stay and the charges' dates;
- ``recon.rule.uninterpretable`` (warning): a rule text the product cannot read (阶梯限制 二线, a quantity in a
  unit the bill does not print …): reported, never passed silently.

Disease restrictions are alternations (``(肿瘤|癌)``). Each term is mapped to the patient's diagnoses two ways,
and the evidence says which and how sure: ``text`` (the term appears in the diagnosis's name: certainty 1.0)
and ``dictionary`` (the diagnosis's name maps by rapidfuzz to a disease-dictionary class whose name or group
holds the term: certainty = the match score / 100).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from claims.catalogue import CatalogEntry
from claims.restrictions import PatientContext, _judge
from core.records import Assertion, Claim, Finding, LineItem

from .billing import is_category_line, line_fields, line_name, num
from .model import Charge, Diagnosis, Tolerance, VisitContext, periods
from .rulebook import RuleBook

CONDITIONS = ("sex", "age", "insurance", "level", "setting", "specialty", "disease")
LIMITS = ("quantity", "frequency", "course", "total", "step", "max_dose")
_KIND_CN = {"sex": "性别", "age": "年龄", "insurance": "险种", "level": "医疗机构等级", "setting": "就医方式",
            "specialty": "专科", "disease": "疾病"}
_PERIOD = {"日": 1, "天": 1, "周": 7, "月": 30, "年": 365}
_REGEX_META = re.compile(r"[\\.*+?\[\]{}^$]")


@dataclass(frozen=True)
class DiseaseMapping:
    """One (rule term, diagnosis) pairing and how sure it is."""

    term: str
    diagnosis: Diagnosis
    method: str  # text | dictionary
    certainty: float
    via: str = ""  # the dictionary class (code name / group) for method "dictionary"

    def cite(self) -> dict:
        return {"term": self.term, "method": self.method, "certainty": round(self.certainty, 3), "via": self.via,
                **self.diagnosis.cite()}


def disease_terms(rule: str) -> list[str] | None:
    """The alternatives of a disease rule: ``(肿瘤|癌)`` → [肿瘤, 癌]; None when it is not a plain alternation."""
    s = rule.strip()
    s = re.sub(r"^限", "", s)
    s = re.sub(r"(患者|病人)?(使用|用药|支付)?$", "", s)
    if s.startswith(("(", "（")) and s.endswith((")", "）")):
        s = s[1:-1]
    terms = [t.strip() for t in re.split(r"[|｜/、，,]", s)]
    if not terms or any(not t or _REGEX_META.search(t) or "(" in t or ")" in t for t in terms):
        return None
    return terms


def map_disease(terms: Sequence[str], diagnoses: Sequence[Diagnosis], rulebook: RuleBook | None,
                threshold: float) -> list[DiseaseMapping]:
    """Every (term, diagnosis) pairing found, whatever the diagnosis's assertion; best certainty first."""
    out: list[DiseaseMapping] = []
    for d in diagnoses:
        text = d.name
        best: DiseaseMapping | None = None
        for t in terms:
            if t.lower() in text.lower():
                best = DiseaseMapping(t, d, "text", 1.0)
                break
        if best is None and rulebook is not None and d.label == "Disease":
            for cls, score in rulebook.disease_classes(text, threshold):
                t = next((t for t in terms if t in cls.name or t in cls.group), None)
                if t is not None:
                    best = DiseaseMapping(t, d, "dictionary", score / 100, f"{cls.code} {cls.name} / {cls.group}")
                    break
        if best is not None:
            out.append(best)
    out.sort(key=lambda m: -m.certainty)
    return out


def _judge_disease(rule: str, ctx: VisitContext, rulebook: RuleBook | None, tol: Tolerance):
    """(holds?, evidence dict). None: cannot be settled; 'uninterpretable' when the text is not readable."""
    terms = disease_terms(rule)
    if terms is None:
        return "uninterpretable", {"rule_text": rule, "reason": "not a list of disease terms"}
    maps = map_disease(terms, ctx.diagnoses, rulebook, tol.mapping_threshold)
    affirmed = [m for m in maps if m.diagnosis.assertion is Assertion.affirmed]
    not_counted = [m for m in maps if m.diagnosis.assertion is not Assertion.affirmed]
    ev = {"rule_text": rule, "terms": terms, "records": ctx.records,
          "affirmed_diagnoses": sorted({d.name for d in ctx.diagnoses if d.assertion is Assertion.affirmed}),
          "satisfied_by": [m.cite() for m in affirmed[:3]],
          "not_counted": [m.cite() for m in not_counted[:5]]}
    return bool(affirmed), ev


def _context(ctx: VisitContext, day: date | None) -> PatientContext:
    return PatientContext(sex=ctx.sex, age_years=ctx.age_at(day), insurance_type=ctx.insurance_type,
                          institution_level=ctx.institution_level, setting=ctx.setting,
                          diagnoses=tuple(d.name for d in ctx.diagnoses if d.assertion is Assertion.affirmed),
                          department=ctx.department)


def _judge_row(row: dict, ctx: VisitContext, pctx: PatientContext, rulebook, tol):
    """{kind: (rule text, verdict, evidence)} for one rule row's conditions."""
    out = {}
    for kind, text in row.items():
        if kind not in CONDITIONS:
            continue
        if kind == "disease":
            out[kind] = (text, *_judge_disease(text, ctx, rulebook, tol))
            continue
        ok, why = _judge(kind, text, pctx)
        if ok is None and why.startswith("unreadable"):
            out[kind] = (text, "uninterpretable", {"rule_text": text, "reason": why})
        else:
            out[kind] = (text, ok, {"rule_text": text, "fact": why})
    return out


def _fact_sentence(kind: str, ev: dict, ctx: VisitContext) -> str:
    if kind == "disease":
        nc = ev.get("not_counted") or []
        if not ctx.records:
            return "图谱中没有该患者的病历"
        if nc:
            m = nc[0]
            how = {"negated": "否定", "family": "家族史", "possible": "疑似", "historical": "既往"}.get(m["assertion"], m["assertion"])
            return f"病历中仅有{how}提及「{m['concept']}」（不计入），无已确认的相关诊断"
        return "病历中无已确认的相关诊断"
    return {"sex": f"患者性别{ctx.sex}", "age": "患者年龄不符", "insurance": f"参保险种为{ctx.insurance_type}",
            "level": f"医疗机构为{ctx.institution_level}级", "setting": "就医方式为" + {"inpatient": "住院", "outpatient": "门诊"}.get(ctx.setting or "", "未知"),
            "specialty": f"科室为{ctx.department}"}.get(kind, "")


def restriction_findings(claim_id: str, item: LineItem, entry: CatalogEntry, how: tuple[str, float],
                         ctx: VisitContext, rulebook: RuleBook | None, tol: Tolerance,
                         day: date | None, charges: Sequence[Charge] = ()) -> tuple[list[Finding], list[dict]]:
    """Findings of one billed item's conditions, and the checks it passed (with what satisfied them)."""
    if not entry.rules:
        return [], []
    pctx = _context(ctx, day)
    base = {"claim_id": claim_id, "claim_fields": line_fields(item),
            "catalogue": {"code": entry.code, "name": entry.name, "matched_by": how[0], "score": how[1]},
            "charges": [c.evidence() for c in charges]}
    label = f"第{item.line_no}行「{line_name(item)}」（目录{entry.name} {entry.code}）"
    verdicts = [_judge_row(dict(r), ctx, pctx, rulebook, tol) for r in entry.rules]
    verdicts = [v for v in verdicts if v] or [{}]
    findings: list[Finding] = []

    def holds(v):
        return all(ok is True for _, ok, _ in v.values())

    passing = next((v for v in verdicts if holds(v)), None)
    if passing is not None:  # one row's conditions all hold: allowed, whatever the other rows say
        passed = [{"rule": f"recon.restriction.{k}", "rule_text": t, **base, "evidence": ev}
                  for k, (t, ok, ev) in passing.items()]
        return findings, passed
    # a text the product cannot read is its own finding (the row it is on can be neither met nor broken)
    for v in verdicts:
        for kind, (text, ok, ev) in v.items():
            if ok == "uninterpretable":
                findings.append(_uninterpretable(claim_id, label, kind, text, ev["reason"], base))
    broken = [v for v in verdicts if any(ok is False for _, ok, _ in v.values())]
    open_ = [v for v in verdicts if not any(ok is False for _, ok, _ in v.values())]
    if not open_:  # every row has a condition the facts break: the first row's broken ones are the findings
        v = broken[0]
        for kind, (text, ok, ev) in v.items():
            if ok is not False:
                continue
            sev = "warning" if kind == "disease" and not ctx.records else "error"
            findings.append(Finding(
                rule=f"recon.restriction.{kind}", severity=sev,
                detail=f"line {item.line_no} {entry.name} [{entry.code}]: restricted to {text!r}; {ev.get('fact', '')}".strip(),
                message=f"{label}限{text}使用，但{_fact_sentence(kind, ev, ctx)}，不符合{_KIND_CN[kind]}限制，请核实或拒付该项。",
                evidence={**base, "rule": {"kind": kind, "text": text, "rows": [dict(r) for r in entry.rules]},
                          "facts": ev}))
        return findings, []
    for v in open_:
        for kind, (text, ok, ev) in v.items():
            if ok is None:
                findings.append(Finding(
                    rule="recon.restriction.unverified", severity="info",
                    detail=f"line {item.line_no} {entry.name} [{entry.code}]: restricted to {text!r}; cannot verify: {ev.get('fact')}",
                    message=f"{label}限{text}使用，现有资料无法核实（{ev.get('fact')}），请补充{_KIND_CN[kind]}信息后复核。",
                    evidence={**base, "rule": {"kind": kind, "text": text}, "facts": ev}))
        break
    return findings, []


def _uninterpretable(claim_id, label, kind, text, reason, base) -> Finding:
    return Finding(rule="recon.rule.uninterpretable", severity="warning",
                   detail=f"{base['catalogue']['name']} [{base['catalogue']['code']}]: {kind} rule {text!r} not interpretable ({reason})",
                   message=f"{label}的限制规则「{text}」系统无法自动判断，请人工审核。",
                   evidence={**base, "rule": {"kind": kind, "text": text}, "reason": reason})


_NUM_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(\S*)\s*$")
_FREQ = re.compile(r"^\s*(\d+)\s*次\s*(?:每|/)\s*([日天周月年])\s*$")


def limit_findings(claim_id: str, item: LineItem, entry: CatalogEntry, stay_lines: Sequence[LineItem],
                   charges: Sequence[Charge], ctx: VisitContext, tol: Tolerance) -> list[Finding]:
    """数量/频次/疗程/总额 limits of one billed item over the stay (this line and the same item's other lines).
    ``charges``: the item's charges (their dates are the days of use)."""
    rows = [r for r in entry.rules if any(k in r for k in LIMITS)]
    if not rows:
        return []
    row = rows[0]
    base = {"claim_id": claim_id, "claim_fields": [line_fields(i) for i in stay_lines],
            "catalogue": {"code": entry.code, "name": entry.name}}
    label = f"第{item.line_no}行「{line_name(item)}」（目录{entry.name} {entry.code}）"
    qty = sum((num(i.quantity) if num(i.quantity) is not None else Decimal(1) for i in stay_lines), Decimal(0))
    amount = sum((num(i.amount) or Decimal(0) for i in stay_lines), Decimal(0))
    days = ctx.days(charges)
    out: list[Finding] = []

    def unverified(kind, text, why):
        out.append(Finding(rule="recon.restriction.unverified", severity="info",
                           detail=f"{entry.name} [{entry.code}]: {kind} limit {text!r}; cannot verify: {why}",
                           message=f"{label}有{text}的限制，现有资料无法核实（{why}），请人工复核。",
                           evidence={**base, "rule": {"kind": kind, "text": text}, "reason": why}))

    for kind, text in row.items():
        if kind in ("step", "max_dose"):
            out.append(_uninterpretable(claim_id, label, kind, text,
                                        "阶梯用药需既往治疗史" if kind == "step" else "极量需用法用量", base))
        elif kind == "frequency":
            m = _FREQ.match(text)
            if not m:
                out.append(_uninterpretable(claim_id, label, kind, text, "frequency not in N次每<period> form", base))
                continue
            if days is None:
                unverified(kind, text, "住院天数未知")
                continue
            allowed = int(m.group(1)) * periods(days, _PERIOD[m.group(2)])
            if qty > allowed + tol.quantity:
                out.append(Finding(
                    rule="recon.limit.frequency", severity="error",
                    detail=f"{entry.name}: {qty} billed over {days} days; limit {text} allows {allowed}",
                    message=f"{label}限{text}，住院{days}天最多{allowed}次，账单计{qty}次，超出{qty - allowed}次，请核减。",
                    evidence={**base, "rule": {"kind": kind, "text": text}, "days": days, "allowed": allowed,
                              "billed_quantity": str(qty)}))
        elif kind == "quantity":
            m = _NUM_UNIT.match(text)
            units = {str(i.unit.value).strip() for i in stay_lines if i.unit is not None and i.unit.value}
            if not m or not m.group(2) or not re.fullmatch(r"[^\d%]+", m.group(2)):
                out.append(_uninterpretable(claim_id, label, kind, text, "quantity limit not in N<unit> form", base))
                continue
            if units != {m.group(2)}:
                out.append(_uninterpretable(claim_id, label, kind, text,
                                            f"the bill prints unit {'/'.join(sorted(units)) or 'none'}, the rule {m.group(2)}", base))
                continue
            if days is None:
                unverified(kind, text, "住院天数未知")
                continue
            allowed = Decimal(m.group(1)) * days
            if qty > allowed + tol.quantity:
                out.append(Finding(
                    rule="recon.limit.quantity", severity="error",
                    detail=f"{entry.name}: {qty}{m.group(2)} billed over {days} days; {text} a day allows {allowed}",
                    message=f"{label}每日限{text}，住院{days}天最多{allowed}{m.group(2)}，账单计{qty}{m.group(2)}，请核减。",
                    evidence={**base, "rule": {"kind": kind, "text": text}, "days": days, "allowed": str(allowed),
                              "billed_quantity": str(qty)}))
        elif kind == "course":
            m = re.match(r"^\s*(\d+)\s*天\s*$", text)
            if not m:
                out.append(_uninterpretable(claim_id, label, kind, text, "course not in N天 form", base))
                continue
            used = sorted({c.day for c in charges if c.day is not None})
            if not used:
                unverified(kind, text, "收费记录无用药日期")
                continue
            span = (used[-1] - used[0]).days + 1
            if span > int(m.group(1)):
                out.append(Finding(
                    rule="recon.limit.course", severity="error",
                    detail=f"{entry.name}: used over {span} days ({used[0]}..{used[-1]}); course limit {text}",
                    message=f"{label}疗程限{text}，收费记录显示使用{span}天（{used[0]}至{used[-1]}），超出疗程限制，请核实。",
                    evidence={**base, "rule": {"kind": kind, "text": text}, "days_used": span,
                              "charges": [c.evidence() for c in charges]}))
        elif kind == "total":
            m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*元\s*$", text)
            if not m:
                out.append(_uninterpretable(claim_id, label, kind, text, "total not in N元 form", base))
                continue
            cap = Decimal(m.group(1))
            if amount > cap + tol.amount:
                out.append(Finding(
                    rule="recon.limit.total", severity="error",
                    detail=f"{entry.name}: billed {amount} over the stay; total limit {text}",
                    message=f"{label}总额限{text}，本次住院计{amount}元，超出{amount - cap}元，请核减。",
                    evidence={**base, "rule": {"kind": kind, "text": text}, "billed_amount": str(amount)}))
    return out


def item_rule_findings(claim_id: str, claim: Claim, ctx: VisitContext, rulebook: RuleBook, tol: Tolerance,
                       pairing=None, day: date | None = None) -> tuple[list[Finding], list[dict]]:
    """Restrictions and limits of every itemised line of ``claim``. ``pairing`` (a ``billing.ChargeIndex``)
    gives a line its charges: their code when the line has no catalogue match, their dates for 疗程."""
    findings: list[Finding] = []
    passed: list[dict] = []
    groups = pairing.groups if pairing is not None else {}
    resolved = []
    for item in claim.items:
        if is_category_line(item, claim):
            continue
        key = (pairing.assigned.get(item.line_no) or pairing.pair(item)[0]) if pairing is not None else None
        code = item.match.code if item.match is not None else (groups[key].code if key else "")
        entry, method, score = rulebook.entry(code, line_name(item), tol.name_threshold)
        if entry is not None:
            resolved.append((item, key, entry, method, score))
    done: set[str] = set()
    for item, key, entry, method, score in resolved:
        f, p = restriction_findings(claim_id, item, entry, (method, score), ctx, rulebook, tol, day,
                                    groups[key].charges if key else ())
        findings += f
        passed += p
        if entry.code in done:
            continue
        done.add(entry.code)
        same = [i for i, _, e, _, _ in resolved if e.code == entry.code]
        keys = {k for i, k, e, _, _ in resolved if e.code == entry.code and k}
        item_charges = [c for k in keys for c in groups[k].charges]
        findings += limit_findings(claim_id, item, entry, same, item_charges, ctx, tol)
    return findings, passed
