"""Arithmetic a bill proves about itself, as pure functions over a ``Claim``.

Why: a bill states most of its amounts twice (total in words and in figures; items and their sum;
quantity × unit price and the amount; the insurance split and the total), so most misreads make an
identity fail. A failing check does not say which field is wrong, so it marks *every* field it involves
``needs_review``; ``claims.repair`` may then prove a single-digit repair. A check is built only from fields
that are printed (present in the Claim); a present field that cannot be read as a number makes its checks
*unverifiable* (a warning, and that field needs review), never silently skipped.

Fields are addressed by paths: ``total_figures``, ``total_words``, ``items[3].amount``,
``items[3].quantity``, ``items[3].unit_price``, ``items[3].tax``, ``payments.fund``, ``header.tax``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from core.records import BillField, Claim, DocumentType, FieldKind, Finding, PaymentKey

from .numerals import AmountError, NumeralError, parse_amount, parse_financial

CENT = Decimal("0.01")
Values = Mapping[str, Decimal | None]

__all__ = ["Check", "CheckReport", "CheckResult", "LinearCheck", "ProductCheck", "TaxCheck", "apply_report", "build_checks",
           "field_value", "field_values", "get_field", "run_checks", "set_field"]


# ---------------------------------------------------------------------------------------------
# Paths


_PATH = re.compile(r"items\[(\d+)\]\.(\w+)|(payments|header)\.(.+)|(total_figures|total_words)")


def get_field(claim: Claim, path: str) -> BillField | None:
    m = _PATH.fullmatch(path)
    if not m:
        raise KeyError(path)
    if m[1] is not None:
        i = int(m[1])
        return getattr(claim.items[i], m[2]) if i < len(claim.items) else None
    if m[3] is not None:
        return getattr(claim, m[3]).get(m[4])
    return getattr(claim, m[5])


def set_field(claim: Claim, path: str, field: BillField) -> Claim:
    """A copy of ``claim`` with the field at ``path`` replaced (records are frozen)."""
    m = _PATH.fullmatch(path)
    if not m:
        raise KeyError(path)
    if m[1] is not None:
        i = int(m[1])
        items = list(claim.items)
        items[i] = items[i].model_copy(update={m[2]: field})
        return claim.model_copy(update={"items": tuple(items)})
    if m[3] is not None:
        return claim.model_copy(update={m[3]: {**getattr(claim, m[3]), m[4]: field}})
    return claim.model_copy(update={m[5]: field})


def field_value(field: BillField, path: str = "") -> Decimal | None:
    """The field's number: its Decimal value, else its printed text parsed (words for ``total_words``)."""
    if isinstance(field.value, Decimal):
        return field.value
    text = field.raw or (field.value if isinstance(field.value, str) else "")
    if not text:
        return None
    try:
        return parse_financial(text) if path == "total_words" else parse_amount(text)
    except (AmountError, NumeralError):
        return None


def _amount_paths(claim: Claim) -> list[str]:
    paths = [p for p in ("total_figures", "total_words") if getattr(claim, p) is not None]
    for i, item in enumerate(claim.items):
        paths += [f"items[{i}].{k}" for k in ("amount", "quantity", "unit_price", "tax_rate", "tax")
                  if getattr(item, k) is not None]
    paths += [f"payments.{k}" for k in claim.payments]
    paths += [f"header.{k}" for k, f in claim.header.items() if f.kind in (FieldKind.amount, FieldKind.number)]
    return paths


def field_values(claim: Claim) -> dict[str, Decimal | None]:
    """Every numeric field of the claim by path; ``None`` where the printed text cannot be read."""
    return {p: field_value(get_field(claim, p), p) for p in _amount_paths(claim)}


# ---------------------------------------------------------------------------------------------
# Checks


