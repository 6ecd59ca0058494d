"""Claims reconciliation benchmark (issue 21): precision and recall per rule kind on a generated world, and
claims reconciled per second. Prints one JSON object; saves it to benchmarks/results/reconcile.json.

The world (seeded):

- **Rules** are the bureau's files in ``../shared/data/catalog`` (drug and service restriction rules, the drug,
  service and material class dictionaries, the disease dictionary; test and evaluation input only, never in the
  product). Absent: the benchmark prints ``{"skipped": ...}`` and exits 0.
- **Patients** with a sex, a birth date, an insurance type, a hospital level, a department and a stay (inpatient
  3-25 days, or outpatient); each has an **EMR record** rendered as text with known diagnoses: affirmed ones,
  a negated one (否认…病史) and a family one (母亲有…病史) among them. The assertions are not given: the
  product's assertion stage (``ner.assertions.assign``) reads them from the text over the known spans (NER
  itself is not run here: its accuracy is ``benchmarks/ner.py``'s), and the diagnoses enter the rules as the
  graph would hold them (concept, assertion, document, sentence).
- **HIS charges** per stay: catalogue items (by code, categories from the class dictionaries) whose
  restrictions the patient meets (disease restrictions met by an affirmed diagnosis put into the record), and
  plain items (bed, nursing, tests) with the HIS's own category.
- **Bills are built from those charges as ``Claim`` objects directly** (an itemised list: one line per item
  with quantity, unit price, amount; or an inpatient e-receipt: category lines), not rendered and OCR'd: this
  measures the rules, not the reader (OCR and structuring have their own benchmarks).
- **Planted discrepancies**, one kind per claim, of every rule kind, and **clean controls** (some with the stay
  split over two bills, some e-receipts). Scoring is per claim and kind: a claim planted with kind k is a true
  positive for k when some finding of kind k is on it; any finding of kind k on another claim is a false
  positive for k.

    .venv/bin/python benchmarks/reconcile.py [--claims-per-kind 40] [--controls 400] [--seed 7] [--misread 0.15]
        [--graph 200] [--ner]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import csv
import json
import os
import platform
import random
import time
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal

from claims.reconcile import Charge, Diagnosis, RuleBook, Tolerance, VisitContext, reconcile
from core.hardware import probe
from core.records import BillField, CatalogMatch, Claim, DocumentType, Entity, EntityType, FieldKind, LineItem, Span
from graph.model import Sentences, concept_key
from ner.assertions import assign

ROOT = Path(__file__).resolve().parents[1]
# what a 限…使用 rule may name: a disease, a symptom (发热, 疼痛) or a procedure (器官移植, 化疗): graph.reconcile reads these
FACT_TYPES = (EntityType.disease, EntityType.symptom, EntityType.procedure)
DX_SUFFIXES = ("病", "症", "炎", "癌", "瘤", "综合征", "衰竭", "感染", "损伤", "骨折", "出血", "梗死", "梗塞", "硬化", "结石",
               "中毒", "贫血", "白血病", "肝炎", "哮喘", "溃疡", "疼痛", "发热", "水肿", "高压")
CATALOG = ROOT.parent / "shared" / "data" / "catalog"
RESULT = ROOT / "benchmarks" / "results" / "reconcile.json"

KINDS = (
    "recon.billed_not_charged", "recon.charged_not_billed", "recon.quantity_mismatch", "recon.unit_price_mismatch",
    "recon.amount_mismatch", "recon.category_total", "recon.duplicate.same_file", "recon.duplicate.near_bill",
    "recon.duplicate.items_in_stay", "recon.restriction.sex", "recon.restriction.age", "recon.restriction.insurance",
    "recon.restriction.level", "recon.restriction.setting", "recon.restriction.specialty",
    "recon.restriction.disease", "recon.restriction.unverified", "recon.limit.quantity", "recon.limit.frequency",
    "recon.limit.course", "recon.limit.total", "recon.rule.uninterpretable",
)
# how a disease restriction is planted: no affirmed diagnosis, and the term only negated, only family, or absent
DISEASE_VARIANTS = ("negated", "family", "absent")

PLAIN = [  # (name, category, unit price): items of no rule file, the HIS sends their category
    ("床位费(三人间)", "床位费", "45"), ("一级护理", "护理费", "28"), ("静脉输液(首组)", "治疗费", "12"),
    ("陪护费", "其他住院费用", "20"), ("换药(小)", "治疗费", "15"), ("吸氧", "治疗费", "3"),
    ("肝功能测定", "化验费", "60"), ("肾功能测定", "化验费", "45"), ("胸部X线摄影", "检查费", "80"),
    ("一次性输液器", "卫生材料费", "4.5"), ("雾化吸入", "治疗费", "10"), ("心电图检查(十二导)", "检查费", "25"),
]
BACKGROUND_DX = ["高血压病", "2型糖尿病", "社区获得性肺炎", "冠状动脉粥样硬化性心脏病", "慢性胃炎", "腰椎间盘突出症",
                 "高脂血症", "脑梗死", "慢性阻塞性肺疾病", "骨质疏松症", "痛风", "胆囊结石"]
UNCHARGED = ["营养配餐指导", "心脏彩超检查", "血气分析", "中心静脉置管术"]  # billed, never charged (no rule entry)
DEPARTMENTS = ["内科", "外科", "骨科", "心内科", "呼吸科"]
INSURANCE = ["城镇职工基本医疗保险", "城乡居民基本医疗保险"]


def read(name: str) -> list[dict]:
    with open(CATALOG / name, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


LIMIT_COLS = ("险种限制", "机构限制", "就医限制", "专科限制", "性别限制", "年龄限制", "疾病限制", "阶梯限制", "疗程限制",
              "数量限制", "频次限制", "总额限制", "极量限制")


def pools(book: RuleBook) -> dict[str, list[dict]]:
    """Items by the one restriction they carry (codes listed once; names the catalogue matcher finds back)."""
    rows = [dict(r, code=r["药品编码"], name=r["药品名称"], drug=True) for r in read("drug_restriction_rules.csv")]
    rows += [dict(r, code=r["诊疗编码"], name=r["诊疗名称"], drug=False) for r in read("service_restriction_rules.csv")]
    dict_names = {d.name for d in book.diseases}
    codes = Counter(r["code"] for r in rows)
    names = Counter(r["name"] for r in rows)
    out: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if codes[r["code"]] > 1 or names[r["name"]] > 1:
            continue
        kinds = tuple(k for k in LIMIT_COLS if r.get(k))
        if len(kinds) != 1:
            continue
        k, v = kinds[0], r[kinds[0]]
        key = {"性别限制": f"sex:{v}", "年龄限制": f"age:{v}", "险种限制": f"insurance:{v}", "机构限制": f"level:{v}",
               "就医限制": f"setting:{v}", "专科限制": f"specialty:{v}", "疾病限制": "disease", "阶梯限制": "step",
               "疗程限制": "course", "数量限制": f"quantity:{v}", "频次限制": f"frequency:{v}",
               "总额限制": "total"}.get(k)
        if key is None:
            continue
        if key == "course" and not v.endswith("天"):
            continue
        if key == "disease":
            terms = v.strip("()").split("|")
            # the record states a diagnosis: a term that is a disease's name (a dictionary class, or a word ending
            # as disease names do), not a treatment (化疗), an organ (主动脉瓣) or a fragment (缺铁) written as one
            r["dx_terms"] = [t for t in terms if len(t) >= 2 and (t in dict_names or t.endswith(DX_SUFFIXES))]
            if _overlaps(terms) or not r["dx_terms"]:
                continue
        out[key].append(r)
    return out


def _overlaps(terms) -> bool:
    """A term sharing three characters with a background diagnosis: the ground truth would be unclear."""
    grams = {dx[i:i + 3] for dx in BACKGROUND_DX for i in range(len(dx) - 2)}
    return any(t[i:i + 3] in grams for t in terms for i in range(len(t) - 2)) or any(
        t in dx for t in terms for dx in BACKGROUND_DX)


class World:
    def __init__(self, seed: int, book: RuleBook, noise: float = 0.0):
        self.rng = random.Random(seed)
        self.noise, self.noise_rng = noise, random.Random(seed + 1)  # a stream of its own: same world, other names
        self.tagger = None
        self.ner_gold = self.ner_found = 0
        self.book = book
        self.pools = pools(book)
        self.n = 0

    # -- patients and records --------------------------------------------------------------------------------

    def patient(self, setting: str = "inpatient", los: int | None = None) -> dict:
        r = self.rng
        self.n += 1
        admitted = date(2026, 1, 1) + timedelta(days=r.randrange(300))
        los = los or r.randint(3, 25)
        return {"pid": f"P{self.n:05d}", "eid": f"E{self.n:05d}", "sex": r.choice("男女"),
                "birth": date(r.randint(1940, 2000), r.randint(1, 12), r.randint(1, 28)),
                "insurance": r.choice(INSURANCE), "level": r.choice([2, 3]), "department": r.choice(DEPARTMENTS),
                "setting": setting, "admitted": admitted,
                "discharged": admitted + timedelta(days=los - 1) if setting == "inpatient" else admitted,
                "affirmed": r.sample(BACKGROUND_DX, 2), "negated": [], "family": []}

    def render(self, p: dict) -> tuple[str, list[Diagnosis]]:
        """The record's text and its diagnoses as the graph holds them: assertion read by the product's rules
        over the known spans, or (``self.tagger``, ``--ner``) the Disease entities the real NER finds."""
        parts, spans = [], []

        def put(prefix: str, dx: str, suffix: str):
            start = sum(len(x) for x in parts) + len(prefix)
            parts.append(prefix + dx + suffix)
            spans.append((start, start + len(dx), dx))

        parts.append(f"患者{p['sex']}性，{(p['admitted'] - p['birth']).days // 365}岁，因反复不适{self.rng.randint(2, 9)}天入院。")
        for dx in p["negated"]:
            put("既往否认", dx, "病史。")
        for dx in p["family"]:
            put("家族史：母亲有", dx, "病史。")
        for i, dx in enumerate(p["affirmed"]):
            put("入院诊断：" if i == 0 else "另诊断：", dx, "。")
        text = "".join(parts)
        ents = [Entity(span=Span(start=s, end=e, text=t), type=EntityType.disease) for s, e, t in spans]
        if self.tagger is not None:
            found = self.tagger([text])[0]
            self.ner_gold += len(spans)
            self.ner_found += sum(any(x.span.start == s and x.span.end == e and x.type is EntityType.disease
                                      for x in found) for s, e, _ in spans)
            ents = [x for x in found if x.type in FACT_TYPES]
        sentences = Sentences(text)
        doc = f"doc-{p['pid']}"
        self.entities = assign(text, ents)
        return text, [Diagnosis(name=e.span.text, key=concept_key(e.span.text), assertion=e.assertion, doc_id=doc,
                                label=e.type.value,
                                sentence=sentences.index(e.span.start),
                                evidence=sentences.context(e.span.start, e.span.end)) for e in self.entities]

    def context(self, p: dict, diagnoses, **override) -> VisitContext:
        ctx = VisitContext(patient_id=p["pid"], encounter_id=p["eid"], sex=p["sex"], birth_date=p["birth"],
                           insurance_type=p["insurance"], institution_level=p["level"], setting=p["setting"],
                           admitted=p["admitted"], discharged=p["discharged"] if p["setting"] == "inpatient" else None,
                           department=p["department"], diagnoses=tuple(diagnoses), records=1)
        return ctx.model_copy(update=override) if override else ctx

    # -- charges and bills --------------------------------------------------------------------------------------

    def charge(self, p, code, name, qty, price, day=None, category=None, unit=None) -> Charge:
        self.n += 1
        qty, price = Decimal(str(qty)), Decimal(str(price))
        return Charge(charge_id=f"C{self.n:07d}", encounter_id=p["eid"], code=code, name=name, quantity=qty,
                      unit_price=price, amount=(qty * price).quantize(Decimal("0.01")),
                      day=day or p["admitted"], category=category, unit=unit)

    def plain_charges(self, p, k: int) -> list[Charge]:
        return [self.charge(p, "", name, self.rng.randint(1, 4), price, category=cat)
                for name, cat, price in self.rng.sample(PLAIN, k)]

    def price(self) -> Decimal:
        return Decimal(self.rng.randint(200, 30000)) / 100

    def clean_catalogue_charges(self, p, k: int, kinds=("sex", "disease", "frequency", "age")) -> list[Charge]:
        """Catalogue items whose restrictions this patient meets (a disease one gets its diagnosis affirmed)."""
        out, tries = [], 0
        used = set()
        while len(out) < k and tries < 50:
            tries += 1
            kind = self.rng.choice(kinds)
            if kind == "sex":
                item = self.rng.choice(self.pools[f"sex:{p['sex']}"])
            elif kind == "age":
                if (p["admitted"] - p["birth"]).days / 365.25 < 18:
                    item = self.rng.choice(self.pools["age:儿童"])
                else:
                    continue
            elif kind == "frequency":
                item = self.rng.choice(self.pools["frequency:1次每日"])
                if item["code"] in used:
                    continue
                used.add(item["code"])
                days = (p["discharged"] - p["admitted"]).days + 1
                out.append(self.charge(p, item["code"], item["name"], self.rng.randint(1, days), self.price()))
                continue
            else:
                item = self.rng.choice(self.pools["disease"])
                terms = item["疾病限制"].strip("()").split("|")
                if any(t in dx for t in terms for dx in p["affirmed"]) or any(
                        t in dx for t in terms for dx in p["negated"] + p["family"]):
                    pass
                else:
                    dx = self.rng.choice(item["dx_terms"])
                    if any(dx in b or b in dx for b in BACKGROUND_DX):
                        continue
                    p["affirmed"].append(dx)
            if item["code"] in used:
                continue
            used.add(item["code"])
            out.append(self.charge(p, item["code"], item["name"], 1, self.price()))
        return out

    def itemised(self, p, charges: list[Charge], doc: str, with_codes: bool = True, bill_no: str | None = None) -> Claim:
        groups: dict[str, list[Charge]] = defaultdict(list)
        for c in charges:
            groups[c.code or c.name].append(c)
        items = []
        self.plain_lines = {n for n, cs in enumerate(groups.values(), 1) if not cs[0].code}
        for n, cs in enumerate(groups.values(), 1):
            c = cs[0]
            name = self.misread(c.name)
            qty = sum((x.quantity for x in cs), Decimal(0))
            amount = sum((x.amount for x in cs), Decimal(0))
            items.append(line(n, name, qty, c.unit_price, amount, c.code if with_codes and c.code and n % 2 else None,
                              c.unit))
        header = {"bill_code": BillField(name="bill_code", value="3301"),
                  "bill_no": BillField(name="bill_no", value=bill_no or doc[-8:])}
        return Claim(doc_id=doc, doc_type=DocumentType.itemised_list, items=tuple(items), header=header)

    def misread(self, name: str) -> str:
        """OCR-like damage to a printed name (``noise``: the share of lines with one character replaced by
        another hanzi); the charges keep the true name."""
        if not self.noise or len(name) < 3 or self.noise_rng.random() >= self.noise:
            return name
        i = self.noise_rng.randrange(len(name))
        return name[:i] + self.noise_rng.choice("未末术木己已巳日曰人入八土士干千汁计") + name[i + 1:]

    def receipt(self, p, charges: list[Charge], doc: str) -> Claim:
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for c in charges:
            cat = c.category or self.book.category_of(c.code) or "其他住院费用"
            from claims.reconcile import canonical_category

            totals[canonical_category(cat)] += c.amount
        items = [LineItem(line_no=n, name=BillField(name="name", value=cat),
                          amount=BillField(name="amount", value=v, kind=FieldKind.amount))
                 for n, (cat, v) in enumerate(sorted(totals.items()), 1)]
        return Claim(doc_id=doc, doc_type=DocumentType.inpatient_e_receipt, items=tuple(items))


def line(n, name, qty, price, amount, code=None, unit=None) -> LineItem:
    return LineItem(line_no=n, name=BillField(name="name", value=name),
                    amount=BillField(name="amount", value=Decimal(amount), kind=FieldKind.amount),
                    quantity=BillField(name="quantity", value=Decimal(qty), kind=FieldKind.number),
                    unit_price=BillField(name="unit_price", value=Decimal(price), kind=FieldKind.number),
                    unit=BillField(name="unit", value=unit) if unit else None,
                    match=CatalogMatch(code=code, name=name, score=100, method="exact") if code else None)


def replace_line(claim: Claim, i: int, **fields) -> Claim:
    items = list(claim.items)
    it = items[i]
    upd = {}
    for k, v in fields.items():
        kind = FieldKind.amount if k == "amount" else FieldKind.number
        upd[k] = BillField(name=k, value=Decimal(v), kind=kind)
    items[i] = it.model_copy(update=upd)
    return claim.model_copy(update={"items": tuple(items)})


def build_case(w: World, kind: str | None, idx: int) -> dict:
    """One claim: its inputs and the kind planted (None: a clean control)."""
    r = w.rng
    variant = ""
    p = w.patient()
    override: dict = {}
    others: list = []
    # a planted disease restriction: no other disease-restricted item (its affirmed diagnosis, 黑色素瘤 say,
    # would rightly meet a 限肿瘤 rule through the disease dictionary and blur the ground truth)
    kinds = ("sex", "frequency", "age") if kind == "recon.restriction.disease" else ("sex", "disease", "frequency", "age")
    charges = w.plain_charges(p, r.randint(3, 6)) + w.clean_catalogue_charges(p, r.randint(1, 3), kinds)
    doc = f"bill-{idx:05d}"
    claim_kind = "itemised"

    def add_item(pool_key, qty=1, unit=None, days=None, sex=None):
        item = r.choice(w.pools[pool_key])
        cs = []
        if days:
            for d in range(days):
                cs.append(w.charge(p, item["code"], item["name"], 1, w.price() if not cs else cs[0].unit_price,
                                   day=p["admitted"] + timedelta(days=d), unit=unit))
        else:
            cs.append(w.charge(p, item["code"], item["name"], qty, w.price(), unit=unit))
        return cs

    if kind == "recon.restriction.sex":
        other = "女" if p["sex"] == "男" else "男"
        charges += add_item(f"sex:{other}")
    elif kind == "recon.restriction.unverified":
        charges += add_item(f"sex:{r.choice('男女')}")
        override["sex"] = None
    elif kind == "recon.restriction.age":
        charges += add_item("age:儿童")  # every generated patient is an adult
    elif kind == "recon.restriction.insurance":
        charges += add_item("insurance:工伤")
    elif kind == "recon.restriction.level":
        charges += add_item("level:二级")
        p["level"] = 1
    elif kind == "recon.restriction.setting":
        p["setting"] = "outpatient"
        p["discharged"] = p["admitted"]
        charges = [c.model_copy(update={"day": p["admitted"]}) for c in w.plain_charges(p, 3)]
        charges += add_item("setting:住院")
    elif kind == "recon.restriction.specialty":
        charges += add_item("specialty:(急诊)")
    elif kind == "recon.restriction.disease":
        variant = DISEASE_VARIANTS[idx % 3]
        for _ in range(50):
            item = r.choice(w.pools["disease"])
            terms = item["疾病限制"].strip("()").split("|")
            if not any(t in dx for t in terms for dx in p["affirmed"] + BACKGROUND_DX):
                break
        dx = max(item["dx_terms"], key=len)
        if variant == "negated":
            p["negated"].append(dx)
        elif variant == "family":
            p["family"].append(dx)
        charges.append(w.charge(p, item["code"], item["name"], 1, w.price()))
    elif kind == "recon.rule.uninterpretable":
        charges += add_item("step")
    elif kind == "recon.limit.frequency":
        item = r.choice(w.pools["frequency:1次每日"])
        days = (p["discharged"] - p["admitted"]).days + 1
        charges.append(w.charge(p, item["code"], item["name"], days + r.randint(1, 5), w.price()))
    elif kind == "recon.limit.quantity":
        item = r.choice(w.pools["quantity:24小时"])
        days = (p["discharged"] - p["admitted"]).days + 1
        charges.append(w.charge(p, item["code"], item["name"], 24 * days + r.randint(1, 30), "3.5", unit="小时"))
    elif kind == "recon.limit.course":
        item = r.choice(w.pools["course"])
        limit = int(item["疗程限制"].rstrip("天"))
        p["discharged"] = max(p["discharged"], p["admitted"] + timedelta(days=limit + 5))
        for d in (0, limit + 2):
            charges.append(w.charge(p, item["code"], item["name"], 1, "50", day=p["admitted"] + timedelta(days=d)))
    elif kind == "recon.limit.total":
        item = r.choice(w.pools["total"])
        cap = Decimal(item["总额限制"].rstrip("元"))
        charges.append(w.charge(p, item["code"], item["name"], 1, cap + r.randint(10, 500)))
    text, dx = w.render(p)
    entities = w.entities
    ctx = w.context(p, dx, **override)

    # the bill(s)
    if kind == "recon.category_total" or (kind is None and idx % 5 == 0):
        claim_kind = "receipt"
        claim = w.receipt(p, charges, doc)
        if kind:
            i = next(n for n, it in enumerate(claim.items) if not str(it.name.value).startswith("其他"))
            old = claim.items[i].amount.value
            claim = replace_line(claim, i, amount=old + r.choice([-1, 1]) * Decimal(r.randint(5, 300)))
    elif kind == "recon.duplicate.items_in_stay" or (kind is None and idx % 5 == 1):
        # the stay split over two bills; planted: one of this bill's lines also on the other
        second = w.plain_charges(p, 2)
        names = {c.name for c in charges}
        second = [c for c in second if c.name not in names]
        charges_all = charges + second
        claim = w.itemised(p, charges, doc)
        other = w.itemised(p, second, doc + "-b")
        if kind:
            dup = claim.items[0].model_copy(update={"line_no": len(other.items) + 1})
            other = other.model_copy(update={"items": other.items + (dup,)})
        others = [(f"{doc}-b:0", other)]
        charges = charges_all
    else:
        bill_charges = list(charges)
        if kind == "recon.charged_not_billed":
            plain = [c for c in bill_charges if not c.code]
            bill_charges.remove(plain[-1])
        claim = w.itemised(p, bill_charges, doc)
        if kind == "recon.billed_not_charged":
            n = len(claim.items) + 1
            claim = claim.model_copy(update={"items": claim.items + (
                line(n, r.choice(UNCHARGED), 1, "88", "88"),)})
        elif kind in ("recon.quantity_mismatch", "recon.unit_price_mismatch", "recon.amount_mismatch"):
            # a plain line: raising a limited item's quantity would also (rightly) break its limit
            i = r.choice([n for n, it in enumerate(claim.items) if it.line_no in w.plain_lines])
            it = claim.items[i]
            q, pr = it.quantity.value, it.unit_price.value
            if kind == "recon.quantity_mismatch":
                q2 = q + r.randint(1, 3)
                claim = replace_line(claim, i, quantity=q2, amount=(q2 * pr).quantize(Decimal("0.01")))
            elif kind == "recon.unit_price_mismatch":
                pr2 = (pr * Decimal(r.choice(["1.2", "1.5", "2", "0.8"]))).quantize(Decimal("0.01"))
                claim = replace_line(claim, i, unit_price=pr2, amount=(q * pr2).quantize(Decimal("0.01")))
            else:
                claim = replace_line(claim, i, amount=it.amount.value + Decimal(r.randint(1, 900)) / 10)
        elif kind == "recon.duplicate.same_file":
            others = [(f"{doc}-again:0", claim.model_copy())]
        elif kind == "recon.duplicate.near_bill":
            twin = w.itemised(p, bill_charges, doc + "-twin", bill_no=f"9{idx:07d}")
            others = [(f"{doc}-twin:0", twin)]
    return {"claim_id": f"{doc}:0", "claim": claim, "charges": charges, "context": ctx, "others": others,
            "planted": kind, "variant": variant, "claim_kind": claim_kind, "record": text,
            "entities": entities, "patient": p, "override": override}


def graph_run(cases: list[dict], book: RuleBook, n: int) -> dict:
    """The same claims through the graph (embedded ArcadeDB in a temporary directory): claims, records (the
    known spans with their assertions), charges and visit facts written, then ``graph.reconcile.reconcile_claim``
    per claim, timed; its findings compared with the pure run's. Claims planted as the same file twice are left
    out (one file is one Claim node in the graph: the duplicate cannot be stored as a second claim)."""
    import tempfile

    import neo4j

    from core.records import ClinicalRecord
    from graph.reconcile import link_claim, reconcile_claim, write_charges
    from graph.schema import init_schema
    from graph.server import EmbeddedServer
    from graph.writer import GraphWriter

    chosen = [c for c in cases if c["planted"] != "recon.duplicate.same_file"][:n]
    with tempfile.TemporaryDirectory(prefix="medkg-bench-reconcile-") as tmp:
        server = EmbeddedServer(Path(tmp), heap="1g")
        try:
            conn = server.connection()
            with neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password)) as driver:
                db = conn.database
                init_schema(driver, db)
                writer = GraphWriter(driver, db)
                t0 = time.perf_counter()
                for c in chosen:
                    p, ctx = c["patient"], c["context"]
                    writer.write_records([(ClinicalRecord(doc_id=f"doc-{p['pid']}", text=c["record"], patient_id=p["pid"],
                                                          encounter_id=p["eid"]), tuple(c["entities"]), ())])
                    claims = [(c["claim_id"], c["claim"])] + list(c["others"])
                    writer.write_claims([(cl, p["pid"]) for _, cl in claims])
                    enc = {p["eid"]: {"patient_id": p["pid"], "setting": ctx.setting,
                                      "admitted": ctx.admitted.isoformat(),
                                      **({"discharged": ctx.discharged.isoformat()} if ctx.discharged else {}),
                                      "institution_level": ctx.institution_level, "department": ctx.department,
                                      "insurance_type": ctx.insurance_type}}
                    pat = {p["pid"]: {k: v for k, v in (("sex", ctx.sex), ("birth_date", ctx.birth_date.isoformat()))
                                      if v}}
                    write_charges(driver, c["charges"], enc, pat, db)
                    for cid, cl in claims:
                        link_claim(driver, f"{cl.doc_id}:{cl.page}", p["eid"], db)
                load_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                recs = [reconcile_claim(driver, f"{c['claim'].doc_id}:{c['claim'].page}", book, database=db)
                        for c in chosen]
                run_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                for c in chosen[:50]:  # again: replaces the findings
                    reconcile_claim(driver, f"{c['claim'].doc_id}:{c['claim'].page}", book, database=db)
                again_s = time.perf_counter() - t0
                with driver.session(database=db) as s:
                    stored = s.run("MATCH (f:Finding {source: 'reconcile'}) RETURN count(f) AS n").single()["n"]
        finally:
            server.down()
    agree = sum({f.rule for f in r.findings} == c["pure_rules"] for c, r in zip(chosen, recs))
    return {"claims": len(chosen), "claims_per_s": round(len(chosen) / run_s, 1),
            "rerun_claims_per_s": round(min(50, len(chosen)) / again_s, 1), "load_s": round(load_s, 1),
            "same_rules_as_pure_run": agree, "findings_stored": stored,
            "findings_expected": sum(len(r.findings) for r in recs),
            "disagreements": [{"claim": c["claim_id"], "pure": sorted(c["pure_rules"]),
                               "graph": sorted({f.rule for f in r.findings})}
                              for c, r in zip(chosen, recs) if {f.rule for f in r.findings} != c["pure_rules"]][:5]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--claims-per-kind", type=int, default=40)
    ap.add_argument("--controls", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--graph", type=int, default=200, help="claims also reconciled through the graph (0: none)")
    ap.add_argument("--misread", type=float, default=0.15,
                    help="share of itemised bill lines whose name has one character misread (OCR-like)")
    ap.add_argument("--ner", action="store_true",
                    help="diagnoses from the real NER over the rendered records (else the known spans); saved to "
                         "results/reconcile_ner.json")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    if not (CATALOG / "drug_restriction_rules.csv").exists():
        print(json.dumps({"benchmark": "reconcile", "skipped": f"no catalogue at {CATALOG}"}))
        return
    t0 = time.perf_counter()
    book = RuleBook.load(rules=[CATALOG / "drug_restriction_rules.csv", CATALOG / "service_restriction_rules.csv"],
                         classes=[CATALOG / f for f in ("drug_class_dict.csv", "service_class_dict.csv",
                                                         "material_class_dict.csv")],
                         diseases=[CATALOG / "disease_class_dict.csv"])
    load_s = time.perf_counter() - t0
    w = World(args.seed, book, args.misread)
    if args.ner:
        from ner.tagger import Tagger

        w.tagger = Tagger.load()
    plan = [k for k in KINDS for _ in range(args.claims_per_kind)] + [None] * args.controls
    w.rng.shuffle(plan)
    cases = [build_case(w, k, i) for i, k in enumerate(plan)]
    tol = Tolerance()
    t0 = time.perf_counter()
    results = [reconcile(c["claim"], claim_id=c["claim_id"], charges=c["charges"], context=c["context"],
                         rulebook=book, others=c["others"], tolerance=tol) for c in cases]
    run_s = time.perf_counter() - t0
    for c, rec in zip(cases, results):
        c["pure_rules"] = {f.rule for f in rec.findings}
    graph = graph_run(cases, book, args.graph) if args.graph else None
    tp, fp, fn = Counter(), Counter(), Counter()
    confusions: dict[str, Counter] = defaultdict(Counter)
    control_findings = Counter()
    variants: dict[str, Counter] = defaultdict(Counter)
    examples: dict[str, dict] = {}
    for c, rec in zip(cases, results):
        got = {f.rule for f in rec.findings}
        want = c["planted"]
        for k in got:
            if k == want:
                tp[k] += 1
            else:
                fp[k] += 1
                confusions[k][want or "control"] += 1
                # ids and kinds only: a finding's text quotes the catalogue, which stays out of the results
                examples.setdefault(f"fp {k}", {"planted": want, "claim": c["claim_id"]})
        if want and want not in got:
            fn[want] += 1
            examples.setdefault(f"fn {want}", {"got": sorted(got), "claim": c["claim_id"]})
        if want is None and got:
            control_findings.update(got)
        if c["variant"]:
            variants[c["variant"]]["planted"] += 1
            variants[c["variant"]]["found"] += want in got
    per_kind = {}
    for k in KINDS:
        p = tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else None
        r = tp[k] / (tp[k] + fn[k]) if tp[k] + fn[k] else None
        per_kind[k] = {"planted": tp[k] + fn[k], "tp": tp[k], "fp": fp[k], "fn": fn[k],
                       "precision": None if p is None else round(p, 4), "recall": None if r is None else round(r, 4)}
    hw = probe()
    result = {
        "benchmark": "reconcile",
        "command": "python benchmarks/reconcile.py " + " ".join(sys.argv[1:]),
        "data": "rules: ../shared/data/catalog (drug/service restriction rules, class and disease dictionaries); "
                f"patients, records, charges and bills generated here (seed {args.seed}); bills are Claim objects built "
                "from the charges, not rendered/OCR'd; record assertions read by ner.assertions.assign over known "
                f"spans (NER not run); {args.misread:.0%} of itemised bill lines carry one misread character "
                "in their name (the charges keep the true name)",
        "misread_share": args.misread,
        "diagnoses_from": "NER (ner.tagger.Tagger, the shipped model) + ner.assertions" if args.ner else
                          "the known spans + ner.assertions",
        "ner_disease_spans_found": None if not args.ner else {
            "gold": w.ner_gold, "found_exactly": w.ner_found,
            "recall": round(w.ner_found / w.ner_gold, 4) if w.ner_gold else None},
        "claims": len(cases), "planted": sum(1 for k in plan if k), "clean_controls": plan.count(None),
        "per_rule_kind": per_kind,
        "min_precision": min(v["precision"] for v in per_kind.values() if v["precision"] is not None),
        "min_recall": min(v["recall"] for v in per_kind.values() if v["recall"] is not None),
        "findings_on_clean_controls": sum(control_findings.values()),
        "clean_controls_with_findings": dict(control_findings),
        "false_positive_sources": {k: dict(v) for k, v in confusions.items()},
        "disease_variants": {k: dict(v) for k, v in variants.items()},
        "examples_of_errors": examples,
        "claims_per_s": round(len(cases) / run_s, 1),
        "seconds": {"rulebook_load": round(load_s, 2), "reconcile": round(run_s, 2)},
        "graph": graph,
        "cpu": {"model": hw.cpu_model, "cores": hw.cores,
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average at the end "
                           f"{os.getloadavg()[0]:.1f} (the machine is shared)"},
    }
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if not args.no_save:
        (RESULT.with_name("reconcile_ner.json") if args.ner else RESULT).write_text(text + "\n")


if __name__ == "__main__":
    main()
