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

import itertools
import math
import re
import statistics
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from rapidfuzz.distance import LCSseq, Levenshtein

from core.records import BillField, Claim, DocumentType, FieldKind, Finding, LineItem, Page, PaymentKey

from .glyphs import simplify
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
from .numerals import DIGITS, AmountError, NumeralError, parse_amount, parse_financial
from .repair import FIGURE_LOOKALIKES, WORD_LOOKALIKES, verify_claim

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
    Label(r"票据号码|票据号|发票号(?:码)?|票号(?=:)|N[oO][.:]?|N0?[.:]|N(?=[0-9])", _H, "bill_no", digits=True),
    Label(r"校验码", _H, "check_code", digits=True),
    Label(r"开票日期|开票时间|打印日期|日期", _H, "issue_date", _D),
    Label(r"就诊日期|就诊时间", _H, "visit_date", _D),
    Label(r"交款人统一社会(?:信用?代?码?)?", _H, "payer_id"),  # also cut short by the frame
    Label(r"交款人|缴款人|付款人", _H, "payer"),
    Label(r"姓名", _H, "patient_name"),
    # where forms name the hospital: 收款单位(章) on the national receipts; settlement forms and lists print
    # 医疗机构名称, 定点医疗机构, 医院名称 or 开票单位 (医疗机构类型 is the kind of institution: its own label)
    Label(r"收款单位(?:\((?:盖)?章\))?|医疗机构名称|定点医疗机构(?:名称)?|医院名称|开票单位|医疗机构(?=:)", _H, "hospital"),
    Label(r"性别", _H, "sex"),
    Label(r"年龄", _H, "age"),
    Label(r"住院号码|住院号|住院编号", _H, "inpatient_no"),
    Label(r"门诊号", _H, "outpatient_no"),
    Label(r"病历号", _H, "record_no"),
    Label(r"入院日期|入院时间|入院(?=:)", _H, "admitted", _D),
    Label(r"出院日期|出院时间|出院(?=:)", _H, "discharged", _D),
    Label(r"医保类[型别]|医疗保险类[型别]|参保类[型别]|险种类[型别]|险种(?=:)", _H, "insurance_type"),
    Label(r"住院科别|住院科室|科室|科别", _H, "department"),
    Label(r"床号", _H, "bed"),
    Label(r"住院天数", _H, "stay_days"),
    Label(r"业务流水号", _H, "serial_no", digits=True),
    Label(r"医保编号", _H, "insurance_no", digits=True),
    Label(r"医疗机构类型", _H, "institution_type"),
    Label(r"复核人", _H, "reviewer"),
    Label(r"收款人|收款员|制表人", _H, "cashier"),
    # 基金支付 (医保基金支付) is what settlement forms print for the fund's share; 统筹 labels come first at a position
    Label(r"(?:医保)?统筹基金支付(?:金额)?|统筹支付金额|统筹支付|统筹金(?!额)|(?:医保)?基金支付(?:金额)?", _P, PaymentKey.fund.value, _A),
    Label(r"个人自付金额|个人自付|自付金额", _P, PaymentKey.self_pay.value, _A),
    # 自费金额 not spelt out: one misread off 退费金额 (追费金额), it would make that label ambiguous
    Label(r"个人自费金额|个人自费|分类自负|自费(?:金额|(?=:))", _P, PaymentKey.self_expense.value, _A),
    Label(r"个人[账帐]户(?:支付)?", _P, PaymentKey.account.value, _A),
    Label(r"(?:个人)?现金支付(?!中)|个人支付(?:金额)?", _P, PaymentKey.cash.value, _A),
    Label(r"大病(?:保险|救助)(?:基金)?(?:支付|报销)?|大额\(病\)保险(?:报销)?", _P, PaymentKey.critical_illness.value, _A),
    Label(r"其他支付", _P, PaymentKey.other_fund.value, _A),
    Label(r"预缴金额", _P, PaymentKey.prepaid.value, _A),
    Label(r"补缴金额", _P, PaymentKey.top_up.value, _A),
    Label(r"退费金额", _P, PaymentKey.refund.value, _A),
    # the total in words; bracketed, (大写) alone is enough: what is printed before it may be misread (全合什(大写))
    Label(r"(?:(?:金额|费用)?合计(?:金额)?(?:人民币)?|人民币|金额)\(?大写\)?|\(大写\)|大写(?=:)", "total_words", "total_words",
          _A),
    # the total in figures: (小写), or as settlement forms and lists label it (合计:, 费用合计, 医疗费用总额, 总金额)
    Label(r"\(?小写\)|小写(?=:)|(?:金额|费用)?合计(?:金额)?(?=:)|(?:医疗)?费用总额|总金额|总计(?=:)",
          "total_figures", "total_figures", _A),
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


def _spellings(alt: str) -> list[str]:
    """The plain spellings of one alternative of a label's pattern: itself when it is ideographs only, each
    choice when it holds classes of ideographs (医保类[型别]: 医保类型, 医保类别), none when other syntax."""
    parts = re.findall(r"\[([\u4e00-\u9fff]+)\]|([\u4e00-\u9fff])", alt)
    if "".join(f"[{c}]" if c else ch for c, ch in parts) != alt:
        return []
    return ["".join(p) for p in itertools.product(*(c or ch for c, ch in parts))]


# the labels' plain spellings, for reading a label OCR misread
_LITERALS = tuple(sorted({sp for lab in LABELS for alt in lab.pattern.split("|") for sp in _spellings(alt)
                          if len(sp) >= 4}))


# labels printed with optional parts, spelt out, so that a label with a character lost is matched against
# every label it could have been (个人付 is 个人自付 or 个人支付)
_SPELT = frozenset(_LITERALS) | {"个人支付", "个人支付金额", "现金支付", "个人现金支付", "统筹基金支付", "医保统筹基金支付",
                                 "个人账户支付", "个人帐户支付", "个人账户", "个人帐户", "大病保险", "大病救助",
                                 "合计金额", "金额合计", "收款单位", "交款人"}


def _is_label(text: str) -> bool:
    """``text`` is a whole label as printed (个人账户支付 is one, though its pattern is 个人[账帐]户(?:支付)?)."""
    return any(s == 0 and e == len(text) for s, e, _ in BILL_LABELS.find(text))


# the spelt labels that are whole labels: what a misread or cut label may be read as
_READABLE = tuple(sorted(lab for lab in _SPELT if len(lab) >= 4 and _is_label(lab)))


# ... and those one misread ideograph may stand for: the literal labels, and spelt ones of five or more characters
# (one misread leaves four right; 基金支付 is one off the 4-character 现金支付, and is no misread of it)
_MISREADABLE = frozenset(_LITERALS) | {lab for lab in _READABLE if len(lab) >= 5}


def _one_lost(head: str) -> set[str]:
    """The spelt labels that ``head`` is with one ideograph lost (预金额: 预缴金额; 缴金额: 预缴金额 and 补缴金额)."""
    if len(head) < 3 or not _IDEOGRAPH.fullmatch(head[0]):
        return set()
    return {lab for lab in _SPELT if len(lab) == len(head) + 1
            and any(lab[:k] + lab[k + 1:] == head and _IDEOGRAPH.fullmatch(lab[k]) for k in range(len(lab)))}


def _lost_one(head: str) -> str | None:
    """The one label of four or more characters that ``head`` is with one ideograph lost (预金额 for 预缴金额),
    or None (none, or several: 缴金额 is 预缴金额 or 补缴金额)."""
    near = _one_lost(head)
    lab = near.pop() if len(near) == 1 else None
    return lab if lab in _READABLE else None


def _lost_start(head: str) -> str | None:
    """A personal payment label whose 个人 was lost (a red stamp over the red label: 账户支付 for 个人账户支付). Only
    that start: it is what the 个人… labels share, so what is left still tells them apart, whereas a lost 统筹 or
    大病 leaves 基金支付, which many funds end with."""
    lab = "个人" + head
    return lab if len(head) >= 4 and not _is_label(head) and lab in _READABLE else None


_HEAD_THEN_AMOUNT = re.compile(r"([\u4e00-\u9fff]{3,})([0-9][0-9,]*(?:\.[0-9]+)?)")


def _payment_label_for(head: str, labels: LabelSet, printed: frozenset[str]) -> str | None:
    """The one payment label that ``head`` is with one ideograph misread or lost, of those the page does not print
    readably elsewhere (个人自 beside a printed 个人自付 is 个人自费), or None."""
    def payment(lit: str) -> bool:
        return bool(found := labels.find(lit)) and all(lab.target == _P for _, _, lab in found)

    near = {lit for lit in _MISREADABLE if len(lit) == len(head) and Levenshtein.distance(head, lit) == 1
            and all(_IDEOGRAPH.fullmatch(a) for a, b in zip(head, lit) if a != b)}
    near |= {lit for lit in _one_lost(head) if lit in _READABLE}
    near = {lit for lit in near if payment(lit)}
    if len(near) > 1:
        near = {lit for lit in near if not any(lab.key in printed for _, _, lab in labels.find(lit))}
    return near.pop() if len(near) == 1 else None


def fix_misread_labels(cells: list[Cell], labels: LabelSet = BILL_LABELS) -> list[Cell]:
    """``fix_misread_label`` on each cell, knowing which labels the page prints readably."""
    printed = frozenset(lab.key for c in cells for _, _, lab in labels.find(c.key))
    return [fix_misread_label(c, labels, printed) for c in cells]


def fix_misread_label(cell: Cell, labels: LabelSet = BILL_LABELS, printed: frozenset[str] = frozenset()) -> Cell:
    """A cell ``XXXX:value`` whose XXXX is no label but one misread ideograph off exactly one label of four
    or more characters (退费全额 for 退费金额, 公务员补动, 个人账尺支付), or off several spellings of one label
    (阻保类型: 医保类型 or 参保类型), is read with that label; the value is untouched. One off several payment
    labels is read so when all but one of them are ``printed`` (label keys read elsewhere on the page):
    个人自膏 beside a printed 个人自付 is 个人自费, as a form prints each label once
    (only payments: 住院时间 is printed, one off 入院时间 and 出院时间, and neither).
    So is one whose XXX is such a label with one ideograph lost (预金额: for 预缴金额:), or a personal
    payment label without its 个人 (账户支付: for 个人账户支付:), the whole of the text before its colon. A cell
    ``XXX<figure>`` whose colon was lost too is read so only as a payment label (:func:`_payment_label_for`)."""
    key = cell.key
    p = key.find(":")
    if p < 0 and (m := _HEAD_THEN_AMOUNT.fullmatch(key)) and not labels.find(m[1]):
        # its colon lost with the misread (个人自歌8.1; 个人自0.00: 费 and ： under one smudge): a payment label, the
        # only one it can be, and an amount after it
        lit = _payment_label_for(m[1], labels, printed)
        return replace(cell, text=f"{lit}:{m[2]}") if lit else cell
    if 3 <= p and not labels.find(key[:p]) and (lost := _lost_one(key[:p]) or _lost_start(key[:p])):
        text = nfkc(cell.text)
        q = text.find(":")  # NFKC folded ： to :
        if q == p:
            return replace(cell, text=lost + text[q:])
    if p < 4 or labels.find(key[:p]):
        return cell
    head = key[:p]
    near = {lit for lit in _MISREADABLE if len(lit) <= len(head) and Levenshtein.distance(head[len(head) - len(lit):], lit) == 1
            and all(_IDEOGRAPH.fullmatch(a) for a, b in zip(head[len(head) - len(lit):], lit) if a != b)}
    if len(near) > 1 and all(lab.target == _P for lit in near for _, _, lab in labels.find(lit)):
        near = {lit for lit in near if not any(lab.key in printed for _, _, lab in labels.find(lit))}
    if len(near) > 1 and len({lab.key for lit in near for _, _, lab in labels.find(lit)}) == 1:
        near = {min(near)}  # spellings of one label (阻保类型: 医保类型 or 参保类型): the field is the same
    if len(near) != 1:
        return cell
    lit = near.pop()
    text = nfkc(cell.text)
    q = text.find(":")  # NFKC folded ： to :
    if q < len(lit):
        return cell
    return replace(cell, text=text[:q - len(lit)] + lit + text[q:])
