"""A page's OCR lines → a checked ``Claim``: document type, labelled fields, line items, totals, payments.

Why geometry rather than templates: receipts differ by province, printer and form, but they share a
grammar. Fields are *labels* (票据代码, 住院号, 个人自付 …) followed by a value, either on the label's own
line (``票据代码：123``) or, on pre-printed paper filled by a dot-matrix printer, in the nearest line to
the label's right on its row. Item tables are a header row of column titles (项目名称 | 金额 | 备注,
repeated; or 名称 规格 单位 数量 单价 金额 类别) whose x-ranges say which column each body cell is in.
So the structurer finds labels and header rows, not positions on one known form.

Every field keeps what OCR read (``raw``), its line's confidence and quad; values are normalised
(amounts ``Decimal`` via ``claims.numerals``, dates ISO, full-width folded). Look-alike letters are
folded only in fields whose grammar is all digits (codes, dates), and the field's ``note`` says so.
The claim then goes through ``claims.repair.verify_claim``: the bill's own arithmetic flags or repairs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from core.records import BillField, Claim, DocumentType, FieldKind, Finding, LineItem, Page, PaymentKey

from .layout import (
    Cell,
    cells_of,
    column_of,
    columns_from_headers,
    group_rows,
    median_height,
    nfkc,
    right_neighbour,
    same_row,
    unstack,
    upright_columns,
)
from .numerals import AmountError, NumeralError, parse_amount, parse_financial
from .repair import FIGURE_LOOKALIKES, verify_claim

__all__ = ["LABELS", "REVIEW_BELOW", "classify", "structure_page"]

REVIEW_BELOW = 0.85  # a field read with less OCR confidence than this needs review
OFFSET_GAP = 8.0  # an offset value starts within this many line heights right of its label

# ---------------------------------------------------------------------------------------------
# Labels: (regex over NFKC text without spaces, where the value goes, key, kind)


@dataclass(frozen=True)
class Label:
    pattern: str
    target: str  # "header", "payments", "total_words" or "total_figures"
    key: str
    kind: FieldKind = FieldKind.text
    digits: bool = False  # the value's grammar is digits only: look-alike letters may be folded


_H, _P = "header", "payments"
_A, _D = FieldKind.amount, FieldKind.date
LABELS: tuple[Label, ...] = (
    Label(r"票据代码", _H, "bill_code", digits=True),
    Label(r"票据号码|N[oO0][.:]?", _H, "bill_no", digits=True),
    Label(r"校验码", _H, "check_code", digits=True),
    Label(r"开票日期|打印日期|日期", _H, "issue_date", _D),
    Label(r"就诊日期", _H, "visit_date", _D),
    Label(r"交款人统一社会信用代码", _H, "payer_id"),
    Label(r"交款人", _H, "payer"),
    Label(r"姓名", _H, "patient_name"),
    Label(r"收款单位(?:\((?:盖)?章\))?", _H, "hospital"),
    Label(r"性别", _H, "sex"),
    Label(r"年龄", _H, "age"),
    Label(r"住院号", _H, "inpatient_no"),
    Label(r"门诊号", _H, "outpatient_no"),
    Label(r"病历号", _H, "record_no"),
    Label(r"入院日期", _H, "admitted", _D),
    Label(r"出院日期", _H, "discharged", _D),
    Label(r"医保类型", _H, "insurance_type"),
    Label(r"住院科别|科室|科别", _H, "department"),
    Label(r"床号", _H, "bed"),
    Label(r"住院天数", _H, "stay_days"),
    Label(r"业务流水号", _H, "serial_no", digits=True),
    Label(r"医保编号", _H, "insurance_no", digits=True),
    Label(r"医疗机构类型", _H, "institution_type"),
    Label(r"复核人", _H, "reviewer"),
    Label(r"收款人|制表人", _H, "cashier"),
    Label(r"(?:医保)?统筹基金支付|统筹支付", _P, PaymentKey.fund.value, _A),
    Label(r"个人自付", _P, PaymentKey.self_pay.value, _A),
    Label(r"个人自费|分类自负", _P, PaymentKey.self_expense.value, _A),
    Label(r"个人账户支付", _P, PaymentKey.account.value, _A),
    Label(r"个人现金支付", _P, PaymentKey.cash.value, _A),
    Label(r"大病保险", _P, PaymentKey.critical_illness.value, _A),
    Label(r"其他支付", _P, PaymentKey.other_fund.value, _A),
    Label(r"预缴金额", _P, PaymentKey.prepaid.value, _A),
    Label(r"补缴金额", _P, PaymentKey.top_up.value, _A),
    Label(r"退费金额", _P, PaymentKey.refund.value, _A),
    Label(r"(?:金额)?合计\(?大写\)?", "total_words", "total_words", _A),
    Label(r"\(?小写\)", "total_figures", "total_figures", _A),
)


class LabelSet:
    """Labels matched together: one alternation, so the longest label at a position wins by order."""

    def __init__(self, labels: tuple[Label, ...]):
        self.labels = labels
        self._re = re.compile("|".join(f"(?P<L{i}>{lab.pattern})" for i, lab in enumerate(labels)))

    def find(self, key: str) -> list[tuple[int, int, Label]]:
        """Labels in a cell's text, each at the start or (if long enough to be unambiguous) followed by
        a colon or starting with a bracket; a short label inside a value (日期 in 出院日期) is not one."""
        out = []
        for m in self._re.finditer(key):
            lab = self.labels[int(m.lastgroup[1:])]
            at_start = m.start() == 0
            tagged = m.end() < len(key) and key[m.end()] == _COLON
            bracketed = "(" in m[0] or ")" in m[0]
            if at_start or (len(m[0]) >= 2 and tagged) or bracketed or len(m[0]) >= 4:
                out.append((m.start(), m.end(), lab))
        return out


BILL_LABELS = LabelSet(LABELS)
_COLON = ":"


# ---------------------------------------------------------------------------------------------
# Field values


_STAMP_NOTE = re.compile(r"^[(（]?盖?章[)）]?[:：]?|^[)）][:：]")  # the rest of a split 收款单位(盖章) label
_DATE = re.compile(r"(\d{4})[-/年.](\d{1,2})[-/月.](\d{1,2})日?")


def _fold_digits(text: str, name: str = "") -> tuple[str, str]:
    """Look-alike letters → digits, only in a text that is otherwise digits (and its note).

    A 校验码 is letters and digits, but its alphabet (hex, or A–Z without I and O) has no letter O, so
    an O there can only be a 0."""
    if name == "check_code":
        folded = text.replace("O", "0").replace("o", "0")
    else:
        folded = "".join(FIGURE_LOOKALIKES.get(ch, ch) if ch not in ".," else ch for ch in text)
        folded = folded if folded.isdigit() else text
    if folded != text:
        return folded, f"look-alikes folded to digits (read {text!r})"
    return text, ""


def make_field(name: str, raw: str, kind: FieldKind, cell: Cell, *, digits: bool = False) -> BillField:
    """A field from what OCR read: the value normalised to its kind, ``None`` when it does not parse."""
    text = "".join(nfkc(raw).split())
    value: object = None
    note = ""
    if name == "tax_rate":
        value, note = _tax_rate(text)
    elif kind is FieldKind.amount or kind is FieldKind.number:
        try:
            value = parse_financial(raw) if name == "total_words" else parse_amount(raw)
        except (AmountError, NumeralError):
            value, note = _dotted_thousands(raw) if name != "total_words" else (None, "")
    elif kind is FieldKind.date:
        m = _DATE.fullmatch(text)
        if m is None and (m := _DATE.fullmatch(_refold(text))) is not None:
            note = f"look-alikes folded to digits (read {text!r})"
        try:
            value = date(int(m[1]), int(m[2]), int(m[3])) if m else None
        except ValueError:
            value, note = None, ""
    else:
        value, note = _fold_digits(text, name) if digits else (text, "")
        value = value or None
    review = value is None or cell.confidence < REVIEW_BELOW
    return BillField(name=name, value=value, kind=kind, raw=raw.strip(), confidence=cell.confidence, box=cell.box,
                     needs_review=review, note=note)


_RATE = re.compile(r"(\d{1,2}(?:\.\d)?)%")
_EXEMPT = ("免税", "不征税")


def _tax_rate(text: str) -> tuple[Decimal | None, str]:
    """税率 as a fraction: ``13%`` → 0.13; 免税 (exempt) and 不征税 (outside VAT) → 0."""
    if text in _EXEMPT:
        return Decimal(0), f"{text}: no tax"
    m = _RATE.fullmatch(text)
    return (Decimal(m[1]) / 100, "") if m else (None, "")


_DOTTED = re.compile(r"([¥$]?\d{1,3})((?:\.\d{3})+)\.(\d{2})元?")


def _dotted_thousands(raw: str) -> tuple[object, str]:
    """``1.054.68`` → 1054.68: a thousands comma read as a dot. Safe by grammar: with groups of exactly
    three digits between the dots and two after the last, the last dot is the only decimal point."""
    text = "".join(nfkc(raw).split())
    m = _DOTTED.fullmatch(text)
    if not m:
        return None, ""
    fixed = m[1] + m[2].replace(".", ",") + "." + m[3]
    return parse_amount(fixed), f"thousands separators read as dots (read {raw.strip()!r} as {fixed!r})"


def _refold(text: str) -> str:
    return "".join(FIGURE_LOOKALIKES.get(ch, ch) if ch not in "年月日" else ch for ch in text)


# ---------------------------------------------------------------------------------------------
# Document type


def classify(cells: list[Cell], page_height: float) -> DocumentType:
    """Document type from the title and keywords. E-receipts carry a 校验码 and an 其他信息 block; a
    pre-printed paper receipt has neither; 清单/明细 is an itemised list; 发票 without 票据 an invoice."""
    text = "".join(c.key for c in cells)
    top = "".join(c.key for c in cells if c.cy < 0.3 * page_height) or text
    if not re.search(r"票据|清单|明细|发票|收费|费用|金额", text):
        return DocumentType.not_a_bill
    if "增值税" in top or ("发票" in text and "税额" in text and "票据" not in text):
        return DocumentType.vat_invoice
    if re.search(r"清单|明细", top):
        return DocumentType.itemised_list
    if "发票" in text and "票据" not in text:
        return DocumentType.other_invoice
    if re.search(r"校验码|其他信息|电子", text):
        inpatient = "住院" in top or ("门诊" not in top and re.search(r"住院号|入院日期", text))
        return DocumentType.inpatient_e_receipt if inpatient else DocumentType.outpatient_e_receipt
    if "票据" in text or "收费" in text:
        return DocumentType.paper_receipt
    return DocumentType.not_a_bill


# ---------------------------------------------------------------------------------------------
# Item tables


_HEAD_NAME = re.compile(r"(项目)?名称|项目")
_STOP = re.compile(r"合计|大写|小写|其他信息|总计")
_ITEMISED_COLS = (("name", r"名称"), ("spec", r"规格"), ("unit", r"单位"), ("quantity", r"数量"),
                  ("unit_price", r"单价"), ("amount", r"金额"), ("item_class", r"类别|甲乙|等级"))
_NUMERIC = {"quantity": FieldKind.number, "unit_price": FieldKind.number, "amount": FieldKind.amount,
            "tax_rate": FieldKind.number, "tax": FieldKind.amount}


def _header_row(cells: list[Cell]) -> list[Cell] | None:
    """The first row that holds an item-name header and an amount header."""
    for cell in cells:
        if _HEAD_NAME.fullmatch(cell.key):
            row = sorted((c for c in cells if same_row(c, cell)), key=lambda c: c.x0)
            if any(c.key.startswith("金额") for c in row):
                return row
    return None


def _table(cells: list[Cell], header: list[Cell]) -> tuple[list[list[Cell]], list[tuple[float, float]]]:
    """The body rows and the column x-ranges of the table under ``header``, its columns stood upright
    (``upright_columns``: the rows' cells are returned with those x, their indexes and boxes unchanged)."""
    header, rows = upright_columns(header, _body(cells, header))
    return rows, columns_from_headers(header, [c for r in rows for c in r])


def _body(cells: list[Cell], header: list[Cell]) -> list[list[Cell]]:
    """Rows under the header down to the first totals row."""
    h_bottom = max(c.y1 for c in header)
    below = [c for c in cells if c.cy > h_bottom and c not in header]
    stop = min((c.cy for c in below if _STOP.search(c.key) and not c.key.endswith("小计")), default=float("inf"))
    return group_rows([c for c in below if c.cy < stop - 0.3 * c.height])


def _joined(cells: list[Cell]) -> tuple[str, Cell]:
    """Several OCR lines in one table cell read as one text; the least sure line speaks for them."""
    cells = sorted(cells, key=lambda c: c.x0)
    return "".join(c.text for c in cells), min(cells, key=lambda c: c.confidence)


def _has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in nfkc(text))


