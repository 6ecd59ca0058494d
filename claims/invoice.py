"""A VAT invoice's cells (增值税普通发票 / 增值税电子普通发票) → ``Claim``: the medical bills' geometry with
the invoice's own vocabulary.

What needs code of its own: 名称 and 纳税人识别号 are printed twice, for the buyer (above the item grid)
and for the seller (below it), so the page is cut into the block above the grid's header row and the
block below its 合计 row, and each is read with its own labels. The grid's columns are found by role
from its header (货物或应税劳务、服务名称 | 规格型号 | 单位 | 数量 | 单价 | 金额 | 税率 | 税额); an exempt line
prints 免税 and *** for its tax. The 合计 row gives the amount before tax and the tax (``header``
``amount_excl_tax`` and ``tax``), 价税合计 the total in words and figures, so the checks can prove
items → 合计 → 价税合计 and each line's tax.
"""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal

from core.records import BillField, Claim, DocumentType, FieldKind, LineItem

from .layout import Cell, column_of, group_rows, join_spaced, median_height, same_row, unstack
from .structure import Label, LabelSet, _table, itemised_table, labelled_fields, make_field, missing

__all__ = ["INVOICE_LABELS", "structure_vat_invoice"]

_H, _A, _D = "header", FieldKind.amount, FieldKind.date


def _party(who: str) -> tuple[Label, ...]:
    return (Label(r"名称", _H, who), Label(r"纳税人识别号", _H, f"{who}_tax_id"),
            Label(r"地址[、,，]?电话", _H, f"{who}_address"), Label(r"开户行及账号", _H, f"{who}_bank"))


_TOP = LabelSet((
    Label(r"发票代码", _H, "bill_code", digits=True),
    Label(r"发票号码", _H, "bill_no", digits=True),
    Label(r"开票日期", _H, "issue_date", _D),
    Label(r"校验码", _H, "check_code", digits=True),
    Label(r"机器编号", _H, "machine_no", digits=True),
    *_party("buyer"),
))
_BOTTOM = LabelSet((
    Label(r"价税合计\(?大写\)?", "total_words", "total_words", _A),
    Label(r"\(?小写\)", "total_figures", "total_figures", _A),
    *_party("seller"),
    Label(r"收款人", _H, "cashier"),
    Label(r"复核(?:人)?", _H, "reviewer"),
    Label(r"开票人", _H, "issuer"),
))
INVOICE_LABELS = (_TOP, _BOTTOM)
_COLUMNS = (("name", r"名称"), ("spec", r"规格"), ("unit", r"单位"), ("quantity", r"数量"), ("unit_price", r"单价"),
            ("amount", r"金额"), ("tax_rate", r"税率"), ("tax", r"税额"))
_CIPHER = re.compile(r"(?=.*[+\-*/<>])[0-9+\-*/<>.]{12,}")  # 密码区 lines: digits and operators, never a value


_TITLE_CHARS = frozenset("货物或应税劳务、服务名称项目规格型号单位数量价金额率征收/")


def _grid_header(cells: list[Cell]) -> list[Cell] | None:
    """The row holding the 税率 (or 税额) column title, an amount title and a name title. A cell on it written
    mostly in other characters is no title (a reimbursement stamp's 商业保险 pressed over the titles)."""
    for cell in cells:
        if cell.key in ("税率", "税额", "税率/征收率"):
            row = sorted((c for c in cells if same_row(c, cell)
                          and 2 * sum(ch in _TITLE_CHARS for ch in c.key) >= len(c.key)), key=lambda c: c.x0)
            if any(c.key.startswith("金额") for c in row) and any(re.search("名称", c.key) for c in row):
                return row
    return None


def _exempt_tax(item: LineItem) -> LineItem:
    """An exempt line prints *** for its tax: where its rate says exempt, a tax without a digit (the
    stars, however OCR read them) is zero."""
    tax, rate = item.tax, item.tax_rate
    if tax is None or tax.value is not None or rate is None or rate.value != 0 or any(ch.isdigit() for ch in tax.raw):
        return item
    return item.model_copy(update={"tax": tax.model_copy(update={
        "value": Decimal(0), "kind": FieldKind.amount, "needs_review": rate.needs_review,
        "note": f"*** under rate {rate.raw!r}: no tax"})})