_COLON = ":"

# header labels whose value has a strict grammar (a code of letters and digits, a date): only these may be
# read through two misread ideographs, since the value then has to prove the reading
_STRICT = {alt: lab for lab in LABELS if lab.target == "header" and (lab.digits or lab.kind is FieldKind.date)
           for alt in lab.pattern.split("|") if len(alt) >= 4 and re.fullmatch(r"[\u4e00-\u9fff]+", alt)}
_CODE = re.compile(r"[0-9A-Za-z]{4,}")


def fix_twice_misread_labels(cells: list[Cell], labels: LabelSet = BILL_LABELS) -> list[Cell]:
    """A cell ``XXXX:value`` whose XXXX is two misread ideographs off a code or date label (桑据号属 for
    票据号码) is read with that label, when all of these hold: XXXX is as long as the label and every other
    code or date label is three or more characters off; that label is printed nowhere else on the page;
    the value fits the label's grammar (four or more digits, look-alike letters folded; a date); and one
    of the label's first two characters is read right (号码, 日期 end many labels: 中心号码 is no 票据号码).
    Amount labels are never read this way: a payment label two characters off another (按比例自付,
    个人自付) is common."""
    present = {lab.key for c in cells for _, _, lab in labels.find(c.key)}
    out = []
    for cell in cells:
        key = cell.key
        p = key.find(":")
        head, value = key[:p], key[p + 1:]
        if p < 4 or labels.find(head) or not value:
            out.append(cell)
            continue
        dist = {lit: Levenshtein.distance(head, lit) for lit in _STRICT if len(lit) == len(head)}
        near = [lit for lit, d in dist.items() if d <= 2]
        lab = _STRICT[near[0]] if len(near) == 1 else None
        if (lab is None or lab.key in present
                or not all(_IDEOGRAPH.fullmatch(a) for a, b in zip(head, near[0]) if a != b)
                or not any(a == b for a, b in zip(head[:2], near[0][:2]))
                or not (_DATE.fullmatch(value) if lab.kind is FieldKind.date else _CODE.fullmatch(value)
                        and _fold_digits(value)[0].isdigit())):
            out.append(cell)
            continue
        text = nfkc(cell.text)
        q = text.find(":")  # NFKC folded ： to :
        out.append(replace(cell, text=near[0] + text[q:]) if q == len(head) else cell)
        present.add(lab.key)
    return out


def fix_sex_label(cells: list[Cell], labels: LabelSet = BILL_LABELS) -> list[Cell]:
    """性别 with its second character misread or lost (性割：女, 性测： | 女, 性：) is read as 性别 when its value
    proves it: 男 or 女 after the colon, or (nothing after it) as the next cell on its row. A two-character
    label is too short to be known by one character otherwise."""
    out = []
    for cell in cells:
        m = re.fullmatch(r"性([\u4e00-\u9fff]?)[:：](.*)", cell.key)
        if m is None or m[1] == "别" or labels.find(cell.key.split(":")[0]):
            out.append(cell)
            continue
        value = m[2]
        if not value:
            right = right_neighbour(cell, cells, 3 * cell.height)
            value = right.key if right is not None else ""
        if value in ("男", "女"):
            text = nfkc(cell.text)
            q = text.find(":")  # NFKC folded ： to :
            cell = replace(cell, text="性别" + text[q:])
        out.append(cell)
    return out


# ---------------------------------------------------------------------------------------------
# Field values


# the rest of a split 收款单位(盖章) label; or of one whose 章 was misread (章知：, 量：, （查）：): one or two ideographs,
# bracketed or not, then a colon, since no hospital's name holds a colon
_STAMP_NOTE = re.compile(r"^[(（]?盖?[\u4e00-\u9fff]{1,2}[)）]?[:：]|^[(（]?盖?章[)）]?[:：]?|^[)）][:：]")
# a date's separators as printed, and as OCR reads a dash (一, long dashes); a time may follow the date
_DSEP = r"[-/.—–―一]"
# the time of day and weekday a date may carry (10:21:33, 10时21分, 星期五): read past, never part of the date
_TIME = r"(?:\d{1,2}:\d{2}(?::\d{2})?|\d{1,2}[时点](?:\d{1,2}分(?:\d{1,2}秒)?)?)?(?:(?:星期|周)[一二三四五六日天])?"
_DATE = re.compile(rf"(\d{{4}})(?:{_DSEP}|年)(\d{{1,2}})(?:{_DSEP}|月)(\d{{1,2}})日?{_TIME}")
# ... and, where the label says a date, one printed without separators or with one lost (20210423, 2021-0423):
# two digits each for month and day, so the reading is unambiguous
_TIGHT_DATE = re.compile(rf"(\d{{4}}){_DSEP}?(\d{{2}}){_DSEP}?(\d{{2}}){_TIME}")


def _fold_digits(text: str, name: str = "") -> tuple[str, str]:
    """Look-alike letters → digits, only in a text that is otherwise digits (and its note).

    A 校验码 is letters and digits: six hex digits (f04e1a) or upper-case letters and digits (an alphabet
    without O), where an O can only be a 0; but a code of mixed case does print a lower-case o (6oV401, a
    real e-receipt's), which is left as read."""
    if name == "check_code":
        folded = text.replace("O", "0")
        hexed = folded.replace("o", "0")
        folded = hexed if re.fullmatch(r"[0-9a-fA-F]+", hexed) else folded
        folded = _hex_lookalike(folded)
    else:
        folded = "".join(FIGURE_LOOKALIKES.get(ch, ch) if ch not in ".," else ch for ch in text)
        folded = folded if folded.isdigit() else text
    if folded != text:
        return folded, f"look-alikes folded to digits (read {text!r})"
    return text, ""


# what OCR reads for a lower-case hex digit: t for f, an upper-case B for 8 (a lower-case code prints none)
_HEX_LOOKALIKES = {"t": "f", "l": "1", "i": "1", "s": "5", "z": "2", "g": "9", "q": "9",
                   "B": "8", "D": "0", "S": "5", "Z": "2", "I": "1", "G": "6"}


def _hex_lookalike(code: str) -> str:
    """A six-character lower-case hex 校验码 (f04e1a) with one character no lower-case hex digit (8t6e81,
    99f5fB) takes the hex digit that character looks like; a code with another letter of its own, or none
    of a–f to show it is lower-case hex (QLBV35), is left as read."""
    odd = [k for k, ch in enumerate(code) if ch not in "0123456789abcdef"]
    if len(code) != 6 or len(odd) != 1 or not re.search(r"[a-f]", code) or code[odd[0]] not in _HEX_LOOKALIKES:
        return code
    k = odd[0]
    return code[:k] + _HEX_LOOKALIKES[code[k]] + code[k + 1:]


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
            value, note = _dotted_thousands(raw) if name != "total_words" else _folded_words(raw)
            if value is None and name != "total_words" and (m := _LEADING_AMOUNT.match(text)):
                # 9248.85附加支付: a value run together with the next (unknown) label on the line
                try:
                    value, note = parse_amount(m[1]), f"the figure before {text[m.end():]!r} (read {raw.strip()!r})"
                except AmountError:
                    value, note = None, ""
            if value is None and name != "total_words" and (m := _MISREAD_POINT.fullmatch(text)):
                # 0:00, 6603/56, 41,665,31 (two figures after the last comma are cents: thousands come in threes):
                # the decimal point read as another sign; a reading, not a proof, so it is always reviewed
                sign = m[1] or m[2]
                head, _, cents = text.rpartition(sign)
                value = parse_amount(f"{head}.{cents}")
                note = f"{_POINT_SIGNS[sign]} read as the decimal point (read {text!r})"
    elif kind is FieldKind.date:
        text = text.rstrip(":;,，；。")  # a remark strings fields together (出院时间:2021-02-10:住院天数:4)
        m = _DATE.fullmatch(text) or _TIGHT_DATE.fullmatch(text)
        if m is None and (m := _DATE.fullmatch(_refold(text)) or _TIGHT_DATE.fullmatch(_refold(text))) is not None:
            note = f"look-alikes folded to digits (read {text!r})"
        try:
            value = date(int(m[1]), int(m[2]), int(m[3])) if m else None
        except ValueError:
            value, note = None, ""
    elif digits:
        cut = ""
        if name != "check_code" and (m := re.fullmatch(r"([0-9]{6,})([\u4e00-\u9fff].*)", text)):
            # 96628838033475综合医院, 652672878258生院号:31053079: the next field's value or label read into a
            # number's line; a number is digits, so it ends where they end
            text, cut = m[1], f"the number before {m[2]!r} (read {raw.strip()!r})"
        value, note = _fold_digits(text, name)
        note = "; ".join(x for x in (cut, note) if x)
        value = value or None
    else:
        value = simplify(text) or None
        if value is not None and value != text:
            note = f"traditional or variant glyphs read as simplified (read {text!r})"
    if kind is FieldKind.amount and name != "total_words" and value is not None and _GAP_IN_FIGURE.search(raw.strip()):
        # 280 0.00 (an amount and the next column's figure on one line), 36282 03 (a decimal point lost): the
        # figures were read together across a gap, which no receipt prints inside an amount; a reading, not a proof
        note = "; ".join(x for x in (note, f"a gap inside the figure (read {raw.strip()!r})") if x)
    review = (value is None or cell.confidence < REVIEW_BELOW
              or "read as the decimal point" in note
              or "a gap inside the figure" in note)
    return BillField(name=name, value=value, kind=kind, raw=raw.strip(), confidence=cell.confidence, box=cell.box,
                     needs_review=review, note=note)


def _folded_words(raw: str) -> tuple[object, str]:
    """The total in words with its look-alike glyphs folded (抬 → 拾, 武 → 贰): each maps to one numeral, so
    no digit is chosen; the words stay an independent reading, and a wrong fold fails the words-against-
    figures check like any misread numeral. Signs printed before the words to guard them (⊗, ⓧ, ※) are no
    numerals and are read past. A last numeral after 角 whose 分 the scan lost (…壹角叁) can only be fen."""
    folded = "".join(WORD_LOOKALIKES.get(ch, ch) for ch in raw)
    folded = re.sub(r"^[^\u4e00-\u9fff]+", "", folded.strip())
    notes = ["look-alikes folded to numerals, signs before them read past"] if folded != raw.strip() else []
    if _FEN_LOST.search(folded):
        folded += "分"
        notes.append("the 分 after the last numeral lost (only fen follow 角)")
    if not notes:
        return None, ""
    try:
        return parse_financial(folded), f"{'; '.join(notes)} (read {raw.strip()!r})"
    except NumeralError:
        return None, ""


_FEN_LOST = re.compile(f"角[{''.join(k for k, v in DIGITS.items() if v)}]$")


_GAP_IN_FIGURE = re.compile(r"[0-9]\s+[0-9.]")
_MISREAD_POINT = re.compile(r"[¥$]?(?:[0-9]+([:/])|[0-9]{1,3}(?:,[0-9]{3})*(,))[0-9]{2}")
_POINT_SIGNS = {":": "a colon", "/": "a slash", ",": "a comma"}
_LEADING_AMOUNT = re.compile(r"([¥$]?:?[0-9][0-9,]*(?:\.[0-9]+)?)(?=[\u4e00-\u9fff])")
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


