"""Scoring a ``Claim`` against a rendered bill's exact ground truth (``ocr.synth`` ``meta["fields"]``).

Pure functions, no OCR: ``score_claim(claim, fields, printed)`` gives one ``BillScore``; ``Tally`` adds
scores up (per template, overall) into the figures ``benchmarks/bills.py`` prints.

- Header fields: every ground-truth header / patient / payment / total field the page prints counts once
  (``printed`` is the page's ground-truth text; a field counts when its label, or an alias the template
  prints instead, is on the page and, for text and dates, its value too). Correct when the claim's
  normalised value equals the truth exactly: amounts as ``Decimal``, dates as ISO dates, text NFKC
  without spaces.
- Line items: a predicted item is correct when its name and amount both equal those of a ground-truth
  item not yet matched. The truth is the ``categories`` grid for receipts, the ``items`` list for
  itemised lists and VAT invoices.
- VAT invoices (``kind`` ``vat_invoice``) count their own header fields instead: the invoice's codes and
  date, buyer and seller name and taxpayer number, and the 合计 row's amount before tax and tax.
- Checks pass: no finding of severity ``error`` or ``warning`` (``claims.checks`` / ``claims.structure``).
- Wrong amounts not flagged: an amount field (total in figures or words, a payment, an item amount) whose
  value differs from the truth and whose ``needs_review`` is False. Must be 0.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from core.records import BillField, Claim, FieldKind, PaymentKey

__all__ = [
    "HEADER_FIELDS",
    "PAYMENT_FIELDS",
    "BillScore",
    "FieldSpec",
    "Tally",
    "blocking",
    "checks_pass",
    "norm_text",
    "score_claim",
    "truth_items",
]

BLOCKING = ("error", "warning")  # severities that mean "this bill's checks do not all pass"


@dataclass(frozen=True)
class FieldSpec:
    label: str  # the ground-truth key (as printed on the bill)
    key: str  # where the claim keeps it: ``Claim.header`` / ``Claim.payments`` key, or a total's attribute
    kind: FieldKind = FieldKind.text
    aliases: tuple[str, ...] = ()  # labels a template prints instead (itemised lists: 姓名 for 交款人)
    fallback: str = ""  # another header key the structurer may file it under

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label, *self.aliases)


_D, _A = FieldKind.date, FieldKind.amount
HEADER_FIELDS: tuple[FieldSpec, ...] = (  # gt["header"] and gt["patient"] keys
    FieldSpec("票据代码", "bill_code"),
    FieldSpec("票据号码", "bill_no"),
    FieldSpec("校验码", "check_code"),
    FieldSpec("开票日期", "issue_date", _D, aliases=("打印日期",)),
    FieldSpec("交款人统一社会信用代码", "payer_id"),
    FieldSpec("交款人", "payer", aliases=("姓名",), fallback="patient_name"),
    FieldSpec("业务流水号", "serial_no"),
    FieldSpec("门诊号", "outpatient_no"),
    FieldSpec("就诊日期", "visit_date", _D),
    FieldSpec("科室", "department"),
    FieldSpec("住院号", "inpatient_no"),
    FieldSpec("住院科别", "department", aliases=("科别",)),
    FieldSpec("床号", "bed"),
    FieldSpec("入院日期", "admitted", _D),
    FieldSpec("出院日期", "discharged", _D),
    FieldSpec("住院天数", "stay_days"),
    FieldSpec("医保类型", "insurance_type"),
    FieldSpec("性别", "sex"),
    FieldSpec("年龄", "age"),
    FieldSpec("医保编号", "insurance_no"),
    FieldSpec("医疗机构类型", "institution_type"),
)
HOSPITAL = FieldSpec("收款单位", "hospital")  # gt["footer"]; itemised lists print it as the title's hospital
PAYMENT_FIELDS: tuple[FieldSpec, ...] = tuple(FieldSpec(label, key.value, _A) for label, key in (
    ("医保统筹基金支付", PaymentKey.fund), ("个人自付", PaymentKey.self_pay), ("个人自费", PaymentKey.self_expense),
    ("个人账户支付", PaymentKey.account), ("个人现金支付", PaymentKey.cash), ("大病保险", PaymentKey.critical_illness),
    ("其他支付", PaymentKey.other_fund), ("预缴金额", PaymentKey.prepaid), ("补缴金额", PaymentKey.top_up),
    ("退费金额", PaymentKey.refund)))
VAT_KIND = "vat_invoice"
VAT_HEADER_FIELDS: tuple[FieldSpec, ...] = (  # gt["header"] keys of a VAT invoice
    FieldSpec("发票代码", "bill_code"),
    FieldSpec("发票号码", "bill_no"),
    FieldSpec("开票日期", "issue_date", _D),
    FieldSpec("校验码", "check_code"),
    FieldSpec("机器编号", "machine_no"),
)
VAT_PARTY_FIELDS: tuple[tuple[str, FieldSpec], ...] = (  # (gt["buyer"] or gt["seller"], spec)
    ("buyer", FieldSpec("名称", "buyer")), ("buyer", FieldSpec("纳税人识别号", "buyer_tax_id")),
    ("seller", FieldSpec("名称", "seller")), ("seller", FieldSpec("纳税人识别号", "seller_tax_id")),
)
VAT_SUMS: tuple[tuple[str, FieldSpec], ...] = (  # the 合计 row: (gt key, spec)
    ("amount_excl_tax", FieldSpec("合计", "amount_excl_tax", _A)), ("tax", FieldSpec("合计", "tax", _A)),
)
TOTAL_FIGURES = FieldSpec("小写", "total_figures", _A)
TOTAL_WORDS = FieldSpec("大写", "total_words", _A)


def norm_text(text: object) -> str:
    """NFKC, no whitespace: how text fields are compared."""
    return "".join(unicodedata.normalize("NFKC", str(text)).split())


def _date(text: str) -> date | None:
    parts = "".join(ch if ch.isdigit() else " " for ch in unicodedata.normalize("NFKC", text)).split()
    try:
        return date(*map(int, parts[:3])) if len(parts) >= 3 else None
    except ValueError:
        return None


def _decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _normal(kind: FieldKind, value: object) -> object:
    """A value, ground truth or predicted, in the form both are compared in."""
    if value is None:
        return None
    if kind is FieldKind.date:
        return value if isinstance(value, date) else _date(str(value))
    if kind in (FieldKind.amount, FieldKind.number):
        return value if isinstance(value, Decimal) else _decimal(value)
    return norm_text(value) or None


def blocking(claim: Claim) -> list[str]:
    """Rules of the findings that stop a bill's checks from all passing."""
    return [f.rule for f in claim.findings if f.severity in BLOCKING]