def category_grid(cells: list[Cell], header: list[Cell]) -> tuple[list[LineItem], set[int]]:
    """Items of a grid of repeated 项目名称 | 金额 | 备注 groups: each name with the amount cell in the
    next column of its row. Pre-printed names without an amount are not items."""
    rows, cols = _table(cells, header)
    pairs = [j for j, h in enumerate(header[:-1]) if _HEAD_NAME.fullmatch(h.key) and header[j + 1].key.startswith("金额")]
    items: list[LineItem] = []
    used = {c.index for c in header}
    for row in rows:
        by_col: dict[int, list[Cell]] = {}
        for c in row:
            by_col.setdefault(column_of(c, cols), []).append(c)
        for j in pairs:
            names, amounts = by_col.get(j), [c for c in by_col.get(j + 1, []) if _has_digit(c.text)]
            if not names or not amounts:
                continue
            name_raw, name_cell = _joined(names)
            amount_raw, amount_cell = _joined(amounts)
            items.append(LineItem(line_no=len(items), name=make_field("name", name_raw, FieldKind.text, name_cell),
                                  amount=make_field("amount", amount_raw, FieldKind.amount, amount_cell)))
            used |= {c.index for c in names + amounts}
    return items, used


def itemised_table(cells: list[Cell], header: list[Cell], roles: tuple[tuple[str, str], ...] = _ITEMISED_COLS
                   ) -> tuple[list[LineItem], set[int]]:
    """Rows of a 费用清单 (or another grid whose ``roles`` name its columns): columns named by the
    header; subtotal (小计) rows are skipped."""
    rows, cols = _table(cells, header)
    role: dict[int, str] = {}
    for j, h in enumerate(header):
        for name, pat in roles:
            if re.search(pat, h.key) and name not in role.values():
                role[j] = name
                break
    items: list[LineItem] = []
    used = {c.index for c in header}
    for row in rows:
        by_role: dict[str, list[Cell]] = {}
        for c in row:
            r = role.get(column_of(c, cols))
            if r:
                by_role.setdefault(r, []).append(c)
        if "name" not in by_role or "amount" not in by_role:
            continue
        fields = {}
        for r, group in by_role.items():
            raw, cell = _joined(group)
            fields[r] = make_field(r, raw, _NUMERIC.get(r, FieldKind.text), cell)
        if str(fields["name"].value or "").endswith("小计"):
            continue
        if fields.get("item_class") is not None and isinstance(fields["item_class"].value, str):
            fields["item_class"] = fields["item_class"].model_copy(
                update={"value": fields["item_class"].value.removesuffix("类") or None})
        items.append(LineItem(line_no=len(items), **fields))
        used |= {c.index for c in row}
    return items, used