# item-name column titles: the national receipts' 项目名称 / 收费项目 / 项目/规格, and what older and local
# forms print over the fee names (费别, 收费类别, 费用名称, 诊疗项目, 药品名称, 品名); a bare 类别 is not one
# (itemised lists print it for the insurance class)
_HEAD_NAME = re.compile(r"(?:收费)?项目(?:名称)?(?:/规格)?|(?:项目)?名称|项目/规格|费别|(?:收费|费用|项目)类别|"
                        r"费用(?:名称|项目)|诊疗项目|(?:药)?品名(?:称)?")
_STOP = re.compile(r"合计|大写|小写|其他信息|总计")
_ITEMISED_COLS = (("name", r"名称|项目|品名"), ("spec", r"规格"), ("unit", r"单位"), ("quantity", r"数量"),
                  ("unit_price", r"单价"), ("self_pay", r"个人支付|自付"), ("amount", r"金额"),
                  ("item_class", r"类别|甲乙|等级"))
_NUMERIC = {"quantity": FieldKind.number, "unit_price": FieldKind.number, "amount": FieldKind.amount,
            "tax_rate": FieldKind.number, "tax": FieldKind.amount}
_NOT_ITEM_FIELDS = {"self_pay", "remark"}
_QTY_IN_NAME = re.compile(r"(?<=[\u4e00-\u9fff)）\]])\s*([0-9]+(?:\.[0-9]+)?)\s*([项次个支盒瓶袋片粒张组份天]?)$")
_BRACKET_SPEC = re.compile(r"\[([^\[\]]+)\]$")
_FIELD_LIKE = re.compile(r"[^:：()（）\[\]]{1,8}[:：]\s*[¥￥]?[0-9]")  # 微信:102.41  # columns read past: a LineItem has no place for them
# Column titles of item grids, for cutting a line OCR read across several of them (数量/单位金额(元),
# 金额(元)备注) back into one cell per title; longest first, so 个人支付金额 is not read as 金额.
_HEAD_WORDS = re.compile(r"个人支付金额|项目名称|收费项目|项目/规格|数量/单位|(?:实收|应收|收费|费用)金额|金额\(元\)|金额|"
                         r"(?:收费|费用|项目)类别|费用(?:名称|项目)|诊疗项目|(?:药)?品名(?:称)?|费别|数量|单位|单价|规格|备注|"
                         r"类别|等级|费用")
_NAME_HEAD_LIKE = ("项目名称", "收费项目", "项目/规格")
# Column titles long enough that one misread ideograph still names them (项籍/规格, 项日/规格 on a photo,
# 个人支付全额 under a stamp); a two-character title (数量, 金额) is not: one character is half of it.
_LONG_TITLES = ("项目名称", "收费项目", "项目/规格", "个人支付金额", "数量/单位")


def _head_key(key: str) -> str:
    """A header cell's key without its unit: 金额(元) → 金额."""
    return re.sub(r"\((?:元|¥)\)$", "", key)


def _is_name_head(key: str) -> bool:
    """An item-name column title, also as OCR misreads it on a poor scan (项目名你, 项马名称): one
    character off a four-character title still names the column."""
    k = _head_key(key)
    if _HEAD_NAME.fullmatch(k):
        return True
    return any(_one_ideograph_off(k, t) for t in _NAME_HEAD_LIKE)


def _one_ideograph_off(key: str, title: str) -> bool:
    """``key`` is ``title`` with exactly one of its ideographs misread (as another, or as a letter: 收费项a;
    same length, every other character, a slash included, as printed)."""
    if len(key) != len(title) or key == title:
        return False
    diff = [(a, b) for a, b in zip(key, title) if a != b]
    return len(diff) == 1 and _IDEOGRAPH.match(diff[0][1]) is not None


def _retitled(c: Cell) -> Cell:
    """A header cell misread by one ideograph (项籍/规格) given the title it stands for, so the column's
    role (name, spec, self-pay …) is read from the title as printed."""
    k = _head_key(c.key)
    if _HEAD_WORDS.fullmatch(k):
        return c
    title = next((t for t in _LONG_TITLES if _one_ideograph_off(k, t)), None)
    return c if title is None else replace(c, text=title + c.key[len(k):])


_AMOUNT_HEAD = re.compile(r"(?:实收|应收|收费|费用)金额|费用")  # beside 金额 / 金额(元) …, what forms print


def _is_amount_head(key: str) -> bool:
    """金额 / 金额(元) (实收金额, a bare 费用), also with one character misread when the unit (元) confirms it
    (全额(元))."""
    k = _head_key(key)
    return (k.startswith("金额") or _AMOUNT_HEAD.fullmatch(k) is not None
            or (k != key and len(k) == 2 and Levenshtein.distance(k, "金额") <= 1))


def _char_spans(c: Cell) -> list[tuple[float, float]]:
    """Where each character of ``c.text`` lies along the line: an ideograph or full-width sign about a line
    high and wide, a letter, figure or sign half that, and the room left over shared among the spaces (OCR
    writes one space for a gap of any width). Without spaces, the line's width is shared evenly."""
    weights = [0.0 if ch.isspace() else 1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.5 for ch in c.text]
    width, ink = c.x1 - c.x0, sum(weights) or 1.0
    unit = min(c.height, width / ink)
    gaps = sum(1 for ch in c.text if ch.isspace())
    gap = (width - unit * ink) / gaps if gaps else 0.0
    if not gaps:
        unit = width / ink
    spans, x = [], c.x0
    for ch, w in zip(c.text, weights):
        step = gap if ch.isspace() else unit * w
        spans.append((x, x + step))
        x += step
    return spans


def _split_heads(row: list[Cell]) -> list[Cell]:
    """Header cells holding several column titles (OCR read 数量/单位金额(元) as one line) cut into one cell
    per title, each with the x-range of its characters (printed at an even pitch)."""
    out = []
    for c in row:
        key = c.key
        words = list(_HEAD_WORDS.finditer(key))
        covered = sum(m.end() - m.start() for m in words)
        if len(words) < 2 or covered < len(key) - 1:
            out.append(c)
            continue
        squeezed, where = _squeeze(c.text)
        if squeezed != key:  # (NFKC of a whole line and of its characters one by one can differ: even pitch then)
            pitch = (c.x1 - c.x0) / max(len(key), 1)
            spans, where = [(c.x0 + k * pitch, c.x0 + (k + 1) * pitch) for k in range(len(key))], list(range(len(key)))
        else:
            spans = _char_spans(c)
        for m in words:
            out.append(replace(c, text=m[0], x0=spans[where[m.start()]][0], x1=spans[where[m.end() - 1]][1]))
    return out


def _header_row(cells: list[Cell]) -> list[Cell] | None:
    """The first row that holds an item-name header and an amount header (titles OCR read together
    split apart)."""
    for cell in cells:
        if _is_name_head(cell.key) or (_HEAD_WORDS.match(cell.key) and _is_name_head(_HEAD_WORDS.match(cell.key)[0])):
            # a stamp's large text beside the titles is no title
            # nor is a cell without an ideograph (a perforation of a tractor-fed form OCR'd as C)
            row = _amount_after_name([_retitled(c) for c in _split_heads(sorted(
                (c for c in cells if same_row(c, cell) and c.height < 1.8 * cell.height and _IDEOGRAPH.search(c.key)),
                key=lambda c: c.x0))])
            if any(_is_amount_head(c.key) for c in row) and any(_is_name_head(c.key) for c in row):
                return _repeated_titles(row)
    return None


def _amount_after_name(row: list[Cell]) -> list[Cell]:
    """金额 misread by one ideograph (企额, 全额) where grids print it, after an item-name title (next to it,
    or past other titles: 项目/规格 | 数量 | 全额), is 金额 when the row has no amount title otherwise (a
    two-character title is known by its place)."""
    if any(_is_amount_head(c.key) for c in row):
        return row
    out = list(row)
    named = False
    for j, c in enumerate(row):
        key = _head_key(c.key)
        if named and _one_ideograph_off(key, "金额") and not _HEAD_WORDS.fullmatch(key):
            out[j] = replace(c, text="金额" + c.key[len(key):])
        named = named or _is_name_head(c.key)
    return out


def _repeated_titles(row: list[Cell]) -> list[Cell]:
    """A title misread in a repeated group (项目/规格 read as 第格 under a stamp) is the first group's: a
    cell that is no known title, standing where the first group's titles start again, is given the
    first group's item-name title."""
    first = next(j for j, c in enumerate(row) if _is_name_head(c.key))
    if first + 1 >= len(row):
        return row
    after = row[first + 1].key
    out = list(row)
    for j in range(first + 2, len(row) - 1):
        c = row[j]
        if (row[j + 1].key == after and not _HEAD_WORDS.fullmatch(_head_key(c.key)) and not _is_name_head(c.key)
                and not _is_name_head(out[j - 1].key)):
            out[j] = replace(c, text=row[first].text)
    return _titles_across_groups(_lost_name_titles(out))


def _lost_name_titles(row: list[Cell]) -> list[Cell]:
    """A repeated column group whose item-name title OCR lost (under a stamp, in glare) gets it back where
    the first group prints it: a title printed again (金额, 个人支付金额) with no item-name title between
    it and its first print starts a group, whose name title stands as far left of it as the first group's
    does (a cell of its own, no OCR line: index -1)."""
    names = [j for j, c in enumerate(row) if _is_name_head(c.key)]
    if not names:
        return row
    name = row[names[0]]
    out = list(row)
    for j, c in enumerate(row):
        if j < names[0] or not _HEAD_WORDS.fullmatch(_head_key(c.key)) or _is_name_head(c.key):
            continue
        again = [k for k in range(j + 1, len(row)) if _head_key(row[k].key) == _head_key(c.key)]
        if not again:
            continue
        if not any(j < n < again[0] for n in names):
            dx = row[again[0]].cx - c.cx
            out.append(replace(name, x0=name.x0 + dx, x1=name.x1 + dx, index=-1))
        break  # the first title after the name title that is printed again anchors the groups
    return sorted(out, key=lambda c: c.x0)


def _titles_across_groups(row: list[Cell]) -> list[Cell]:
    """A short title misread by one ideograph (全额 for 金额) is the title the other column groups print
    at its place: groups start at each item-name title, and a cell that is no known title takes the title
    standing at the same place in another group when it is one ideograph off it (a two-character title
    alone is too short to be known by one character: the repeat is what proves it)."""
    starts = [j for j, c in enumerate(row) if _is_name_head(c.key)]
    if len(starts) < 2:
        return row
    groups = [row[a:b] for a, b in zip(starts, [*starts[1:], len(row)])]
    out = list(row)
    for a, group in zip(starts, groups):
        for k, c in enumerate(group):
            key = _head_key(c.key)
            if _HEAD_WORDS.fullmatch(key) or _is_name_head(c.key):
                continue
            here = {_head_key(g[k].key) for g in groups if k < len(g) and _HEAD_WORDS.fullmatch(_head_key(g[k].key))}
            known = {_head_key(h.key) for g in groups if g is not group for h in g if _HEAD_WORDS.fullmatch(_head_key(h.key))}
            # the title at its place in another group; else (a title OCR lost before it: 数量) the one title
            # printed anywhere in the other groups that it is one ideograph off
            fits = ([t for t in here if _one_ideograph_off(key, t)] or [t for t in known if _one_ideograph_off(key, t)]
                    or [t for t in here if len(key) < len(t) and t.startswith(key)])  # 金: its 额 lost
            if len(fits) == 1:
                out[a + k] = replace(c, text=fits[0] + c.key[len(key):])
    return out


