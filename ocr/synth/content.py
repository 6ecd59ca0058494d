"""What a synthetic bill says (no geometry): kind, title, fields, line items, totals, payments.

Amounts are consistent the way real bills are: items sum to their category rows, categories sum to
the total, 大写 equals 小写, and the payment block adds up to the total.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal

from . import lexicon as lx
from .catalogue import CatalogueNames

KINDS = ("inpatient", "outpatient", "itemised")

_TITLES = {
    "inpatient": ("医疗住院收费票据(电子)", "医疗住院收费票据", "住院收费票据", "住院医疗收费票据(电子)"),
    "outpatient": ("医疗门诊收费票据(电子)", "门诊收费票据", "医疗门诊收费票据", "门诊收费专用票据"),
    "itemised": ("住院费用清单", "费用清单", "住院患者费用明细清单", "住院费用明细", "出院费用清单"),
}


@dataclass(frozen=True)
class Item:
    charge: lx.Chargeable
    spec: str  # the charge's 规格 as this bill prints it
    qty: Decimal
    price: Decimal
    amount: Decimal
    day: str  # date the item was charged, formatted
    code: str = ""  # the catalogue code its name was taken from (names from a catalogue only)


@dataclass
class Bill:
    kind: str
    title: str
    hospital: str
    date_style: int
    thousands: bool  # amounts printed with thousands separators
    yen: str = "¥"  # or the full-width ￥
    header: list[tuple[str, str]] = field(default_factory=list)  # 票据代码, 票据号码, ... in print order
    patient: list[tuple[str, str]] = field(default_factory=list)  # 住院号, 科别, 住院时间, 医保类型 ...
    items: list[Item] = field(default_factory=list)
    categories: list[tuple[str, Decimal]] = field(default_factory=list)  # the receipt's grid rows
    total: Decimal = Decimal(0)
    payments: list[tuple[str, Decimal]] = field(default_factory=list)
    footer: list[tuple[str, str]] = field(default_factory=list)  # 收款单位, 复核人, 收款人

    def m(self, value: Decimal) -> str:
        return lx.money(value, thousands=self.thousands)

    def fields(self) -> dict:
        """Plain JSON-able ground truth of the bill's content (what a parser should recover)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "hospital": self.hospital,
            "header": dict(self.header),
            "patient": dict(self.patient),
            "items": [item_fields(i) for i in self.items],
            "categories": {c: str(v) for c, v in self.categories},
            "total": str(self.total),
            "total_words": lx.amount_in_words(self.total),
            "payments": {k: str(v) for k, v in self.payments},
            "footer": dict(self.footer),
        }


def item_fields(i: Item) -> dict:
    """One line item's ground truth, JSON-able."""
    out = {"category": i.charge.category, "name": i.charge.name, "spec": i.spec, "unit": i.charge.unit,
           "class": i.charge.cls, "qty": str(i.qty), "price": str(i.price), "amount": str(i.amount), "date": i.day}
    return out | {"code": i.code} if i.code else out


def _items(r: random.Random, kind: str, days: int, start, date_style: int,
           n_items: tuple[int, int] | None = None, names: CatalogueNames | None = None,
           names_r: random.Random | None = None) -> list[Item]:
    times = r.choice(("×", "×", "*", "x"))  # how this hospital's system writes 0.25g×24粒
    pool = lx.chargeables()
    if kind == "outpatient":
        pool = tuple(c for c in pool if c.category not in {"床位费", "护理费", "手术费", "麻醉费"})
        n = r.randint(3, 12)
    else:
        pool = tuple(c for c in pool if c.category != "挂号费")
        n = r.randint(*(n_items or (8, 30)))
    chosen = r.sample(pool, min(n, len(pool)))
    if kind == "inpatient" or (kind == "itemised" and r.random() < 0.8):  # a stay always has a bed
        beds = [c for c in pool if c.category == "床位费" and c.name != "空调费"]
        if not any(c.category == "床位费" for c in chosen):
            chosen[0] = r.choice(beds)
    out = []
    for c in chosen:
        if c.unit == "日":
            qty = Decimal(days)
        elif c.unit == "小时":
            qty = Decimal(r.randint(2, 24 * max(1, min(days, 3))))
        elif c.unit == "g":
            qty = Decimal(r.choice((6, 9, 10, 12, 15, 20, 30))) * r.randint(1, 7)
        elif c.unit in {"支", "瓶", "袋", "组", "次"}:
            qty = Decimal(r.randint(1, 3 * max(1, min(days, 6))))
        else:
            qty = Decimal(r.randint(1, 4))
        p = lx.price(r, c)
        amount = (qty * p).quantize(lx.CENT)
        if amount <= 0:
            continue
        day = lx.fmt_date(start + timedelta(days=r.randrange(max(days, 1))), date_style)
        code = ""
        if names is not None:  # a real name of the same category, from its own stream
            code, name = names.pick(c.category, names_r)
            c = replace(c, name=name)
        out.append(Item(c, c.spec.replace("×", times), qty, p, amount, day, code))
    return out