@dataclass(frozen=True)
class LinearCheck:
    """Σ sign·value = 0 to the cent for one of ``alternatives`` (tuples of (path, ±1) terms).

    Alternatives exist because regions print the split differently (e.g. whether 大病保险 is counted
    before 个人自付); the check passes if any printed formulation holds.
    """

    rule: str
    alternatives: tuple[tuple[tuple[str, int], ...], ...]
    label: str

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for alt in self.alternatives for p, _ in alt))

    def evaluate(self, values: Values) -> bool | None:
        if any(values.get(p) is None for p in self.fields):
            return None
        return any(_residual(alt, values) == 0 for alt in self.alternatives)

    def vouches(self, values: Values) -> tuple[str, ...]:
        """Fields a pass proves: those of the formulations that hold (an exact identity pins every term given
        the others). A term only a failing formulation has is proved by nothing: 其他支付 read 20.00 for 0.00
        under a stamp, beside a 统筹 + 账户 + 现金 split that holds without it."""
        return tuple(dict.fromkeys(p for alt in self.alternatives if _residual(alt, values) == 0 for p, _ in alt))

    def explain(self, values: Values) -> str:
        alt = self.alternatives[0]
        lhs = " + ".join(f"{p}={values[p]}" for p, s in alt if s > 0)
        rhs = " + ".join(f"{p}={values[p]}" for p, s in alt if s < 0)
        return f"{self.label}: {lhs} ≠ {rhs} (difference {_residual(alt, values)})"


def _residual(terms: tuple[tuple[str, int], ...], values: Values) -> Decimal:
    """Exact: money is printed to the cent, so a value read with a third decimal (6,393.171 for 6,393.17: a
    stroke read as a digit) must fail its sum, not round into it."""
    return sum((s * values[p] for p, s in terms), Decimal(0))


@dataclass(frozen=True)
class ProductCheck:
    """quantity × unit price = amount, to the cent.

    Billing systems do it one of two ways, both accepted: amount = round(quantity × price, 0.01) with
    the price as printed (up to 4 decimals), or the printed price is amount / quantity rounded to the
    decimals it is printed with.
    """

    rule: str
    quantity: str
    unit_price: str
    amount: str

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.quantity, self.unit_price, self.amount)

    def evaluate(self, values: Values) -> bool | None:
        q, p, a = (values.get(k) for k in self.fields)
        if q is None or p is None or a is None:
            return None
        return self._exact(q, p, a) or self._price_rounded(q, p, a)

    @staticmethod
    def _exact(q: Decimal, p: Decimal, a: Decimal) -> bool:
        return (q * p).quantize(CENT, ROUND_HALF_UP) == a

    @staticmethod
    def _price_rounded(q: Decimal, p: Decimal, a: Decimal) -> bool:
        return q != 0 and (a / q).quantize(_step(p), ROUND_HALF_UP) == p

    def vouches(self, values: Values) -> tuple[str, ...]:
        """Fields a pass pins down. Rounding leaves slack: with an exact product a unit price is pinned
        only if one step in its last printed digit moves the amount by a cent (quantity × step ≥ 0.01);
        with a rounded price the amount is pinned only if the price's precision leaves it no cent of
        play (quantity × step < 0.01)."""
        q, p, a = (values.get(k) for k in self.fields)
        if q is None or p is None or a is None:
            return ()
        fine = abs(q) * _step(p) < CENT
        if self._exact(q, p, a):
            return (self.quantity, self.amount) if fine else self.fields
        if self._price_rounded(q, p, a):
            return self.fields if fine else (self.quantity, self.unit_price)
        return ()

    def explain(self, values: Values) -> str:
        q, p, a = (values[k] for k in self.fields)
        return f"quantity × unit price ≠ amount: {q} × {p} = {q * p} ≠ {a}"


def _step(price: Decimal) -> Decimal:
    """One unit in the last printed place of a price, at least 0.01."""
    return Decimal(1).scaleb(min(price.as_tuple().exponent, -2))