# ---------------------------------------------------------------------------------------------
# Labelled fields


def labelled_fields(cells: list[Cell], skip: set[int], line_height: float,
                    labels: LabelSet = BILL_LABELS) -> dict[str, dict[str, BillField]]:
    """Every label on the page with its value: the rest of its segment, else the nearest cell to its
    right on its row (an offset, pre-printed form) unless that cell is itself a label."""
    out: dict[str, dict[str, BillField]] = {"header": {}, "payments": {}, "totals": {}}
    free = [c for c in cells if c.index not in skip]
    found = {c.index: labels.find(c.key) for c in free}
    taken: set[int] = set()
    for cell in free:
        if not found[cell.index] or cell.index in taken:
            continue
        key, where = _squeeze(cell.text)
        in_cell = labels.find(key)
        for n, (start, end, lab) in enumerate(in_cell):
            stop = in_cell[n + 1][0] if n + 1 < len(in_cell) else len(key)
            raw = _original(cell.text, where, end, stop).strip().lstrip(":：").strip()
            if lab.key == "hospital":
                raw = _STAMP_NOTE.sub("", raw).strip()
            source = cell
            if not raw and n + 1 == len(in_cell):
                nb = right_neighbour(cell, free, OFFSET_GAP * max(cell.height, line_height))
                if nb is not None and nb.index not in taken and not (found[nb.index] and found[nb.index][0][0] == 0):
                    raw, source = nb.text.strip(), nb
                    if lab.key == "hospital":
                        raw = _STAMP_NOTE.sub("", raw).strip()
                    taken.add(nb.index)
            if not raw:
                continue
            if lab.kind is FieldKind.text and n + 1 == len(in_cell):
                raw, source = _continued(raw, source, free, found, taken)
            if lab.target in ("header", "payments"):
                slot = out[lab.target]
            else:
                slot = out["totals"]
            if lab.key not in slot:
                slot[lab.key] = make_field(lab.key, raw, lab.kind, source, digits=lab.digits)
    return out


