"""A bill against the HIS charges of its encounter, and against the other bills of the same stay.

Rule ids (severity):

- ``recon.billed_not_charged`` (error): a bill line no charge of the encounter accounts for;
- ``recon.charged_not_billed`` (warning): charges of an item on none of the stay's itemised bills;
- ``recon.quantity_mismatch`` / ``recon.unit_price_mismatch`` / ``recon.amount_mismatch`` (error): the line and
  the charges of its item differ beyond the tolerance, reported once per line in that order of precedence (a
  different quantity also changes the amount; a different price too);
- ``recon.category_total`` (error): an e-receipt's category line (西药费 …) against the sum of the charges the
  class dictionaries put in that category;
- ``recon.duplicate.same_file`` (error): another claim of the stay from the same file (content hash) or the
  same bill (票据代码 + 票据号码);
- ``recon.duplicate.near_bill`` (error): another claim of the stay whose lines are nearly all this one's;
- ``recon.duplicate.items_in_stay`` (error): a line also billed on another claim of the stay, together more
  than was charged.

Bill lines are paired with charges by code (a line's catalogue match), then by normalised name, then by the
best rapidfuzz ratio at or above the tolerance's ``name_threshold``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from rapidfuzz import fuzz, process

from claims.names import normalise_name
from core.records import Claim, DocumentType, Finding, HeaderKey, LineItem

from .model import Charge, Tolerance
from .rulebook import RECEIPT_CATEGORIES, RuleBook, canonical_category

ZERO = Decimal(0)
_CATEGORY_KEYS = frozenset(RECEIPT_CATEGORIES)


def num(f) -> Decimal | None:
    if f is None or f.value is None:
        return None
    try:
        return f.value if isinstance(f.value, Decimal) else Decimal(str(f.value))
    except ArithmeticError:
        return None


def line_name(item: LineItem) -> str:
    return str(item.name.value or item.name.raw or "").strip()


LEFTOVER_FLOOR = 60.0  # one character off in a 3-character name is 67
_RECEIPTS = frozenset({DocumentType.inpatient_e_receipt, DocumentType.outpatient_e_receipt, DocumentType.paper_receipt})


def is_category_line(item: LineItem, claim: Claim) -> bool:
    """A receipt's category line (西药费, or any 费用项目 the class dictionaries name: 其他服务费 …); an itemised
    list's 床位费 is an item like any other."""
    if claim.doc_type not in _RECEIPTS:
        return False
    name = canonical_category(line_name(item)) or ""
    return name in _CATEGORY_KEYS or name.endswith(("费", "费用"))


def line_fields(item: LineItem) -> dict:
    """A bill line as evidence: the printed fields."""
    out = {"line_no": item.line_no, "name": line_name(item)}
    for k in ("amount", "quantity", "unit_price", "unit", "spec"):
        f = getattr(item, k)
        if f is not None and f.value is not None:
            out[k] = str(f.value)
    if item.match is not None:
        out["code"] = item.match.code
    return out


def _yuan(d: Decimal) -> str:
    return f"{d.quantize(Decimal('0.01'))}元"


@dataclass
class ChargeGroup:
    """The charges of one item (one code, or one normalised name) in an encounter."""

    key: str
    name: str
    charges: list[Charge] = field(default_factory=list)

    @property
    def quantity(self) -> Decimal:
        return sum((c.quantity for c in self.charges), ZERO)

    @property
    def amount(self) -> Decimal:
        return sum((c.amount for c in self.charges), ZERO)

    @property
    def unit_prices(self) -> set[Decimal]:
        return {c.unit_price if c.unit_price is not None else (c.amount / c.quantity if c.quantity else c.amount)
                for c in self.charges}

    @property
    def code(self) -> str:
        return next((c.code for c in self.charges if c.code), "")