def _table(cells: list[Cell], header: list[Cell], *, align: bool = False
           ) -> tuple[list[list[Cell]], list[tuple[float, float]]]:
    """The body rows and the column x-ranges of the table under ``header``, its columns stood upright
    (``upright_columns``: the rows' cells are returned with those x, their indexes and boxes unchanged).
    With ``align``, the columns follow a body printed offset from its pre-printed titles (``_offset``)."""
    header, rows = upright_columns(header, _body(cells, header))
    body = [c for r in rows for c in r]
    if align:
        dx = _offset(header, body)
        if dx:
            header = [replace(h, x0=h.x0 + dx, x1=h.x1 + dx) for h in header]
    cols = columns_from_headers(header, body)
    kinds = [_head_kind(h) for h in header]
    return [[piece for c in row for piece in _split_across(c, cols, kinds)] for row in rows], cols


def _split_across(c: Cell, cols: list[tuple[float, float]], kinds: list[str]) -> list[Cell]:
    """A body line OCR read across several columns (1项 1200.50 护理费 1项 over 数量/单位 | 金额(元) | 项目名称 |
    数量/单位 of two column groups) cut at its spaces into one cell per column it spans. The pieces keep their
    order; each figure must land in a figure (or free) column and each name in a name (or free) column. Only a line with
    a figure is cut, so a long name run on over the next columns stays whole; of the assignments that fit, the
    one that puts each piece nearest where its share of the line's characters falls."""
    pieces = c.text.split()
    reached = [j for j, (a, b) in enumerate(cols) if min(c.x1, b) - max(c.x0, a) > 0.3 * c.height]
    if len(reached) < 2:
        return [c]
    # and the column on either side (the line's box may stop short of the column its last piece belongs to)
    spanned = list(range(max(reached[0] - 1, 0), min(reached[-1] + 2, len(cols))))
    if not 2 <= len(pieces) <= len(spanned):
        return [c]
    spans = _char_spans(c)
    placed = [replace(c, text=m[0], x0=spans[m.start()][0], x1=spans[m.end() - 1][1]) for m in re.finditer(r"\S+", c.text)]
    kind = [_cell_kind(p) for p in placed]
    if "num" not in kind:
        return [c]

    def fits(i: int, j: int) -> bool:
        return kind[i] == "" or kinds[j] in (kind[i], "")

    def far(i: int, j: int) -> float:
        a, b = cols[j]
        return max(a - placed[i].cx, placed[i].cx - b, 0.0)

    best: tuple[int, float, tuple[int, ...]] | None = None
    for chosen in itertools.combinations(spanned, len(placed)):
        if all(fits(i, j) for i, j in enumerate(chosen)):
            # names in name columns and figures in figure columns first (a free column, 备注 or 个人支付金额, takes
            # one only where the order allows no better), then nearness
            cost = (sum(kind[i] != "" and kinds[j] != kind[i] for i, j in enumerate(chosen)),
                    sum(far(i, j) for i, j in enumerate(chosen)), chosen)
            best = min(best, cost) if best is not None else cost
    if best is None:
        return [c]
    out = []
    for p, j in zip(placed, best[2]):
        a, b = cols[j]
        x0, x1 = max(p.x0, a), min(p.x1, b)
        if x1 <= x0:  # its share of the line falls outside the column: put it at the column's near edge
            x0 = a if p.cx < a else b - 1
            x1 = x0 + 1
        out.append(replace(p, x0=x0, x1=x1))
    return out


_FIGURE = re.compile(r"[¥$]?:?[0-9][0-9,]*(?:\.[0-9]*)?")


_UNIT_ONLY = re.compile(r"[0-9]*(?:\.[0-9]+)?[项次个支盒瓶袋片粒张组份天]")


def _cell_kind(c: Cell) -> str:
    key = c.key
    if _FIGURE.fullmatch(key):
        return "num"
    if _UNIT_ONLY.fullmatch(key):
        return ""  # a quantity's unit (项, 1项; its figure lost under a stamp) is neither a name nor an amount
    if re.search(r"[\u4e00-\u9fff]", key) and not re.search(r"[0-9]", key):
        return "text"
    return ""


def _head_kind(h: Cell, roles: tuple[tuple[str, str], ...] = (), *, self_pay: str = "") -> str:
    """What a column holds: "text" (item names), "num" (figures) or "" (anything: units, remarks, rates).
    A self-pay column (个人支付金额) holds figures, but a row's one figure under it is its amount, so it
    counts as ``self_pay`` ("" unless said: a figure there may move to an empty amount column)."""
    name = dict(roles).get("name")
    if _is_name_head(h.key) or (name and re.search(name, h.key)):
        return "text"
    if re.search(r"个人支付|自付", h.key):
        return self_pay
    if _is_amount_head(h.key) or re.search(r"数量|单价|税额", h.key):
        return "num"
    return ""


def _settled(by_col: dict[int, list[Cell]], kinds: list[str]) -> dict[int, list[Cell]]:
    """A row's cells moved, one by one, out of a column that is not of their kind into the neighbouring
    column that is and is empty on this row: a right-aligned amount under the next column's title (金额
    13.32 under 税率), a name printed left of its centred title (under the 备注 before it)."""
    out = {j: list(g) for j, g in by_col.items()}
    for j, group in sorted(by_col.items()):
        for c in group:
            if not (kind := _cell_kind(c)) or kinds[j] == kind:
                continue
            near = [k for k in (j - 1, j + 1) if 0 <= k < len(kinds) and kinds[k] == kind and not out.get(k)]
            if len(near) == 1:
                out[j].remove(c)
                out[near[0]] = [c]
    return {j: g for j, g in out.items() if g}


def _offset(header: list[Cell], body: list[Cell]) -> float:
    """How far right (or left) the body is printed from its column titles.

    Why: a dot-matrix printer fills a pre-printed form wherever the paper sits in it; the whole printed
    layer can stand half a column off the titles (amounts under 备注, names under 数量). The offset is
    the shift of the titles that puts most body cells under a title of their kind (names under an
    item-name title, figures under 金额 / 数量 / 单价 / 个人支付金额), tried at every shift that centres some
    body cell under a title of its kind; it is taken only when it puts clearly more cells right than no shift."""
    kinds = [_head_kind(h, self_pay="num") for h in header]
    typed = [(c, k) for c in body if (k := _cell_kind(c))]
    if len(typed) < 4 or not any(kinds):
        return 0.0

    def score(dx: float) -> int:
        cols = columns_from_headers([replace(h, x0=h.x0 + dx, x1=h.x1 + dx) for h in header])
        return sum(1 if kinds[column_of(c, cols)] == k else -1 for c, k in typed if kinds[column_of(c, cols)])

    width = statistics.median(h.x1 - h.x0 for h in header)
    shifts = {round(c.cx - h.cx) for c, k in typed for h, hk in zip(header, kinds) if hk == k}
    shifts = {d for d in shifts if 0 < abs(d) <= 2.5 * width}
    base = score(0.0)
    best, best_dx = base, 0.0
    for dx in sorted(shifts, key=abs):
        if (sc := score(dx)) > best:
            best, best_dx = sc, float(dx)
    return best_dx if best >= base + max(2, 0.25 * len(typed)) else 0.0


def _body(cells: list[Cell], header: list[Cell]) -> list[list[Cell]]:
    """Rows under the header down to the first totals row."""
    h_bottom = max(c.y1 for c in header)
    # text much taller than the grid's (a stamp's 现金收讫, a margin printed vertically) would join rows
    tall = 1.8 * statistics.median(c.height for c in header)
    below = [c for c in cells if c.cy > h_bottom and c not in header and c.height < tall]
    stop = min((c.cy for c in below if _STOP.search(c.key) and not c.key.endswith("小计")), default=float("inf"))
    return group_rows([c for c in below if c.cy < stop - 0.3 * c.height])


def _named(cells: list[Cell]) -> list[Cell]:
    """The cells of a name column that can be part of a name: a fragment with no letter or ideograph
    (a stamp's (23), a stray 0) is not, nor a lone letter (a tractor-feed perforation OCR'd as C)."""
    return [c for c in cells if re.search(r"[\u4e00-\u9fff]|[A-Za-z].*[A-Za-z0-9]", c.key)
            and not _UNIT_ONLY.fullmatch(c.key)]  # nor a quantity's unit alone (项: 1项, its 1 lost)


_NAME_THEN_AMOUNT = re.compile(r"(.*[\u4e00-\u9fff)）\]])\s*([¥￥]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)\.[0-9]{2})")


def _name_then_amount(c: Cell) -> tuple[Cell, Cell] | None:
    """A name cell that holds the row's amount too (OCR read 床位费 and 280.00 as one line across the column
    gap): the name and the figure, each a cell with its share of the line's width. Only a figure with
    decimals at the end of the text, after an ideograph or a bracket, so a dose (0.1g*14) or a code stays."""
    text = c.text.strip()
    m = _NAME_THEN_AMOUNT.fullmatch(text)
    if m is None or _IDEOGRAPH.search(m[2]):
        return None
    lead = len(c.text) - len(c.text.lstrip())
    cut = _char_spans(c)[lead + m.start(2)][0]
    return replace(c, text=m[1], x1=cut), replace(c, text=m[2], x0=cut)


def _joined(cells: list[Cell]) -> tuple[str, Cell]:
    """Several OCR lines in one table cell read as one text; the least sure line speaks for them."""
    cells = sorted(cells, key=lambda c: c.x0)
    return "".join(c.text for c in cells), min(cells, key=lambda c: c.confidence)


def _is_field_cell(text: str) -> bool:
    """A labelled field, not an item's name: ``label:value`` (微信:102.41, 支付宝:0.), or a way of paying or
    another field word before a separator whatever follows it (现金·0.00, 微信:问诊收款, 银行卡:37.9)."""
    key = nfkc(text).replace(" ", "")
    if _FIELD_LIKE.match(key):
        return True
    m = re.match(r"([^:：·•]{1,8})[:：·•]", key)
    return m is not None and _FIELD_WORD.search(m[1]) is not None


def _has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in nfkc(text))


def _groups(header: list[Cell], is_name) -> list[range]:
    """The header's column groups: a new group starts at each item-name title (项目名称 | 金额 | 备注,
    repeated across a wide page)."""
    starts = [j for j, h in enumerate(header) if is_name(h)] or [0]
    starts[0] = 0
    return [range(a, b) for a, b in zip(starts, [*starts[1:], len(header)])]