def _continued(raw: str, cell: Cell, free: list[Cell], found: dict, taken: set[int]) -> tuple[str, Cell]:
    """A text value the OCR split in two (a stamp over a hospital's name): the next cell on the row,
    if it starts within one line height and is not a label, continues it. The less sure cell speaks."""
    nb = right_neighbour(cell, free, cell.height)
    if nb is None or nb.index in taken or found.get(nb.index):
        return raw, cell
    taken.add(nb.index)
    return raw + nb.text.strip(), min(cell, nb, key=lambda c: c.confidence)


def _squeeze(text: str) -> tuple[str, list[int]]:
    """``Cell.key`` of ``text`` with each kept character's index in ``text`` (to cut raw text back out)."""
    chars, where = [], []
    for i, ch in enumerate(text):
        for c in nfkc(ch) if not ch.isspace() else "":
            if not c.isspace():
                chars.append(c)
                where.append(i)
    return "".join(chars), where


def _original(text: str, where: list[int], start: int, stop: int) -> str:
    """The original characters behind key positions ``start:stop``."""
    if start >= len(where):
        return ""
    end = where[stop] if stop < len(where) else len(text)
    return text[where[start]:end]


_HOSPITAL = re.compile(r"^(.*(?:医院|卫生院|保健院|诊所))|^(.*中心)")