class ChargeIndex:
    """An encounter's charges grouped by item, and the pairing of bill lines with those groups."""

    def __init__(self, charges: Sequence[Charge], threshold: float):
        self.threshold = threshold
        self.groups: dict[str, ChargeGroup] = {}
        self._by_code: dict[str, str] = {}
        self._by_name: dict[str, str] = {}
        for c in charges:
            name_key = normalise_name(c.name) if c.name else ""
            key = (self._by_code.get(c.code) if c.code else None) or self._by_name.get(name_key) or (
                f"code:{c.code}" if c.code else f"name:{name_key}")
            g = self.groups.setdefault(key, ChargeGroup(key, c.name or c.code))
            g.charges.append(c)
            if c.code:
                self._by_code.setdefault(c.code, key)
            if name_key:
                self._by_name.setdefault(name_key, key)
        self._names = list(self._by_name)
        self.assigned: dict[int, str] = {}  # line_no -> group key, once charge_findings has paired a claim
        self.how: dict[int, tuple[str, float]] = {}  # line_no -> (pairing method, score)

    def pair(self, item: LineItem) -> tuple[str | None, str, float]:
        """(group key, method, score) for a bill line; None when no charge group is close enough."""
        if item.match is not None and item.match.code in self._by_code:
            return self._by_code[item.match.code], "code", 100.0
        key = normalise_name(line_name(item))
        if not key:
            return None, "", 0.0
        if key in self._by_name:
            return self._by_name[key], "name", 100.0
        if self._names:
            best = process.extractOne(key, self._names, scorer=fuzz.ratio, score_cutoff=self.threshold)
            if best is not None:
                return self._by_name[best[0]], "fuzzy", float(best[1])
        return None, "", 0.0

    def corroborated(self, item: LineItem, free: set[str], tol: Tolerance, floor: float = 50.0
                     ) -> tuple[str | None, float]:
        """A line whose name pairs with no charge (an OCR misread: 奥美拉挫 for 奥美拉唑) paired with a charge group
        no other line took, when the names are still alike (ratio ≥ ``floor``) and the figures agree: the same
        amount, or the same quantity and unit price. The closest such group, or None."""
        key = normalise_name(line_name(item))
        amount, qty, price = num(item.amount), num(item.quantity), num(item.unit_price)
        best: tuple[str | None, float] = (None, 0.0)
        for gk in free:
            g = self.groups[gk]
            score = fuzz.ratio(key, normalise_name(g.name)) if key else 0.0
            if score < floor:
                continue
            same_amount = amount is not None and not tol.money_differs(amount, g.amount)
            same_figures = (qty is not None and price is not None and not tol.quantity_differs(qty, g.quantity)
                            and any(not tol.money_differs(price, p) for p in g.unit_prices))
            if (same_amount or same_figures) and score > best[1]:
                best = (gk, score)
        return best


def _bill_id(claim: Claim) -> tuple[str, str] | None:
    code, no = (claim.header.get(k.value) for k in (HeaderKey.bill_code, HeaderKey.bill_no))
    if code is None or no is None or not code.value or not no.value:
        return None
    return str(code.value), str(no.value)


def _shared_lines(a: Claim, b: Claim, floor: float = 50.0) -> int:
    """Lines of ``a`` that ``b`` repeats: the same amount, and a name alike (ratio ≥ ``floor``: two copies of one
    bill are read with different misreads, one character each in a 4-character name is 50) or the same printed
    quantity and unit price too; each line of ``b`` used once, the closest name first."""
    def figures(i):
        return normalise_name(line_name(i)), num(i.amount), num(i.quantity), num(i.unit_price)

    left = [figures(i) for i in b.items]
    shared = 0
    for i in a.items:
        key, amount, qty, price = figures(i)
        best, best_score = None, -1.0
        for j, (k2, a2, q2, p2) in enumerate(left):
            if a2 != amount:
                continue
            score = 100.0 if k2 == key else fuzz.ratio(key, k2)
            same_figures = qty is not None and price is not None and (qty, price) == (q2, p2)
            if (score >= floor or same_figures) and score > best_score:
                best, best_score = j, score
        if best is not None:
            left.pop(best)
            shared += 1
    return shared