def category_grid(cells: list[Cell], header: list[Cell]) -> tuple[list[LineItem], set[int]]:
    """Items of a grid of repeated 项目名称 | 金额 | 备注 groups: each name with the first figure in the
    next column of its row (a second figure there is an unlabelled self-pay column). Pre-printed names
    without an amount are not items. Names are snapped to the national fee categories (``snap_category``)."""
    rows, cols = _table(cells, header, align=True)
    pairs = [j for j, h in enumerate(header[:-1]) if _is_name_head(h.key) and _is_amount_head(header[j + 1].key)]
    kinds = [_head_kind(h) for h in header]
    items: list[LineItem] = []
    used = {c.index for c in header}
    for row in rows:
        by_col: dict[int, list[Cell]] = {}
        for c in row:
            by_col.setdefault(column_of(c, cols), []).append(c)
        by_col = _settled(by_col, kinds)
        for j in pairs:
            names, amounts = _named(by_col.get(j, [])), [c for c in by_col.get(j + 1, []) if _has_digit(c.text)]
            if not names or not amounts:
                # 床位费 280.00: OCR read the row's name and amount as one line across the column gap (a line that
                # starts in the name column, wherever its middle falls), the only one on the row with a figure
                here = [*by_col.get(j, []), *by_col.get(j + 1, [])]
                merged = [c for c in here if column_of(replace(c, x1=c.x0 + 1), cols) == j and _name_then_amount(c)]
                if len(merged) == 1 and all(c is merged[0] for c in amounts):
                    name, amount = _name_then_amount(merged[0])
                    names, amounts = [*(c for c in names if c is not merged[0]), name], [amount]
            if not names or not amounts:
                continue
            amounts = sorted(amounts, key=lambda c: c.x0)
            if len(amounts) > 1 and all(_FIGURE.fullmatch(c.key) for c in amounts):
                amounts = amounts[:1]
            name_raw, name_cell = _joined(names)
            if _is_field_cell(name_raw):
                continue  # 现金:0, | 支付宝:0, — the ways paid printed across the grid's columns, not an item
            amount_raw, amount_cell = _joined(amounts)
            items.append(LineItem(line_no=len(items), name=snap_category(make_field("name", name_raw, FieldKind.text, name_cell), names),
                                  amount=make_field("amount", amount_raw, FieldKind.amount, amount_cell)))
            used |= {c.index for c in names + amounts}
    return items, used


def itemised_table(cells: list[Cell], header: list[Cell], roles: tuple[tuple[str, str], ...] = _ITEMISED_COLS,
                   *, align: bool = False, snap: bool = False) -> tuple[list[LineItem], set[int]]:
    """Rows of a 费用清单 (or another grid whose ``roles`` name its columns): columns named by the
    header, repeated groups of them across a wide page read group by group; subtotal (小计) rows are
    skipped."""
    rows, cols = _table(cells, header, align=align)
    role: dict[int, str] = {}
    name_pat = dict(roles).get("name", r"名称")
    groups = _groups(header, lambda h: re.search(name_pat, h.key) is not None)
    group_of = {j: g for g, rng in enumerate(groups) for j in rng}
    for rng in groups:
        for j in rng:
            h = header[j]
            for name, pat in roles:
                if re.search(pat, h.key) and name not in (role.get(i) for i in rng):
                    role[j] = name
                    break
    kinds = [_head_kind(h, roles) for h in header]
    has_quantity = [any(role.get(j) in ("quantity", "unit") for j in rng) for rng in groups]
    spec_in_name = [any(role.get(j) == "name" and "规格" in header[j].key for j in rng) for rng in groups]
    items: list[LineItem] = []
    used = {c.index for c in header}
    for row in rows:
        by_col: dict[int, list[Cell]] = {}
        for c in row:
            j = column_of(c, cols)
            # a long name runs on over the next columns: a name column's text is left-aligned, so a
            # cell with ideographs that starts in a name column belongs to it
            k = column_of(replace(c, x1=c.x0 + 1), cols)
            if role.get(k) == "name" and k != j and re.search(r"[\u4e00-\u9fff]", c.key):
                j = k
            by_col.setdefault(j, []).append(c)
        by_group: dict[int, dict[str, list[Cell]]] = {}
        for j, group in _settled(by_col, kinds).items():
            if r := role.get(j):
                by_group.setdefault(group_of[j], {}).setdefault(r, []).extend(group)
        for g in sorted(by_group):
            by_role = by_group[g]
            if "amount" not in by_role and "self_pay" in by_role:
                # one figure in the row, printed (offset) under 个人支付金额: a self-pay is never printed
                # without the amount it is part of, so it is the amount
                by_role["amount"] = by_role.pop("self_pay")
            if "name" in by_role:
                by_role["name"] = _named(by_role["name"])
            if "amount" in by_role:
                _quantities_out_of_amounts(by_role)
            if not by_role.get("name") or not by_role.get("amount"):
                continue
            if not any(_DIGIT.search(c.key) for c in by_role["amount"]):
                continue  # no figure at all under 金额 (a stamp's 威 beside the cashier's name printed there)
            if _is_field_cell(_joined(by_role["name"])[0]):
                continue  # 支付宝:0. — a labelled field printed across the grid, not an item
            fields = {}
            for r, group in by_role.items():
                if r in _NOT_ITEM_FIELDS:
                    continue
                raw, cell = _joined(group)
                fields[r] = make_field(r, raw, _NUMERIC.get(r, FieldKind.text), cell)
            if str(fields["name"].value or "").endswith("小计"):
                continue
            if "quantity" not in fields and "unit" not in fields and has_quantity[g] and (m := _QTY_IN_NAME.search(str(fields["name"].value or ""))):
                # the 数量/单位 column OCR'd into the name's line (床位费 1项): the quantity and unit apart
                name = fields["name"]
                fields["quantity"] = make_field("quantity", m[1], FieldKind.number, cells_of_name := min(
                    by_role["name"], key=lambda c: c.confidence))
                if m[2] and "unit" not in fields:
                    fields["unit"] = make_field("unit", m[2], FieldKind.text, cells_of_name)
                fields["name"] = name.model_copy(update={"value": name.value[:m.start()].strip() or None})
            if "spec" not in fields and spec_in_name[g] and (m := _BRACKET_SPEC.search(str(fields["name"].value or ""))):
                # 项目/规格 prints the spec after the name: (门)伊曲康唑胶囊(斯皮仁诺)[0.1g*14]
                name = fields["name"]
                fields["spec"] = name.model_copy(update={"name": "spec", "value": m[1], "kind": FieldKind.text})
                fields["name"] = name.model_copy(update={"value": name.value[:m.start()].strip() or None})
            if fields.get("item_class") is not None and isinstance(fields["item_class"].value, str):
                fields["item_class"] = fields["item_class"].model_copy(
                    update={"value": fields["item_class"].value.removesuffix("类") or None})
            if snap:
                fields["name"] = snap_category(fields["name"], by_role["name"])
            items.append(LineItem(line_no=len(items), **fields))
            used |= {c.index for r in by_role.values() for c in r}
    return items, used


_DIGIT = re.compile(r"[0-9]")
_QUANTITY_CELL = re.compile(r"[0-9]+(?:\.[0-9]+)?[项次个支盒瓶袋片粒张组份天]")
_QUANTITY_THEN_AMOUNT = re.compile(r"([0-9]+(?:\.[0-9]+)?[项次个支盒瓶袋片粒张组份天])([¥$]?[0-9][0-9,]*\.[0-9]{1,2})")


def _quantities_out_of_amounts(by_role: dict[str, list[Cell]]) -> None:
    """A dot-matrix row printed off its columns puts the quantity (1项, or a bare 7 left of the amount)
    under 金额 with the amount; the cells are never run together into one figure (7 and 467.49 are not
    7467.49): a quantity with its unit, or a cell reading ``1项4.32``, goes to the quantity, and of several
    bare figures the rightmost (amounts are right-aligned) is the amount, the one left of it the quantity
    when the row has none. Edits ``by_role`` in place."""
    amounts = sorted(by_role["amount"], key=lambda c: c.x0)
    out = []
    for c in amounts:
        if _QUANTITY_CELL.fullmatch(c.key):
            by_role.setdefault("quantity", []).append(c)
        elif m := _QUANTITY_THEN_AMOUNT.fullmatch(c.key):
            pitch = (c.x1 - c.x0) / max(len(c.key), 1)
            cut = c.x0 + pitch * m.end(1)
            by_role.setdefault("quantity", []).append(replace(c, text=m[1], x1=cut))
            out.append(replace(c, text=m[2], x0=cut))
        else:
            out.append(c)
    if len(out) > 1 and all(_FIGURE.fullmatch(c.key) for c in out):
        if len(out) == 2 and not by_role.get("quantity"):
            by_role["quantity"] = [out[0]]
        out = out[-1:]
    by_role["amount"] = out


# Items read as a stream of "name amount" pairs along each row, for a grid with no column titles
# (a paper form whose category names are printed by the dot-matrix printer too: B超费 0.00 CT费 270.00 …)
# and for cells that hold a whole item (检查费:10.00).
# A figure run on into a unit (lower case) or a multiplication sign is a dose or a pack (0.1g*14), never an amount;
# an upper-case letter starts the next name (0.00CT费).
_TOKEN = re.compile(r"(?P<amount>(?<![0-9.])[¥￥]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)\.[0-9]{1,2}(?![0-9.a-z*×]))|"
                    r"(?P<name>[A-Za-z\u4e00-\u9fff][^0-9:：¥￥]{0,14})")


# a fee category and a figure without decimals, the whole of a cell (其他费:24648): on a dot-matrix form mostly a
# figure whose decimal point OCR lost under a stamp, which the items' sum may then put back (claims.repair);
# printed so, it is the amount as printed
_CATEGORY_AND_DIGITS = re.compile(r"([\u4e00-\u9fff]{2,8}):([0-9]{3,})")

# what a labelled field's name ends in, never a fee category's (微信:102.41 is how it was paid, not an item)
_FIELD_WORD = re.compile(r"(?:支付|金额|标准|补助|记帐|记账|存款|结余|自付|自费|自负|起付线|微信|支付宝|号|码|日期|时间|"
                         r"现金|银行卡|刷卡|POS|扫码|找零|实收|优惠|减免|小计)$")


def stream_items(cells: list[Cell], header: list[Cell] | None, skip: set[int]) -> tuple[list[LineItem], set[int]]:
    """Name–amount pairs read along the rows above the totals (under the column titles when there are
    some): a name (letters or ideographs, not a field label) directly followed, in the same cell or the
    next, by a figure with decimals (measured: a dot-matrix figure without them is more often one whose
    decimal point OCR lost, 1243 for 123.43, than one printed short). A row counts only when it holds two or more such pairs or a cell
    that is one whole pair, so a labelled field (病案号 …) is not read as an item."""
    top = max(c.y1 for c in header) if header else -math.inf
    height = median_height(cells)
    region = [c for c in cells if c.cy > top and c.index not in skip and c.height < 1.8 * height]
    stop = min((c.cy for c in region if _STOP.search(c.key) and not c.key.endswith("小计")), default=math.inf)
    items: list[LineItem] = []
    used: set[int] = set()
    for row in group_rows([c for c in region if c.cy < stop - 0.3 * c.height]):
        tokens = []  # (kind, text, cell, the cell's only tokens)
        for c in row:
            key = c.key
            found = [(m.lastgroup, m[0].strip(" :："), c) for m in _TOKEN.finditer(key)]
            if (m := _CATEGORY_AND_DIGITS.fullmatch(key)) and snap_category(make_field("name", m[1], FieldKind.text, c),
                                                                              (c,)).value in CATEGORIES:
                found = [("name", m[1], c), ("amount", m[2], c)]
            tokens += [(k, t, cc, len(found)) for k, t, cc in found if t]
        pairs = []
        for (k1, name, c1, n1), (k2, amount, c2, n2) in zip(tokens, tokens[1:]):
            if k1 != "name" or k2 != "amount":
                continue
            if (BILL_LABELS.find(name) or _STOP.search(name) or _FIELD_WORD.search(name)
                    or (len(name) < 2 and not name.isalpha())):
                continue
            pairs.append((name, amount, c1, c2, c1 is c2 and n1 == 2))
        if len(pairs) < 2 and not any(p[-1] for p in pairs):
            continue
        for name, amount, c1, c2, _ in pairs:
            items.append(LineItem(line_no=len(items),
                                  name=snap_category(make_field("name", name, FieldKind.text, c1), (c1,)),
                                  amount=make_field("amount", amount, FieldKind.amount, c2)))
            used |= {c1.index, c2.index}
    return items, used