@dataclass(frozen=True)
class TaxCheck:
    """A VAT invoice line's tax = amount × rate, to the cent, or one cent off: a line priced with tax
    included gets its tax as the remainder (price with tax − amount), which may differ by a cent."""

    rule: str
    amount: str
    rate: str
    tax: str

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.amount, self.rate, self.tax)

    def evaluate(self, values: Values) -> bool | None:
        a, rate, t = (values.get(k) for k in self.fields)
        if a is None or rate is None or t is None:
            return None
        return abs((a * rate).quantize(CENT, ROUND_HALF_UP) - t) <= CENT

    def vouches(self, values: Values) -> tuple[str, ...]:
        """Only the rate is pinned (rates are far apart); the cent of slack leaves tax and amount to
        the invoice's sums."""
        return (self.rate,) if self.evaluate(values) else ()

    def explain(self, values: Values) -> str:
        a, rate, t = (values[k] for k in self.fields)
        return f"amount × tax rate ≠ tax: {a} × {rate} = {a * rate} ≠ {t}"


Check = LinearCheck | ProductCheck | TaxCheck
_INVOICES = (DocumentType.vat_invoice, DocumentType.other_invoice)


def build_checks(claim: Claim) -> tuple[Check, ...]:
    """Every identity the printed fields of ``claim`` take part in."""
    present = set(_amount_paths(claim))
    checks: list[Check] = []
    if {"total_figures", "total_words"} <= present:
        checks.append(LinearCheck("total.words_match_figures", ((("total_words", 1), ("total_figures", -1)),),
                                  "total in words ≠ total in figures"))
    target = "total_figures"
    if claim.doc_type in _INVOICES and "header.amount_excl_tax" in present:
        target = "header.amount_excl_tax"  # a VAT invoice's lines are amounts before tax
    if claim.items and target in present and all(f"items[{i}].amount" in present for i in range(len(claim.items))):
        terms = tuple((f"items[{i}].amount", 1) for i in range(len(claim.items))) + ((target, -1),)
        checks.append(LinearCheck("total.items_sum", (terms,), f"sum of {len(claim.items)} items ≠ {target}"))
    for i in range(len(claim.items)):
        q, p, a = (f"items[{i}].{k}" for k in ("quantity", "unit_price", "amount"))
        if {q, p, a} <= present:
            checks.append(ProductCheck(f"item.quantity_times_price[{i}]", q, p, a))
    for i in range(len(claim.items)):
        a, rate, t = (f"items[{i}].{k}" for k in ("amount", "tax_rate", "tax"))
        if {a, rate, t} <= present:
            checks.append(TaxCheck(f"item.tax[{i}]", a, rate, t))
    if claim.items and "header.tax" in present and all(f"items[{i}].tax" in present for i in range(len(claim.items))):
        terms = tuple((f"items[{i}].tax", 1) for i in range(len(claim.items))) + (("header.tax", -1),)
        checks.append(LinearCheck("invoice.tax_sum", (terms,), f"sum of {len(claim.items)} line taxes ≠ header.tax"))
    checks += _payment_checks(present)
    if {"header.amount_excl_tax", "header.tax", "total_figures"} <= present:
        checks.append(LinearCheck("invoice.amount_plus_tax",
                                  ((("header.amount_excl_tax", 1), ("header.tax", 1), ("total_figures", -1)),),
                                  "amount + tax ≠ total"))
    return tuple(checks)


def _payment_checks(present: set[str]) -> list[Check]:
    P = {k: f"payments.{k.value}" for k in PaymentKey}
    extras = [P[k] for k in (PaymentKey.critical_illness, PaymentKey.other_fund) if P[k] in present]
    out: list[Check] = []
    for rule, parts, label in (
        ("payment.fund_self_pay_self_expense", (PaymentKey.fund, PaymentKey.self_pay, PaymentKey.self_expense),
         "统筹 + 个人自付 + 个人自费 ≠ total"),
        ("payment.fund_account_cash", (PaymentKey.fund, PaymentKey.account, PaymentKey.cash),
         "统筹 + 个人账户 + 个人现金 ≠ total"),
    ):
        paths = [P[k] for k in parts]
        if "total_figures" in present and all(p in present for p in paths):
            base = tuple((p, 1) for p in paths) + (("total_figures", -1),)
            alts = (tuple((p, 1) for p in extras) + base, base) if extras else (base,)
            out.append(LinearCheck(rule, alts, label))
    deposit = [P[PaymentKey.prepaid], P[PaymentKey.cash]]
    if all(p in present for p in deposit) and (P[PaymentKey.top_up] in present or P[PaymentKey.refund] in present):
        terms = [(P[PaymentKey.prepaid], 1), (P[PaymentKey.cash], -1)]
        if P[PaymentKey.top_up] in present:
            terms.append((P[PaymentKey.top_up], 1))
        if P[PaymentKey.refund] in present:
            terms.append((P[PaymentKey.refund], -1))
        out.append(LinearCheck("payment.deposit_settlement", (tuple(terms),), "预缴 + 补缴 − 退费 ≠ 个人现金"))
    return out