def duplicate_findings(claim_id: str, claim: Claim, others: Sequence[tuple[str, Claim]],
                       tol: Tolerance) -> tuple[list[Finding], set[str]]:
    """Same file / same bill / near-duplicate bill among the stay's other claims. Returns the findings and
    the ids of the claims they name (left out of the item-level accounting: their lines are one finding)."""
    findings, named = [], set()
    mine = _bill_id(claim)
    for oid, other in others:
        if oid == claim_id:
            continue
        ev = {"claim_id": claim_id, "other_claim_id": oid, "doc_id": claim.doc_id, "other_doc_id": other.doc_id}
        if other.doc_id == claim.doc_id and other.page == claim.page or (mine and mine == _bill_id(other)):
            how = "同一文件（内容哈希相同）" if other.doc_id == claim.doc_id else f"同一票据（票据代码{mine[0]}、号码{mine[1]}）"
            findings.append(Finding(
                rule="recon.duplicate.same_file", severity="error",
                detail=f"claim {claim_id} repeats claim {oid} ({'content hash' if other.doc_id == claim.doc_id else 'bill number'})",
                message=f"本单据与理赔单 {oid} 为{how}重复提交，请退回重复的一份。",
                evidence={**ev, "bill_id": list(mine) if mine else None, "claim_fields": {"doc_id": claim.doc_id}}))
            named.add(oid)
            continue
        if other.doc_type != claim.doc_type or len(claim.items) < 2:
            continue
        shared = _shared_lines(claim, other)
        share = shared / max(len(claim.items), len(other.items), 1)
        if share >= tol.near_duplicate:
            findings.append(Finding(
                rule="recon.duplicate.near_bill", severity="error",
                detail=f"claim {claim_id}: {shared} of its lines repeat claim {oid} ({share:.0%})",
                message=f"本单据与理赔单 {oid} 的明细 {share:.0%} 相同（{shared} 行），疑似同一账单重复报销，请核对后只保留一份。",
                evidence={**ev, "shared_lines": shared, "share": round(share, 3)}))
            named.add(oid)
    return findings, named


def charge_findings(claim_id: str, claim: Claim, charges: Sequence[Charge], rulebook: RuleBook | None,
                    tol: Tolerance, others: Sequence[tuple[str, Claim]] = (), skip: set[str] = frozenset(),
                    index: ChargeIndex | None = None) -> list[Finding]:
    """Item-level and category-level comparison of the bill with the encounter's charges. ``others``: the
    stay's other claims (``skip``: those already named as duplicates of this one). The pairing of this claim's
    lines with charge groups is left in ``index.assigned`` (line_no → group key) for the restriction rules."""
    if not charges:
        return []
    index = index or ChargeIndex(charges, tol.name_threshold)
    findings: list[Finding] = []
    items = [i for i in claim.items if not is_category_line(i, claim)]
    categories = [i for i in claim.items if is_category_line(i, claim)]
    # what the stay's other itemised claims bill per charge group
    other_billed: dict[str, list[tuple[str, LineItem]]] = defaultdict(list)
    for oid, other in others:
        if oid == claim_id or oid in skip:
            continue
        for it in other.items:
            if not is_category_line(it, other):
                # another bill's misread line may be a charge this bill also has: any group, figures agreeing
                key = index.pair(it)[0] or index.corroborated(it, set(index.groups), tol)[0]
                if key:
                    other_billed[key].append((oid, it))
    here: dict[str, list[LineItem]] = defaultdict(list)
    how: dict[int, tuple[str, float]] = {}
    unpaired: list[LineItem] = []
    for it in items:
        key, method, score = index.pair(it)
        if key is None:
            unpaired.append(it)
            continue
        here[key].append(it)
        how[it.line_no] = (method, score)
    still: list[LineItem] = []
    for it in unpaired:
        free = set(index.groups) - set(here)  # billed on another bill of the stay too: _compare says so
        key, score = index.corroborated(it, free, tol) if free else (None, 0.0)
        if key is None:
            still.append(it)
            continue
        here[key].append(it)
        how[it.line_no] = ("name+figures", score)
    # what is left on both sides: a misread name whose figures differ too is still the same item when its
    # name is alike (ratio >= LEFTOVER_FLOOR) to a charge no bill of the stay accounts for; closest pairs first
    free = set(index.groups) - set(here) - set(other_billed)
    pairs = sorted(((fuzz.ratio(normalise_name(line_name(it)), normalise_name(index.groups[g].name)), it.line_no, g, it)
                    for it in still for g in free), key=lambda x: (-x[0], x[1], x[2]))
    for score, _, g, it in pairs:
        if score < LEFTOVER_FLOOR:
            break
        if g in here or it.line_no in how:
            continue
        here[g].append(it)
        how[it.line_no] = ("leftover name", score)
    for it in still:
        if it.line_no in how:
            continue
        amt = num(it.amount) or ZERO
        findings.append(Finding(
            rule="recon.billed_not_charged", severity="error",
            detail=f"line {it.line_no} {line_name(it)!r} ({amt}): no HIS charge of the encounter",
            message=f"第{it.line_no}行「{line_name(it)}」（{_yuan(amt)}）在医院收费记录中找不到对应收费，请核实是否实际发生。",
            evidence={"claim_id": claim_id, "claim_fields": line_fields(it), "charges": [],
                      "encounter_id": charges[0].encounter_id}))
    index.how = how
    index.assigned = {it.line_no: key for key, lines in here.items() for it in lines}
    for key, lines in here.items():
        g = index.groups[key]
        findings += _compare(claim_id, key, lines, g, other_billed.get(key, []), tol, how)
    if items:
        billed_keys = set(here) | set(other_billed)
        for key, g in index.groups.items():
            if key not in billed_keys and g.amount > tol.amount:
                findings.append(Finding(
                    rule="recon.charged_not_billed", severity="warning",
                    detail=f"charges of {g.name!r} ({g.amount}) on none of the stay's bills",
                    message=f"医院收费记录中的「{g.name}」（{_yuan(g.amount)}）未出现在本次住院的任何账单上，请确认是否漏报或退费。",
                    evidence={"claim_id": claim_id, "charges": [c.evidence() for c in g.charges]}))
    if categories:
        findings += _category_findings(claim_id, categories, charges, rulebook, tol)
    return findings