_IDEOGRAPH = re.compile(r"[\u4e00-\u9fff]")
# The fee categories of national medical receipts (财政部 医疗收费票据: 住院 and 门诊 项目), as forms print them.
CATEGORIES = frozenset((
    "床位费", "诊察费", "诊查费", "检查费", "化验费", "检验费", "治疗费", "手术费", "麻醉费", "护理费", "卫生材料费",
    "西药费", "中药费", "中成药费", "中成药", "中草药费", "中药饮片费", "中药饮片", "一般诊疗费", "挂号费", "其他费",
    "其他费用", "其它费", "其他住院费用", "其他住院收费", "其他门诊收费", "输血费", "输氧费", "氧气费", "放射费",
    "处置费", "材料费", "药事服务费", "体检费", "婴儿费", "取暖费", "空调费", "注射费", "诊疗费", "会诊费",
    "病理费", "救护车费", "抢救费", "监护费", "彩超费", "心电图费", "手术材料", "特殊材料费", "特殊检查费",
    "特殊治疗费", "床位费用", "B超费", "CT费", "MRI", "彩超", "材料费", "出诊费", "接生费", "煎药费", "诊察费用", "血费", "卫生材料", "自费药品",
))

# the items of the national standard for medical receipts (财政部 医疗收费票据, 住院 and 门诊), which e-receipts print;
# the other CATEGORIES are regional or older spellings (诊疗费, 诊查费, 检验费, 中草药费)
NATIONAL_CATEGORIES = frozenset(("床位费", "诊察费", "检查费", "化验费", "治疗费", "手术费", "护理费", "卫生材料费", "西药费",
                                 "中药饮片费", "中成药费", "一般诊疗费", "挂号费", "其他费"))


def _runner_ups(value: str, cells: Sequence[Cell]) -> dict[int, set[str]]:
    """For each position of ``value`` (a field's normalised text), the characters the recogniser nearly read
    there, from the cell whose text holds it (compared as ``make_field`` normalises: NFKC, simplified
    glyphs, no white space)."""
    for cell in cells:
        if not cell.alternatives:
            continue
        where = [i for i, ch in enumerate(cell.text) if not ch.isspace()]
        norm = simplify("".join(nfkc(cell.text[i]) for i in where))
        if len(norm) != len(where) or (start := norm.find(value)) < 0:
            continue
        back = {where[start + k]: k for k in range(len(value))}
        out: dict[int, set[str]] = {}
        for i, ch, _ in cell.alternatives:
            if i in back:
                out.setdefault(back[i], set()).add(simplify(nfkc(ch)))
        return out
    return {}


def _unsure_where_they_differ(value: str, near: Sequence[str], seconds: dict[int, set[str]]) -> bool:
    """The recogniser was unsure (it kept a runner-up in ``seconds``, :func:`_runner_ups`) of every character where
    ``value`` differs from ``near``."""
    return all(i in seconds for c in near for i, (a, b) in enumerate(zip(value, c)) if a != b)


def _renamed(f: BillField, value: str, why: str) -> BillField:
    """``f`` read as ``value``; its note says why (``raw`` keeps what OCR read)."""
    return f.model_copy(update={"value": value, "note": "; ".join(x for x in (f.note, why) if x)})


def snap_category(f: BillField, cells: Sequence[Cell] = ()) -> BillField:
    """A category name one misread character off exactly one national fee category (护理货, 诊察贸, 化验贵)
    takes that category's spelling; the field's ``raw`` and note keep what OCR read. One off two categories
    (中晟药费: 中成药费 or 中草药费) takes the one whose character the recogniser nearly read there (its
    runner-up, from ``cells``), if exactly one is; else the national standard's item, if exactly one of them is
    (检室费: 检查费, not the regional 检验费)."""
    value = f.value
    if not isinstance(value, str) or value in CATEGORIES or len(value) < 3:
        return f
    # a stamp's characters read on after the name (化验费市第, 中成药费院: the hospital's name in the stamp
    # across the grid): a category ending in 费, then one or two ideographs that no category continues with
    # (费用 is printed: 诊察费用), is that category
    after = [c for c in CATEGORIES if c.endswith("费") and value.startswith(c)
             and re.fullmatch(r"[\u4e00-\u9fff]{1,2}", value[len(c):]) and not value[len(c):].startswith("用")]
    if after:
        cut = max(after, key=len)
        return _renamed(f, cut, f"read {value!r}: the fee category {cut!r} and a stamp's {value[len(cut):]!r} after it")
    near = [c for c in CATEGORIES if len(c) == len(value) and Levenshtein.distance(c, value) == 1]
    # a stamp's character read before the name (吉治疗费, 财护理费: the stamp crosses the name column): one
    # ideograph, then a category of three or more characters. No national category is one ideograph longer than
    # another, so this cuts no printed category; a name one character off a category of its length is left to
    # that (中西药费 misread is not 西药费 behind a stamp). Two characters before (门诊检查费) are printed names.
    rest = value[1:]
    whole = [c for c in CATEGORIES if len(c) == len(value) + 1 and c.endswith(value)]
    if rest in CATEGORIES and len(rest) >= 3 and _IDEOGRAPH.fullmatch(value[0]) and not near and not whole:
        return _renamed(f, rest, f"read {value!r}: a stamp's {value[0]!r} before the fee category {rest!r}")
    # and the category's first ideograph lost under it (药饮片费 for 中药饮片费): four or more characters that end
    # exactly one category, one ideograph longer (shorter ends, 成药费 or 草药费, could be printed so). Read either
    # way (殊检查费: 特殊检查费, or 检查费 behind a stamp's 殊?), a name is left as read.
    if len(value) >= 4 and value.endswith("费") and len(whole) == 1 and not near and rest not in CATEGORIES:
        return _renamed(f, whole[0], f"read {value!r}: the fee category {whole[0]!r} with its first character lost "
                                     "(a stamp)")
    how = "one character off the fee category"
    seconds = _runner_ups(value, cells) if len(near) > 1 else {}
    if seconds:
        backed = [c for c in near if any(a != b and b in seconds.get(i, ()) for i, (a, b) in enumerate(zip(value, c)))]
        if len(backed) == 1:
            near, how = backed, f"the recogniser's runner-up there spells the fee category (not {' or '.join(sorted(set(near) - set(backed)))}):"
    national = [c for c in near if c in NATIONAL_CATEGORIES]
    if len(near) > 1 and len(national) == 1 and _unsure_where_they_differ(value, near, seconds):
        # 检室费, its 室 read unsure, is one off 检查费 and 检验费: the national standard's item, not the regional
        # spelling. A character read sure is printed (医药费, 成药费: one off 西药费 and 中药费) and stays.
        how = f"one unsure character off the national standard's fee category (and the regional {' or '.join(sorted(set(near) - set(national)))}):"
        near = national
    if len(near) != 1:
        return f
    # only a misread ideograph is put right: a letter (B超费) is printed as it is, not a misread 彩
    if not all(_IDEOGRAPH.fullmatch(a) for a, b in zip(value, near[0]) if a != b):
        return f
    return _renamed(f, near[0], f"read {value!r}, {how} {near[0]!r}")


# ---------------------------------------------------------------------------------------------
# Labelled fields


# the terms of the payment splits claims.checks builds (统筹 + 个人自付 + 个人自费, 统筹 + 个人账户 + 个人现金)
_SPLIT_TERMS = frozenset(k.value for k in (PaymentKey.fund, PaymentKey.self_pay, PaymentKey.self_expense,
                                           PaymentKey.account, PaymentKey.cash))


def labelled_fields(cells: list[Cell], skip: set[int], line_height: float,
                    labels: LabelSet = BILL_LABELS) -> dict[str, dict[str, BillField]]:
    """Every label on the page with its value: the rest of its segment, else the nearest cell to its
    right on its row (an offset, pre-printed form) unless that cell is itself a label."""
    out: dict[str, dict[str, BillField]] = {"header": {}, "payments": {}, "totals": {}}
    free = [c for c in cells if c.index not in skip]
    found = {c.index: labels.find(c.key) for c in free}
    taken: set[int] = set()
    dy = _print_shift(free, found, labels, OFFSET_GAP * line_height)
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
            cut = n + 1 < len(in_cell)  # the value ends where the next label starts
            if not raw and n + 1 == len(in_cell):
                nb = _offset_value(cell, free, OFFSET_GAP * max(cell.height, line_height), lab, taken, dy)
                if nb is not None and nb.index not in taken and not (found[nb.index] and found[nb.index][0][0] == 0):
                    raw, source = nb.text.strip(), nb
                    if lab.key == "hospital":
                        raw = _STAMP_NOTE.sub("", raw).strip()
                    if found[nb.index]:
                        # the value runs on into the next label (3836.73 个人账户支付:): the value is what
                        # comes before it, and the neighbour's own label is still read
                        _, nb_where = _squeeze(nb.text)
                        raw = _original(nb.text, nb_where, 0, found[nb.index][0][0]).strip()
                        cut = True
                    else:
                        taken.add(nb.index)
            if not raw and n + 1 == len(in_cell) and (nb := _value_below(cell, free, lab, found, taken)) is not None:
                raw, source = nb.text.strip(), nb
                taken.add(nb.index)
            if not raw:
                if lab.key in _SPLIT_TERMS and lab.key not in out["payments"]:
                    # a split's term with nothing read beside it: kept unread, so that the split may prove it 0
                    # (claims.repair.zero_unread_payments) or the claim says it is unread
                    out["payments"][lab.key] = make_field(lab.key, "", lab.kind, cell).model_copy(
                        update={"note": "nothing read beside its label"})
                continue
            if lab.key == "total_words" and (m := _WORDS_THEN_FIGURE.fullmatch(raw)):
                raw = m[1]  # the total in figures printed after the words (total_on_words_row reads it)
            if lab.kind is FieldKind.text and not cut and not (lab.key == "hospital" and _INSTITUTION_END.search(raw)):
                # (a name that already ends as an institution's does is whole: what follows is the seal's ring)
                raw, source = _continued(raw, source, free, found, taken)
            if lab.kind is FieldKind.text:
                # a remark line strings fields together (住院天数:4;起付线:1200.00): the value ends at a separator
                raw = _without_trailing_label(re.split(r"[;；,，]", raw, maxsplit=1)[0].strip())
            elif lab.kind is FieldKind.amount:
                # ... so does a payment line (统筹基金支付:2000.00;个人账户支付:457.20): an amount ends at a
                # semicolon, and a comma after its last figure is a separator (inside, it groups thousands)
                raw = re.split(r"[;；]", raw, maxsplit=1)[0].strip().rstrip(",，。").strip()
            if lab.target in ("header", "payments"):
                slot = out[lab.target]
            else:
                slot = out["totals"]
            if lab.key not in slot or not slot[lab.key].raw:  # a value read wins over a label read blank
                slot[lab.key] = make_field(lab.key, raw, lab.kind, source, digits=lab.digits)
    return out


# the total in words with the total in figures read into its cell: the words, and the figure
_WORDS_THEN_FIGURE = re.compile(r"(.*?[元角分整正])\s*[:：]?\s*([¥￥$]?\s*[:：]?\s*[0-9][0-9,]*(?:\.[0-9]+)?)")
_ALL_LITERALS = tuple(sorted({alt for lab in LABELS for alt in lab.pattern.split("|")
                              if len(alt) >= 2 and re.fullmatch(r"[\u4e00-\u9fff]+", alt)}, key=len, reverse=True))