def checks_pass(claim: Claim) -> bool:
    return not blocking(claim)


def truth_items(fields: dict) -> list[tuple[str, Decimal]]:
    """(name, amount) rows a parser should recover: the item list of an itemised list, else the grid."""
    rows = ([(i["name"], i["amount"]) for i in fields["items"]] if fields["kind"] in ("itemised", VAT_KIND)
            else list(fields["categories"].items()))
    return [(norm_text(n), Decimal(a)) for n, a in rows]


@dataclass
class BillScore:
    header_ok: int = 0
    header_n: int = 0
    items_tp: int = 0
    items_pred: int = 0
    items_true: int = 0
    checks_pass: bool = False
    wrong_amounts_unflagged: int = 0
    wrong_amounts: int = 0  # flagged or not
    field_errors: Counter = field(default_factory=Counter)  # field label -> wrong or missing
    wrong_unflagged_fields: list[str] = field(default_factory=list)
    blocking_rules: list[str] = field(default_factory=list)

    @property
    def wrong_amount_on_passing_bill(self) -> bool:
        return self.checks_pass and self.wrong_amounts > 0


def _printed(spec: FieldSpec, value: str, printed: str) -> bool:
    """The field's label (or an alias) and its value are on the page; amounts are looked for as
    ``1234.50`` in the page's text without thousands separators and currency signs."""
    if not any(label in printed for label in spec.labels):
        return False
    if spec.kind is FieldKind.amount:
        figures = printed.replace(",", "").replace("¥", "").replace("￥", "")
        return f"{Decimal(value):.2f}" in figures
    return norm_text(value) in printed