def _compare(claim_id: str, key: str, lines: list[LineItem], g: ChargeGroup,
             others: list[tuple[str, LineItem]], tol: Tolerance, how: dict | None = None) -> list[Finding]:
    qty = sum((num(i.quantity) if num(i.quantity) is not None else Decimal(1) for i in lines), ZERO)
    amount = sum((num(i.amount) or ZERO for i in lines), ZERO)
    printed_qty = all(i.quantity is not None for i in lines)
    first = lines[0]
    ev = {"claim_id": claim_id, "claim_fields": [line_fields(i) for i in lines],
          "charges": [c.evidence() for c in g.charges],
          "charged": {"quantity": str(g.quantity), "amount": str(g.amount)},
          "paired_by": [{"line_no": i.line_no, "method": (how or {}).get(i.line_no, ("", 0.0))[0],
                         "score": round((how or {}).get(i.line_no, ("", 0.0))[1], 1)} for i in lines]}
    name = line_name(first)
    where = f"第{first.line_no}行「{name}」"
    if others:
        o_qty = sum((num(i.quantity) if num(i.quantity) is not None else Decimal(1) for _, i in others), ZERO)
        o_amt = sum((num(i.amount) or ZERO for _, i in others), ZERO)
        over_amount = tol.money_differs(amount + o_amt, g.amount) and amount + o_amt > g.amount
        over_qty = printed_qty and tol.quantity_differs(qty + o_qty, g.quantity) and qty + o_qty > g.quantity
        if over_amount or over_qty:
            ids = sorted({oid for oid, _ in others})
            return [Finding(
                rule="recon.duplicate.items_in_stay", severity="error",
                detail=f"{name!r} billed here ({amount}) and on {', '.join(ids)} ({o_amt}); charged {g.amount}",
                message=f"{where}同时出现在本次住院的理赔单 {'、'.join(ids)} 上，合计{_yuan(amount + o_amt)}，"
                        f"超过医院实际收费{_yuan(g.amount)}，疑似重复报销，请核对。",
                evidence={**ev, "other_claims": ids,
                          "other_lines": [{"claim_id": oid, **line_fields(i)} for oid, i in others]})]
        # the stay's bills together against the charges: a split over several bills is no difference
        qty, amount = qty + o_qty, amount + o_amt
        ev["other_lines"] = [{"claim_id": oid, **line_fields(i)} for oid, i in others]
    if printed_qty and tol.quantity_differs(qty, g.quantity):
        return [Finding(rule="recon.quantity_mismatch", severity="error",
                        detail=f"{name!r}: billed quantity {qty}, charged {g.quantity}",
                        message=f"{where}账单数量{qty}与医院收费数量{g.quantity}不符（金额{_yuan(amount)}对{_yuan(g.amount)}），请核对数量。",
                        evidence=ev)]
    prices = {num(i.unit_price) for i in lines if num(i.unit_price) is not None}
    charged_prices = set(g.unit_prices)
    if g.quantity:  # a price changed during the stay: the bill may print the average
        charged_prices.add((g.amount / g.quantity).quantize(Decimal("0.0001")))
    bad = [p for p in prices if all(tol.money_differs(p, c) for c in charged_prices)]
    if bad:
        return [Finding(rule="recon.unit_price_mismatch", severity="error",
                        detail=f"{name!r}: billed unit price {bad[0]}, charged {sorted(charged_prices)}",
                        message=f"{where}账单单价{bad[0]}元与医院收费单价{'、'.join(str(p) for p in sorted(charged_prices))}元不符，请核对单价。",
                        evidence=ev)]
    if tol.money_differs(amount, g.amount):
        return [Finding(rule="recon.amount_mismatch", severity="error",
                        detail=f"{name!r}: billed {amount}, charged {g.amount}",
                        message=f"{where}账单金额{_yuan(amount)}与医院收费金额{_yuan(g.amount)}相差{_yuan(amount - g.amount)}，请核对金额。",
                        evidence=ev)]
    return []