def _without_trailing_label(raw: str) -> str:
    """A text value run on into the next label with no value of its own (医保类型:郑州市医保住院料室:): the
    label is cut off when it is a known label, or one misread ideograph off one of four or more characters
    (住院料室 for 住院科室), standing right before a final colon."""
    text = nfkc(raw)
    if not text.endswith(":"):
        return raw
    body = text[:-1]
    for lit in _ALL_LITERALS:
        tail = body[len(body) - len(lit):]
        if len(body) > len(lit) and (tail == lit or (len(lit) >= 4 and Levenshtein.distance(tail, lit) == 1)):
            return body[:len(body) - len(lit)].strip()
    return raw


def _fits(lab: Label, text: str) -> bool:
    """Whether a text can be the value of ``lab`` by its grammar: a date parses as one, an amount starts
    with a figure, a digits-only field (codes, numbers) has no date in it."""
    key = "".join(nfkc(text).split())
    if lab.kind is FieldKind.date:
        return bool(_DATE.fullmatch(key) or _DATE.fullmatch(_refold(key)))
    if lab.kind is FieldKind.amount and lab.target != "total_words":
        return bool(re.match(r"[¥$Y]?:?[0-9OolS]", key))
    if lab.digits:
        return not _DATE.fullmatch(key)
    return True


def _offset_value(cell: Cell, free: list[Cell], max_gap: float, lab: Label, taken: set[int],
                  dy: float = 0.0) -> Cell | None:
    """The value of a label whose own cell holds none: the nearest cell to its right on its row
    (``right_neighbour``), the row taken ``dy`` below the label (the page's printed layer, ``_print_shift``).
    Where a dot-matrix offset puts two rows' values level with the label (校验码 between f04e above and
    2021-02-10 below), of the values level with the nearest one, one that fits the label's grammar, and
    of those the one nearest the shifted row."""
    at = replace(cell, y0=cell.y0 + dy, y1=cell.y1 + dy) if dy else cell
    nb = right_neighbour(at, free, max_gap)
    if nb is None:
        return None
    level = [nb]
    rest = [c for c in free if c is not nb and c.index not in taken]
    while (other := right_neighbour(at, rest, max_gap)) is not None:
        if other.x0 > nb.x0 + 2 * cell.height:
            break  # only values level with the first one compete with it
        level.append(other)
        rest.remove(other)
    fitting = [c for c in level if _fits(lab, c.text)]
    if not fitting:
        return nb
    return min(fitting, key=lambda c: (abs(c.cy - at.cy), c.x0))


_DAYS = re.compile(r"\d{1,3}(?:\.\d)?天?")


def _value_below(cell: Cell, cells: list[Cell], lab: Label, found: dict, taken: set[int]) -> Cell | None:
    """The value of a label printed as a column title (入院日期 | 出院日期 | 住院天数 on one row, the values on
    the next): the nearest cell below it, within two line heights, that lies under the label and is no label.
    Only for values of a strict grammar (a date, a count of days), which the cell must fit: a title over
    free text could take any cell below it."""
    if lab.kind is not FieldKind.date and lab.key != "stay_days":
        return None
    below = [c for c in cells if c.index not in taken and not found.get(c.index) and c.x0 < cell.x1 and c.x1 > cell.x0
             and 0.5 * cell.height < c.cy - cell.cy <= 2 * max(cell.height, c.height)]

    def fits(c: Cell) -> bool:
        text = "".join(nfkc(c.text).split())
        if lab.kind is FieldKind.date:
            return bool(_DATE.fullmatch(text) or _TIGHT_DATE.fullmatch(text))
        return bool(_DAYS.fullmatch(text))

    return min((c for c in below if fits(c)), key=lambda c: c.cy, default=None)


def _print_shift(cells: list[Cell], found: dict[int, list], labels: LabelSet, max_gap: float) -> float:
    """How far below its pre-printed labels (negative: above) a dot-matrix printer put the values.

    Why: on a form filled by a dot-matrix printer the whole printed layer sits where the paper did, often
    half a row above or below the labels, so a label's own row can hold its value and the next row's
    (校验码 level with f04e above and 2021-02-10 below). The shift is the one that puts a value fitting
    its label's grammar nearest level with most of the labels that hold no value of their own, tried at
    every label-to-candidate offset within a line height; taken only when it fits clearly more labels
    (three or more, and more than a quarter of them) than no shift."""
    empty = []
    for c in cells:
        hits = found.get(c.index)
        if not hits or hits[-1][1] < len(c.key) - 1:
            continue  # no label, or the label's value is in its own cell
        lab = hits[-1][2]
        cands = [o for o in cells if o is not c and o.x0 >= c.x1 - 0.3 * c.height and o.x0 - c.x1 <= max_gap
                 and abs(o.cy - c.cy) <= c.height and not found.get(o.index) and _fits(lab, o.text)]
        if cands:
            empty.append((c, cands))
    if len(empty) < 3:
        return 0.0

    def score(dy: float) -> int:
        n = 0
        for c, cands in empty:
            nearest = min(cands, key=lambda o: (abs(o.cy - c.cy - dy) > 0.6 * c.height, o.x0))
            n += abs(nearest.cy - c.cy - dy) <= 0.25 * c.height
        return n

    shifts = sorted({round(o.cy - c.cy) for c, cands in empty for o in cands}, key=abs)
    base = score(0.0)
    best, best_dy = base, 0.0
    for dy in shifts:
        if (sc := score(dy)) > best:
            best, best_dy = sc, float(dy)
    return best_dy if best >= base + max(3, 0.25 * len(empty)) else 0.0


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
    # in simplified glyphs, as ``Cell.key`` is (a label printed or read 個人自費 is still 个人自费); the
    # conversion keeps the length, so ``where`` still maps each character back
    return simplify("".join(chars)), where


def _original(text: str, where: list[int], start: int, stop: int) -> str:
    """The original characters behind key positions ``start:stop``."""
    if start >= len(where):
        return ""
    end = where[stop] if stop < len(where) else len(text)
    return text[where[start]:end]


_CURRENCY_CELL = re.compile(r"[¥$Y][:]?")  # a currency sign printed (or read, as Y) apart from the figure


def total_on_words_row(cells: list[Cell], totals: dict[str, BillField]) -> BillField | None:
    """The total in figures printed on the row of the total in words without a (小写) label of its own
    (合计(大写) 壹佰零贰元肆角壹分 ¥: 102.41): the nearest cell right of the words that opens with a figure
    (a currency sign before it, in it or in a cell of its own; a label after it is cut off)."""
    words = totals.get("total_words")
    label = next((c for c in cells if re.search(r"合计|大写", c.key)), None)
    anchor = next((c for c in cells if words is not None and c.box == words.box), None) or label
    if anchor is None:
        return None
    if words is not None and (m := _WORDS_THEN_FIGURE.fullmatch(anchor.key)):
        # 叁仟叁佰肆拾陆元贰角 ¥3346.20: the figure read into the words' own cell
        f = make_field("total_figures", m[2], FieldKind.amount, anchor)
        if f.value is not None:
            return f.model_copy(update={"raw": m[2], "note": "the figure printed after the total in words"})
    row = sorted((c for c in cells if c.x0 > anchor.x1 - 2 and same_row(c, anchor, 0.6)), key=lambda c: c.x0)
    for c in row:
        if _CURRENCY_CELL.fullmatch(c.key):
            continue
        key = c.key.lstrip("Y")
        if not re.match(r"[¥$]?:?[0-9]", key):
            continue
        f = make_field("total_figures", key, FieldKind.amount, c)
        if f.value is not None:
            return f.model_copy(update={"raw": c.text.strip()})
    return None


# the stay as one period: 住院时间, 住院日期, 住院期间, 住院起止日期, 入出院日期 (not 住院日期 beside 出院日期)
_STAY_LABELS = ("住院起止日期", "住院起止时间", "住院时间", "住院日期", "住院期间")  # longest first, as the regex tries them
_IN_OUT_LABELS = ("入出院日期", "入出院时间")
_PERIODS = (*_STAY_LABELS, *_IN_OUT_LABELS)
_PERIOD_LABEL = re.compile(f"(?:{'|'.join(_STAY_LABELS)}|住院起止)(?!.*出院)|{'|'.join(_IN_OUT_LABELS)}")


def _misread_period(key: str) -> int | None:
    """Where the value starts after a stay-period label with one ideograph misread (住院时问:20210318|20210506),
    or None. Only with two dates after it: 人院时间 is also one off 入院时间, whose value is one date."""
    head, colon, rest = key.partition(":")
    if not colon or BILL_LABELS.find(head) or len(list(_ANY_DATE.finditer(rest))) != 2:
        return None
    near = [p for p in _PERIODS if len(p) == len(head) and Levenshtein.distance(p, head) == 1]
    return len(head) + 1 if near and all(_IDEOGRAPH.fullmatch(a) for a, b in zip(head, near[0]) if a != b) else None


_ANY_DATE = re.compile(rf"(\d{{4}})(?:{_DSEP}|年)(\d{{1,2}})(?:{_DSEP}|月)(\d{{1,2}})日?|(?<![0-9])(\d{{4}})(\d{{2}})(\d{{2}})(?![0-9])")


def stay_period(cells: list[Cell]) -> dict[str, BillField]:
    """住院时间 2021-04-23 到 2021-04-24 (or 20201217|20201223): the admission and discharge dates, from
    the label's cell and the cells after it on its row up to the next label."""
    for c in cells:
        m = _PERIOD_LABEL.search(c.key)
        end = m.end() if m else _misread_period(c.key)
        if end is None:
            continue
        parts = [(c, c.key[end:])]
        # the cells after it on its row (OCR's boxes may overlap by a few pixels)
        for nb in sorted((o for o in cells if o.x0 > c.x1 - 0.5 * c.height and o is not c and same_row(o, c, 0.6)),
                         key=lambda o: o.x0):
            if hits := BILL_LABELS.find(nb.key):
                parts.append((nb, nb.key[:hits[0][0]]))  # 到 2021-04-30 住院号:4938: what comes before the label
                break
            parts.append((nb, nb.key))
        dates = [(cell, d) for cell, text in parts for d in _ANY_DATE.finditer(text)]
        if not dates and m and m.end() >= len(c.key) - 1:
            # the label as a column title, the period on the line below it (within two line heights)
            below = [o for o in cells if o.x0 < c.x1 and o.x1 > c.x0 and 0.5 * c.height < o.cy - c.cy <= 2 * c.height]
            nearest = min(below, key=lambda o: o.cy, default=None)
            if nearest is not None and not BILL_LABELS.find(nearest.key):
                dates = [(nearest, d) for d in _ANY_DATE.finditer(nearest.key)]
        if not 1 <= len(dates) <= 2:
            continue
        out = {}
        # one date alone is where the stay began (the discharge is printed elsewhere: 出院时间 in a remark)
        note = "from the stay period (住院时间)" if len(dates) == 2 else "the stay period's (住院时间) only date: its start"
        for key, (cell, d) in zip(("admitted", "discharged"), dates):
            y, mo, da = (d[1], d[2], d[3]) if d[1] else (d[4], d[5], d[6])
            out[key] = make_field(key, f"{y}-{mo}-{da}", FieldKind.date, cell).model_copy(
                update={"raw": d[0], "note": note})
        return out
    return {}


_HOSPITAL = re.compile(r"^(.*(?:医院|卫生院|保健院|诊所))|^(.*中心)")


_HOSPITAL_NAME = re.compile(r"[\u4e00-\u9fff()]{2,24}(?:医院|卫生院|保健院|诊所|医疗中心)")