def hospital_from_title(cells: list[Cell], page_height: float) -> BillField | None:
    """Itemised lists print the hospital above (or before) the title rather than as 收款单位."""
    for c in cells:
        if c.cy > 0.25 * page_height:
            break
        m = _HOSPITAL.match(c.key)
        if m:
            return make_field("hospital", m[1] or m[2], FieldKind.text, c)
    return None


# ---------------------------------------------------------------------------------------------


def structure_page(page: Page, *, verify: bool = True) -> Claim:
    """Structure one OCR'd page into a ``Claim`` and (by default) run the checks and repairs on it."""
    cells = cells_of(page.lines)
    doc_type = classify(cells, page.height)
    base = {"doc_id": page.doc_id, "page": page.index, "provenance": page.provenance}
    if doc_type is DocumentType.vat_invoice:
        from .invoice import structure_vat_invoice  # imported here: it builds on this module

        claim = structure_vat_invoice(cells, **base)
        return verify_claim(claim) if verify else claim
    if doc_type is DocumentType.not_a_bill:
        detail = "no text" if not cells else "no bill title or keywords (票据, 清单, 发票, 金额 …) on the page"
        return Claim(doc_type=doc_type, findings=(Finding(rule="structure.not_a_bill", severity="error",
                                                          detail=detail),), **base)
    height = median_height(cells)
    cells = unstack(cells, height)
    header = _header_row(cells)
    items: list[LineItem] = []
    used: set[int] = set()
    if header is not None:
        itemised = any(re.search(r"单价|数量|规格", h.key) for h in header)
        items, used = (itemised_table if itemised else category_grid)(cells, header)
    found = labelled_fields(cells, used, height)
    head = found["header"]
    if "hospital" not in head and (h := hospital_from_title(cells, page.height)) is not None:
        head["hospital"] = h
    claim = Claim(doc_type=doc_type, header=head, items=tuple(items),
                  total_figures=found["totals"].get("total_figures"), total_words=found["totals"].get("total_words"),
                  payments=found["payments"], findings=tuple(missing(doc_type, items, found)), **base)
    return verify_claim(claim) if verify else claim


def missing(doc_type: DocumentType, items: list[LineItem], found: dict) -> list[Finding]:
    """What a bill of this type should print but was not found: said, so a reviewer looks."""
    out = []
    if not items:
        out.append(Finding(rule="structure.no_items", severity="warning", detail="no item table found"))
    if "total_figures" not in found["totals"]:
        out.append(Finding(rule="structure.no_total", severity="warning", detail="no total in figures found"))
    # An amount whose label was found but whose value could not be read takes no part in any check: say so,
    # or a bill missing one side of an identity would "pass" with an amount nobody verified.
    unread = [f.name for group in ("totals", "payments") for f in found[group].values()
              if f.kind is FieldKind.amount and f.value is None]
    unread += [f"item {i.line_no}" for i in items if i.amount.value is None]
    if unread:
        out.append(Finding(rule="structure.unreadable_amount", severity="warning",
                           detail="printed but unreadable: " + ", ".join(unread)))
    return out