# ---------------------------------------------------------------------------------------------
# Reports


@dataclass(frozen=True)
class CheckResult:
    rule: str
    fields: tuple[str, ...]
    passed: bool | None  # None: a field it needs is present but unreadable
    detail: str


@dataclass(frozen=True)
class CheckReport:
    results: tuple[CheckResult, ...]
    findings: tuple[Finding, ...]
    needs_review: frozenset[str]  # paths of fields a failing or unverifiable check involves
    unverified: frozenset[str]  # numeric fields that no passing, unsuspected check pins down
    covered: frozenset[str] = frozenset()  # fields of passing, unsuspected checks (pinned or not)

    @property
    def all_passed(self) -> bool:
        return all(r.passed for r in self.results)


def run_checks(claim: Claim) -> CheckReport:
    values = field_values(claim)
    results, findings, review = [], [], set()
    checks = build_checks(claim)
    for check in checks:
        passed = check.evaluate(values)
        if passed is None:
            unreadable = [p for p in check.fields if values[p] is None]
            raws = ", ".join(f"{p}={get_field(claim, p).raw!r}" for p in unreadable)
            detail = f"cannot check {check.rule}: unreadable {raws}"
            review.update(unreadable)
            findings.append(Finding(rule=check.rule, severity="warning", detail=detail))
        elif passed:
            detail = "ok"
        else:
            detail = check.explain(values)
            review.update(check.fields)
            findings.append(Finding(rule=check.rule, severity="error", detail=detail))
        results.append(CheckResult(check.rule, check.fields, passed, detail))
    review.update(p for p, v in values.items() if v is None)
    # a passing check that shares a field with a suspect one vouches for nothing: two misreads can
    # cancel inside it (total and 个人自费 both 20 short), so its other fields stay unverified
    clean = [c for c, r in zip(checks, results) if r.passed and not set(r.fields) & review]
    vouched = {p for c in clean for p in c.vouches(values)}
    unverified = frozenset(p for p in values if p not in vouched and p not in review)
    covered = frozenset(p for c in clean for p in c.fields)
    return CheckReport(tuple(results), tuple(findings), frozenset(review), unverified, covered)


def apply_report(claim: Claim, report: CheckReport, *, review_unverified: bool = True) -> Claim:
    """Mark the report's fields ``needs_review`` (never clears a flag) and append its findings.

    With ``review_unverified`` (the default), unverified amounts and quantities are flagged too: the bill
    cannot prove them, so a wrong one must not pass silently. A unit price whose product check passes
    unsuspected is left alone even when not pinned (a 4-decimal price rarely is by a cent-rounded
    product); it stays listed in ``report.unverified``.
    """
    unverified = {p for p in report.unverified if not (p.endswith(".unit_price") and p in report.covered)}
    paths = set(report.needs_review) | (unverified if review_unverified else set())
    for path in sorted(paths):
        f = get_field(claim, path)
        if f is not None and not f.needs_review:
            claim = set_field(claim, path, f.model_copy(update={"needs_review": True}))
    findings = list(report.findings)
    if review_unverified and unverified:
        # a warning, not info: a bill whose amounts are not all proven has not passed its checks
        findings.append(Finding(rule="amounts.unverified", severity="warning",
                                detail="no passing check pins down: " + ", ".join(sorted(unverified))))
    return claim.model_copy(update={"findings": claim.findings + tuple(findings)})