# what 医疗机构类型 says (综合医院, 三级甲等专科医院, 妇幼保健院): a kind of institution, never one's name
_INSTITUTION_TYPE = re.compile(r"(?:[一二三]级)?(?:[甲乙丙]等)?(?:综合|专科|中医|中西医结合|民族医|妇幼保健|妇幼|社区卫生服务|"
                               r"乡镇卫生|精神|传染病|康复|口腔|眼科|儿童|肿瘤)?(?:医院|卫生院|保健院|中心)")
_INSTITUTION_END = re.compile(r"(?:医院|卫生院|保健院|诊所|中心|卫生室|卫生站|门诊部)$")


def _is_hospital(f: BillField | None) -> bool:
    return f is not None and isinstance(f.value, str) and _INSTITUTION_END.search(f.value) is not None


def _hospital_cleaned(f: BillField) -> BillField:
    """A hospital name without the stamp's or bracket's leftovers before it (``)辅中瘤医院``)."""
    if not isinstance(f.value, str):
        return f
    value = re.sub(r"^[^\u4e00-\u9fffA-Za-z0-9]+", "", f.value)
    return f.model_copy(update={"value": value or None}) if value != f.value else f


def hospital_near_label(cells: list[Cell]) -> BillField | None:
    """A hospital's name printed on a line of its own near 收款单位 (below it, on a pre-printed form filled
    by a dot-matrix printer): the nearest cell that is a whole hospital name and no label."""
    label = next((c for c in cells if c.key.startswith("收款单位")), None)
    if label is None:
        return None
    names = [c for c in cells if _HOSPITAL_NAME.fullmatch(c.key) and not BILL_LABELS.find(c.key)
             and not _INSTITUTION_TYPE.fullmatch(c.key)]
    near = [c for c in names if abs(c.cy - label.cy) < 4 * label.height]
    if not near:
        return None
    best = min(near, key=lambda c: math.hypot(c.x0 - label.x0, c.cy - label.cy))
    return make_field("hospital", best.text, FieldKind.text, best)


def hospital_from_title(cells: list[Cell], page_height: float) -> BillField | None:
    """Itemised lists print the hospital above (or before) the title rather than as 收款单位."""
    for c in cells:
        if c.cy > 0.25 * page_height:
            break
        m = _HOSPITAL.match(c.key)
        if m and not _INSTITUTION_TYPE.fullmatch(m[1] or m[2]) and not BILL_LABELS.find(c.key):
            # 综合医院 at the top of a dot-matrix form is what 医疗机构类型 says, never the hospital's name; nor
            # is a labelled line (医疗机构类型:综合医院): a field, not a name above the title
            return make_field("hospital", m[1] or m[2], FieldKind.text, c)
    return None


# the seal's own words around the hospital's name in its ring (贵州省人民医院 收费专用章, 吉林大学第一医院住院处)
_SEAL_WORDS = re.compile(r"(?:电子)?(?:票据|收费|财务|结算|发票|住院|门诊)?专用章|住院处|门诊部|收费处|结算处|"
                         r"(?:现金|转账)?收讫")
# the words of any stamp (a reimbursement office's too: 报销专用, 理赔专用章), which name no fee
_STAMP_WORDS = re.compile(r"报销|理赔|收讫|专用章|已付讫")
# the first name in a reading: it goes round the ring and on for a third, so a name may come twice
_SEAL_NAME = re.compile(r"[\u4e00-\u9fff]{2,24}?(?:医院|卫生院|保健院|诊所|中心|卫生室|卫生站)")


SEAL_SHARES = 0.6  # share of the printed name's characters the seal's reading must hold, in order, to fill it in


def seal_names(page: Page) -> list[tuple[str, float, tuple]]:
    """Hospital names read in the rings of the page's red seals (``ocr.seals``), each with the recogniser's
    confidence and the seal's box, the most often read first (then the surest): every seal is read twice, so
    a name both readings agree on leads."""
    found: dict[str, list[tuple[float, tuple]]] = {}
    for seal in page.seals:
        for text, confidence in seal.readings:
            for part in _SEAL_WORDS.split(simplify("".join(nfkc(text).split()))):
                if (m := _SEAL_NAME.search(part)) and not _INSTITUTION_TYPE.fullmatch(m[0]):
                    found.setdefault(m[0], []).append((confidence, seal.box))
    ranked = sorted(found.items(), key=lambda kv: (-len(kv[1]), -max(kv[1])[0]))
    return [(name, *max(seen)) for name, seen in ranked]


# words hospitals' names are made of: where print and seal read different characters, the one that makes such a
# word with its neighbours is taken (遵义医到大子附属医院 beside the seal's 医科大学附属医院: 医科, 大学)
_NAME_WORDS = ("医科", "大学", "学院", "附属", "人民", "中医", "西医", "中心", "第一", "第二", "第三", "第四", "第五",
               "肿瘤", "儿童", "妇幼", "保健", "妇产", "医院", "省立", "市立", "口腔", "眼科", "胸科", "传染", "精神",
               "康复", "急救", "红十字", "职工", "铁路", "中西医", "结合", "医学", "卫生", "军区", "总医院", "东方", "中南")


def _words_in(text: str) -> int:
    return sum(text.count(w) for w in _NAME_WORDS)


def _fill_gaps(printed: str, seal: str, *, seal_surer: bool, runner_ups: dict[int, set[str]]) -> tuple[str, bool]:
    """The printed name with the characters the seal shows between two it shares with it, and whether print and
    seal still disagree somewhere inside. Where both read other characters, the seal's are taken when it read
    more of them there, was read more surely than the print, reads what the recogniser nearly read in the print
    (遵义医到大附属医院, 科 the runner-up for 到, under the seal; 医科大学附属医院 in its ring), or makes a word of
    hospitals' names with its neighbours where the print's makes none (医到大 → 医科大); the print's ends stand (a
    seal's reading starts and ends in its own words and ornaments: 与遵义…, …医院店)."""
    ops = list(Levenshtein.opcodes(printed, seal))
    shared = [k for k, o in enumerate(ops) if o.tag == "equal"]
    out = []
    disagree = False
    for k, o in enumerate(ops):
        inside = bool(shared) and shared[0] < k < shared[-1]
        more = o.dest_end - o.dest_start - (o.src_end - o.src_start)
        nearly = more == 0 and all(seal[o.dest_start + i] in runner_ups.get(o.src_start + i, ())
                                   for i in range(o.src_end - o.src_start))
        left, right = printed[max(0, o.src_start - 1):o.src_start], printed[o.src_end:o.src_end + 1]
        worded = more == 0 and (_words_in(left + seal[o.dest_start:o.dest_end] + right)
                                > _words_in(left + printed[o.src_start:o.src_end] + right))
        seal_part = o.tag == "insert" or (o.tag == "replace" and (more > 0 or (more == 0 and seal_surer) or nearly
                                                                  or worded))
        out.append(seal[o.dest_start:o.dest_end] if inside and seal_part else printed[o.src_start:o.src_end])
        disagree |= inside and o.tag == "replace" and not seal_part  # (a character the seal lacks is no dispute)
    return "".join(out), disagree


def with_seal_name(printed: BillField | None, names: list[tuple[str, float, tuple]],
                   runner_ups: dict[int, set[str]] | None = None) -> BillField | None:
    """The hospital's name with what its seal shows: the printed reading is the spine, the seal fills in the
    characters it lost (贵州民院 + 贵州省人民医院 → 贵州省人民医院), and the ones it misread where the seal was
    read more surely or reads the print's runner-up (``runner_ups``, by index in the printed value); with no name
    printed, the seal's name. A field built from the seal is always reviewed:
    it is two readings joined, not one."""
    if not names:
        return printed
    seal, confidence, box = names[0]
    text = printed.value if printed is not None and isinstance(printed.value, str) else ""
    if text and LCSseq.similarity(text, seal) < SEAL_SHARES * len(text):
        return printed  # the print names another institution than the seal, or is no name at all: left to review
    merged, disagree = (_fill_gaps(text, seal, seal_surer=confidence > printed.confidence, runner_ups=runner_ups or {})
                        if text else (seal, False))
    if merged == text:
        if disagree and not printed.needs_review:  # two witnesses of the name differ: a clerk looks
            return printed.model_copy(update={"needs_review": True, "note": "; ".join(
                x for x in (printed.note, f"the red seal reads otherwise ({seal!r})") if x)})
        return printed  # the print is whole
    note = f"read in the red seal ({seal!r}, confidence {confidence:.2f})" + (f"; printed {text!r}" if text else "")
    base = printed or BillField(name="hospital", kind=FieldKind.text, confidence=confidence, box=box)
    return base.model_copy(update={"value": merged, "raw": base.raw or seal, "needs_review": True,
                                   "confidence": min(base.confidence, confidence), "note": note})


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
    cells = fix_sex_label(fix_twice_misread_labels(fix_misread_labels(unstack(cells, height))))
    header = _header_row(cells)
    items: list[LineItem] = []
    used: set[int] = set()
    if header is not None:
        itemised = any(re.search(r"单价|数量|规格", h.key) for h in header)
        receipt = doc_type is not DocumentType.itemised_list
        items, used = (itemised_table(cells, header, align=True, snap=receipt) if itemised
                       else category_grid(cells, header))
    stream, stream_used = stream_items(cells, header, used if not items else set())
    if _readable(stream) > _readable(items) and _readable(items) < len(items) or (not items and stream):
        # items printed as whole name:amount cells across a titled grid (化验费:405.45 | 治疗93.74) read
        # better as a stream than by the columns they ignore: the reading that gives more whole items
        items, used = stream, used | stream_used
    # a stamp's words over the grid (报销专用 of a reimbursement seal, 现金收讫) are no fee, whatever figure is beside them
    items = [i for i in items if not _STAMP_WORDS.search(str(i.name.value or ""))]
    found = labelled_fields(cells, used, height)
    if "total_figures" not in found["totals"] and (total := total_on_words_row(cells, found["totals"])) is not None:
        found["totals"]["total_figures"] = total
    head = found["header"]
    for key, f in stay_period(cells).items():
        if head.get(key) is None or head[key].value is None:  # 出院日期 inside 入出院日期 read the period as its value
            head[key] = f
    if (f := head.get("hospital")) is not None:
        head["hospital"] = _hospital_cleaned(f)
        if isinstance(head["hospital"].value, str) and _SEAL_WORDS.search(head["hospital"].value) \
                and not _is_hospital(head["hospital"]):
            # 收款单位（章） beside the seal's own 电子票据专用章 (or 香收费专用章, a ring's character before it): the
            # stamp's words, no name
            del head["hospital"]
    if not _is_hospital(head.get("hospital")) and (h := hospital_near_label(cells) or hospital_from_title(cells, page.height)):
        # no name after 收款单位, or no institution's name there (a stamp's text, a misread): a whole
        # hospital name printed on its own near the label or above the title is the hospital
        head["hospital"] = h
    if page.seals:
        printed = head.get("hospital")
        nearly = _runner_ups(printed.value, cells) if printed is not None and isinstance(printed.value, str) else {}
        if (h := with_seal_name(printed, seal_names(page), nearly)) is not None:
            head["hospital"] = h
    claim = Claim(doc_type=doc_type, header=head, items=tuple(items),
                  total_figures=found["totals"].get("total_figures"), total_words=found["totals"].get("total_words"),
                  payments=found["payments"], findings=tuple(missing(doc_type, items, found)), **base)
    return verify_claim(claim) if verify else claim


def _readable(items: list[LineItem]) -> int:
    """How many items have a name and an amount that parses."""
    return sum(1 for i in items if i.name.value and i.amount.value is not None)


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