REMAINDERS = frozenset({"其他住院费用", "其他门诊费用", "其他费用", "其他"})


def _category_findings(claim_id: str, categories: list[LineItem], charges: Sequence[Charge],
                       rulebook: RuleBook | None, tol: Tolerance) -> list[Finding]:
    """Each printed category against the charges the class dictionaries (or the HIS) put in it; the receipt's
    remainder line (其他住院费用 …) against the charges of every category it does not print (and those no
    dictionary maps); with no remainder line, such charges are a finding of their own."""
    by_cat: dict[str, list[Charge]] = defaultdict(list)
    unmapped: list[Charge] = []
    for c in charges:
        cat = canonical_category(c.category) or (rulebook.category_of(c.code) if rulebook else None)
        (by_cat[cat] if cat else unmapped).append(c)
    printed = {canonical_category(line_name(it)) for it in categories} - REMAINDERS
    leftover = unmapped + [c for cat, cs in by_cat.items() if cat not in printed for c in cs]
    out = []
    remainder_lines = [it for it in categories if canonical_category(line_name(it)) in REMAINDERS]
    for it in categories:
        cat = canonical_category(line_name(it))
        if cat in REMAINDERS:
            continue
        billed = num(it.amount) or ZERO
        cs = by_cat.get(cat, [])
        charged = sum((c.amount for c in cs), ZERO)
        if tol.money_differs(billed, charged):
            out.append(Finding(
                rule="recon.category_total", severity="error",
                detail=f"line {it.line_no} {cat}: billed {billed}, charges in that category sum to {charged}",
                message=f"票据「{cat}」{_yuan(billed)}与医院收费明细中{cat}合计{_yuan(charged)}不符（差{_yuan(billed - charged)}），请核对该类费用。",
                evidence={"claim_id": claim_id, "claim_fields": line_fields(it), "category": cat,
                          "charged_total": str(charged), "charges": [c.evidence() for c in cs],
                          "unmapped_charges": [c.evidence() for c in unmapped]}))
    rest = sum((c.amount for c in leftover), ZERO)
    if remainder_lines:
        billed = sum((num(it.amount) or ZERO for it in remainder_lines), ZERO)
        if tol.money_differs(billed, rest):
            it = remainder_lines[0]
            out.append(Finding(
                rule="recon.category_total", severity="error",
                detail=f"remainder {line_name(it)}: billed {billed}, charges of unprinted categories sum to {rest}",
                message=f"票据「{line_name(it)}」{_yuan(billed)}与医院收费中未单列类别的合计{_yuan(rest)}不符，请核对。",
                evidence={"claim_id": claim_id, "claim_fields": [line_fields(i) for i in remainder_lines],
                          "category": "其他", "charged_total": str(rest),
                          "charges": [c.evidence() for c in leftover]}))
    elif tol.money_differs(ZERO, rest):
        cats = sorted({canonical_category(c.category) or (rulebook.category_of(c.code) if rulebook else None)
                       or "未归类" for c in leftover})
        out.append(Finding(
            rule="recon.category_total", severity="error",
            detail=f"charges of {', '.join(cats)} ({rest}) in no category the receipt prints",
            message=f"医院收费中{'、'.join(cats)}共{_yuan(rest)}未出现在票据的任何类别中，请核对票据是否漏列或收费是否有误。",
            evidence={"claim_id": claim_id, "categories": cats, "charged_total": str(rest),
                      "charges": [c.evidence() for c in leftover]}))
    return out


def claim_kind(claim: Claim) -> str:
    """'receipt' when every line is a category line (an e-receipt's item grid), else 'itemised'."""
    if claim.items and all(is_category_line(i, claim) for i in claim.items):
        return "receipt"
    return "itemised" if claim.items else "empty"


def setting_of(claim: Claim) -> str | None:
    return {DocumentType.inpatient_e_receipt: "inpatient", DocumentType.outpatient_e_receipt: "outpatient"}.get(
        claim.doc_type)