def _payments(r: random.Random, kind: str, total: Decimal, self_pay: Decimal,
              insured: bool) -> list[tuple[str, Decimal]]:
    """医保统筹基金支付 + 个人自付 + 个人自费 = total; 统筹 + 个人账户 + 个人现金 = total."""
    covered = total - self_pay
    fund = (covered * Decimal(r.randint(45, 90)) / 100).quantize(lx.CENT) if insured else Decimal(0)
    co_pay = covered - fund
    personal = co_pay + self_pay
    account = Decimal(0)
    if insured and r.random() < 0.6:
        account = (personal * Decimal(r.randint(0, 100)) / 100).quantize(lx.CENT)
    cash = personal - account
    rows = [("医保统筹基金支付", fund), ("其他支付", Decimal(0)), ("个人账户支付", account),
            ("个人现金支付", cash), ("个人自付", co_pay), ("个人自费", self_pay)]
    if r.random() < 0.4:
        rows.insert(1, ("大病保险", Decimal(0)))
    if kind == "inpatient":
        deposit = Decimal(r.choice((1000, 2000, 3000, 5000, 10000, 20000)))
        refund, extra = (deposit - cash, Decimal(0)) if deposit >= cash else (Decimal(0), cash - deposit)
        rows = [("预缴金额", deposit), ("补缴金额", extra), ("退费金额", refund)] + rows
    return rows


def sample_bill(r: random.Random, kind: str | None = None, n_items: tuple[int, int] | None = None,
                names: CatalogueNames | None = None, names_r: random.Random | None = None) -> Bill:
    """A random bill; ``kind`` forces one of ``KINDS`` (the draw is made anyway, so a seed's other
    choices stay the same). ``n_items``: how many line items an inpatient bill or list may have (default
    8 to 30; a multi-page 费用清单 has 20 to 60). ``names``: line items named from a catalogue instead of
    the lexicon, drawn with ``names_r`` (default: a stream of its own), so every other draw of ``r`` and
    the bill's amounts stay what they are without it."""
    if names is not None and names_r is None:
        names_r = random.Random("catalogue")
    drawn = r.choices(KINDS, weights=(4, 3, 3))[0]
    kind = kind or drawn
    title = r.choice(_TITLES[kind])
    place = r.choice(lx.words("places"))
    if r.random() < 0.3 and kind != "itemised" and place.endswith("省"):
        title = place + title
    date_style = r.choice((0, 0, 1, 2))
    bill = Bill(kind=kind, title=title, hospital=lx.hospital(r), date_style=date_style, thousands=r.random() < 0.35,
                yen=r.choice(("¥", "¥", "￥")))

    days = r.randint(2, 21) if kind != "outpatient" else 1
    start = lx.random_date(r)
    end = start + timedelta(days=days)
    issued = end if kind != "outpatient" else start
    insured_type = r.choice(lx.INSURANCE_TYPES)
    insured = insured_type != "自费"
    name = lx.person_name(r)

    bill.items = _items(r, kind, days, start, date_style, n_items, names, names_r)
    cats: dict[str, Decimal] = {}
    for it in bill.items:
        cat = it.charge.category
        cats[cat] = cats.get(cat, Decimal(0)) + it.amount
    bill.categories = sorted(cats.items(), key=lambda kv: lx.CATEGORIES.index(kv[0]))
    bill.total = sum((v for v in cats.values()), Decimal(0))
    self_pay = sum((i.amount for i in bill.items if i.charge.cls == "丙"), Decimal(0))
    bill.payments = _payments(r, kind, bill.total, self_pay, insured)

    def fd(d) -> str:
        return lx.fmt_date(d, date_style)

    bill.header = [
        ("票据代码", lx.digits(r, 12)),
        ("票据号码", lx.digits(r, 10)),
        ("校验码", lx.check_code(r)),
        ("开票日期", fd(issued)),
        ("交款人", name),
    ]
    if r.random() < 0.5:
        bill.header.insert(4, ("交款人统一社会信用代码", lx.masked_id(r)))
    bill.patient = [("业务流水号", lx.digits(r, r.choice((12, 14, 16)), lead_zero=False))]
    if kind == "outpatient":
        bill.patient += [("门诊号", lx.digits(r, r.choice((8, 10)))), ("就诊日期", fd(start)),
                         ("科室", lx.department(r))]
    else:
        bill.patient += [("住院号", lx.inpatient_no(r)), ("住院科别", lx.department(r)),
                         ("床号", str(r.randint(1, 60))),
                         ("入院日期", fd(start)), ("出院日期", fd(end)), ("住院天数", f"{days}天")]
    bill.patient += [("医保类型", insured_type), ("性别", r.choice("男女")), ("年龄", f"{r.randint(1, 95)}岁")]
    if insured:
        bill.patient.append(("医保编号", lx.digits(r, r.choice((10, 12)))))
    bill.patient.append(("医疗机构类型", r.choice(lx.INSTITUTION_TYPES)))
    bill.footer = [("收款单位", bill.hospital), ("复核人", lx.person_name(r)),
                   ("收款人", lx.person_name(r) if r.random() < 0.8 else "系统管理员")]
    return bill