def _compare(score: BillScore, spec: FieldSpec, got: BillField | None, truth: object) -> None:
    score.header_n += 1
    value = _normal(spec.kind, got.value) if got is not None else None
    if value is not None and value == truth:
        score.header_ok += 1
    else:
        score.field_errors[spec.label if got is not None else f"{spec.label} (missing)"] += 1


def _amount_check(score: BillScore, where: str, got: BillField | None, truth: Decimal) -> None:
    if got is None:
        return
    if _normal(FieldKind.amount, got.value) != truth:
        score.wrong_amounts += 1
        if not got.needs_review:
            score.wrong_amounts_unflagged += 1
            score.wrong_unflagged_fields.append(where)


def score_claim(claim: Claim, fields: dict, printed: str | None = None) -> BillScore:
    """Score one claim against ``fields`` (``meta["fields"]``). ``printed``: the page's ground-truth
    text (its lines joined); without it every ground-truth field is taken as printed."""
    page = norm_text(printed) if printed is not None else None
    score = BillScore(checks_pass=checks_pass(claim), blocking_rules=blocking(claim))

    if fields["kind"] == VAT_KIND:
        _score_vat_header(score, claim, fields, page)
    else:
        truth_header = fields["header"] | fields["patient"]
        for spec in HEADER_FIELDS:
            value = truth_header.get(spec.label)
            if value is None or (page is not None and not _printed(spec, value, page)):
                continue
            got = claim.header.get(spec.key) or (claim.header.get(spec.fallback) if spec.fallback else None)
            _compare(score, spec, got, _normal(spec.kind, value))
        hospital = fields.get("footer", {}).get(HOSPITAL.label) or fields.get("hospital")
        if hospital and (page is None or norm_text(hospital) in page):
            _compare(score, HOSPITAL, claim.header.get(HOSPITAL.key), norm_text(hospital))

    total = Decimal(fields["total"])
    for spec, got in ((TOTAL_FIGURES, claim.total_figures), (TOTAL_WORDS, claim.total_words)):
        if page is None or spec.label in page:
            _compare(score, spec, got, total)
        _amount_check(score, spec.key, got, total)
    for spec in PAYMENT_FIELDS:
        if spec.label not in fields["payments"]:
            continue
        truth = Decimal(fields["payments"][spec.label])
        got = claim.payments.get(spec.key)
        if page is None or _printed(spec, fields["payments"][spec.label], page):
            _compare(score, spec, got, truth)
        _amount_check(score, f"payments.{spec.key}", got, truth)

    truth = Counter(truth_items(fields))
    pred = Counter((norm_text(i.name.value or ""), _normal(FieldKind.amount, i.amount.value)) for i in claim.items)
    score.items_tp, score.items_pred, score.items_true = sum((truth & pred).values()), sum(pred.values()), sum(truth.values())
    # an item amount is wrong when no true item has it (a multiset: each true amount excuses one)
    _unmatched(score, Counter(a for _, a in truth.elements()), [(i.line_no, i.amount) for i in claim.items], "amount")
    if fields["kind"] == VAT_KIND:
        taxes = Counter(Decimal(i["tax"]) for i in fields["items"])
        _unmatched(score, taxes, [(i.line_no, i.tax) for i in claim.items if i.tax is not None], "tax")
    return score