def _totals_row(cells: list[Cell], header: list[Cell], used: set[int], line_height: float) -> dict[str, BillField]:
    """The 合计 row under the grid: the amount before tax and the tax. In the 金额 and 税额 columns it
    is the first figure below the items (the 价税合计 figures come later); by column order rather than
    by row, because a photo's perspective can tilt the bottom of a grid more than the deskew undoes."""
    _, cols = _table(cells, header)
    h_bottom = max(c.y1 for c in header)
    below = [c for c in cells if c.cy > h_bottom and c.index not in used and c not in header]
    label = next((c for c in sorted(below, key=lambda c: c.cy) if c.key == "合计"), None)
    if label is None:
        return {}
    role = {}
    for h in header:
        role.setdefault(column_of(h, cols), "amount" if h.key.startswith("金额") else "tax" if h.key == "税额" else "")
    out: dict[str, BillField] = {}
    figures = [c for c in below if c.cy > label.y0 - line_height and any(ch.isdigit() for ch in c.key)]
    for c in sorted(figures, key=lambda c: c.cy):
        key = {"amount": "amount_excl_tax", "tax": "tax"}.get(role.get(column_of(c, cols), ""))
        if key and key not in out:
            out[key] = make_field(key, c.text, FieldKind.amount, c)
    return out


_NAME = re.compile(r"[*＊·•.]?([^*＊·•.\d]{2,10})[*＊·•]([^*＊].*)")


def _category_prefix(item: LineItem) -> LineItem:
    """A VAT line's name is *税收分类简称*品名 (required since 2018); OCR often drops or misreads the stars
    around the category, so a name of that shape with other stars is given its own back."""
    name = item.name
    m = _NAME.fullmatch(str(name.value or ""))
    if m is None or name.value == f"*{m[1]}*{m[2]}":
        return item
    fixed = f"*{m[1]}*{m[2]}"
    return item.model_copy(update={"name": name.model_copy(update={
        "value": fixed, "note": f"stars of the *category* prefix restored (read {name.value!r})"})})


def structure_vat_invoice(cells: list[Cell], **base) -> Claim:
    """A VAT invoice's Claim (before checks): header, buyer and seller, items with tax, totals."""
    cells = [c for c in cells if not _CIPHER.fullmatch(c.key)]
    line_height = median_height(cells)
    cells = unstack(cells, line_height)  # rows already levelled by cells_of (claims.layout.row_level)
    cells = join_spaced(cells, "合计", line_height)  # printed 合      计: an item named 合计 otherwise
    header = _grid_header(cells)
    if header is not None:  # ... and one of its two characters lost (faded print): what is left is that label still
        below = max(h.y1 for h in header)
        cells = [replace(c, text="合计", alternatives=()) if c.key in ("合", "计") and c.cy > below else c
                 for c in cells]  # as join_spaced: the runner-ups belonged to the one character read
    items: list[LineItem] = []
    used: set[int] = set()
    sums: dict[str, BillField] = {}
    if header is not None:
        items, used = itemised_table(cells, header, _COLUMNS)
        items = [_category_prefix(_exempt_tax(i)) for i in items]
        sums = _totals_row(cells, header, used, line_height)
    # the buyer's block ends at the grid, the seller's block starts at 价税合计 (or below 合计)
    grand = next((c for c in cells if c.key.startswith("价税合计")), None)
    rows = group_rows([c for c in cells if header is not None and c.cy > max(h.y1 for h in header)])
    sum_row = next((row[0].cy for row in rows if any(c.key == "合计" for c in row)), None)
    top_y = min(c.y0 for c in header) if header else grand.cy if grand else float("inf")
    low_y = grand.cy - grand.height if grand else sum_row + line_height if sum_row is not None else float("inf")
    top = [c for c in cells if c.cy < top_y]
    bottom = [c for c in cells if c.cy > low_y]
    head = labelled_fields(top, used, line_height, _TOP)["header"]
    low = labelled_fields(bottom, used, line_height, _BOTTOM)
    for key, f in low["header"].items():
        head.setdefault(key, f)
    head.update(sums)
    found = {"totals": low["totals"], "payments": {}}
    findings = missing(DocumentType.vat_invoice, items, found)
    return Claim(doc_type=DocumentType.vat_invoice, header=head, items=tuple(items),
                 total_figures=low["totals"].get("total_figures"), total_words=low["totals"].get("total_words"),
                 findings=tuple(findings), **base)