def _unmatched(score: BillScore, truth: Counter, fields: list[tuple[int, BillField]], name: str) -> None:
    """Count item fields whose value no true item has; unflagged ones take the true values first."""
    remaining = truth.copy()
    for line_no, f in sorted(fields, key=lambda p: p[1].needs_review):
        value = _normal(FieldKind.amount, f.value)
        if value is not None and remaining[value] > 0:
            remaining[value] -= 1
            continue
        score.wrong_amounts += 1
        if not f.needs_review:
            score.wrong_amounts_unflagged += 1
            score.wrong_unflagged_fields.append(f"items[{line_no}].{name}")


def _score_vat_header(score: BillScore, claim: Claim, fields: dict, page: str | None) -> None:
    """A VAT invoice's header: codes and date, buyer and seller, and the 合计 row's two sums."""
    for spec in VAT_HEADER_FIELDS:
        value = fields["header"].get(spec.label)
        if value is not None and (page is None or _printed(spec, value, page)):
            _compare(score, spec, claim.header.get(spec.key), _normal(spec.kind, value))
    for party, spec in VAT_PARTY_FIELDS:
        value = fields[party].get(spec.label)
        if value is not None and (page is None or _printed(spec, value, page)):
            _compare(score, spec, claim.header.get(spec.key), _normal(spec.kind, value))
    for key, spec in VAT_SUMS:
        truth = Decimal(fields[key])
        got = claim.header.get(spec.key)
        if page is None or _printed(spec, fields[key], page):
            _compare(score, spec, got, truth)
        _amount_check(score, f"header.{spec.key}", got, truth)


@dataclass
class Tally:
    """Scores added up: the figures of a set of bills."""

    bills: int = 0
    header_ok: int = 0
    header_n: int = 0
    items_tp: int = 0
    items_pred: int = 0
    items_true: int = 0
    passing: int = 0
    wrong_amounts_unflagged: int = 0
    wrong_amounts: int = 0
    passing_with_wrong_amount: int = 0
    field_errors: Counter = field(default_factory=Counter)
    blocking_rules: Counter = field(default_factory=Counter)

    def add(self, s: BillScore) -> None:
        self.bills += 1
        self.header_ok += s.header_ok
        self.header_n += s.header_n
        self.items_tp += s.items_tp
        self.items_pred += s.items_pred
        self.items_true += s.items_true
        self.passing += s.checks_pass
        self.wrong_amounts_unflagged += s.wrong_amounts_unflagged
        self.wrong_amounts += s.wrong_amounts
        self.passing_with_wrong_amount += s.wrong_amount_on_passing_bill
        self.field_errors.update(s.field_errors)
        self.blocking_rules.update(set(s.blocking_rules))

    @property
    def header_accuracy(self) -> float:
        return self.header_ok / self.header_n if self.header_n else 1.0

    @property
    def item_precision(self) -> float:
        return self.items_tp / self.items_pred if self.items_pred else float(self.items_true == 0)

    @property
    def item_recall(self) -> float:
        return self.items_tp / self.items_true if self.items_true else 1.0

    @property
    def item_f1(self) -> float:
        p, r = self.item_precision, self.item_recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def summary(self, digits: int = 4) -> dict:
        return {
            "bills": self.bills,
            "header_accuracy": round(self.header_accuracy, digits),
            "header_fields": self.header_n,
            "item_precision": round(self.item_precision, digits),
            "item_recall": round(self.item_recall, digits),
            "item_f1": round(self.item_f1, digits),
            "items": {"correct": self.items_tp, "predicted": self.items_pred, "expected": self.items_true},
            "checks_pass_share": round(self.passing / self.bills, digits) if self.bills else 0.0,
            "wrong_amounts_not_flagged": self.wrong_amounts_unflagged,
            "wrong_amounts_flagged": self.wrong_amounts - self.wrong_amounts_unflagged,
            "bills_passing_with_wrong_amount": self.passing_with_wrong_amount,
            "field_errors": dict(self.field_errors.most_common()),
            "blocking_rules": dict(self.blocking_rules.most_common()),
        }
