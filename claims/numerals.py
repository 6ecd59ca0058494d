"""Amounts as printed on bills → ``Decimal``: Chinese financial numerals (大写) and figures (小写).

Why a strict parser: the total in words is an independent reading of the total in figures, and the
check between them is only worth something if a misread character makes the words *fail* rather than
quietly mean another number. So malformed numerals (two digits in a row, 零 before a unit, units out of
order, a bare number without 元/角/分) raise ``NumeralError`` with the position of the offending
character instead of being guessed at; the single-digit repair in ``claims.repair`` does the guessing,
under the checks' control. Legitimate variants are accepted: traditional forms (貳 陸 萬 億 圓 參 …),
plain numerals (一二三 十百千, 两, 〇), 整/正 after 元 or 角, a 零 before the fen, a leading 人民币.

Figures accept what printers and OCR produce for the same number: ``¥1,234.56``, ``￥1234.5``,
full-width digits, spaces or thin spaces between digit groups, a trailing 元, a leading minus.
Letters that look like digits (O, l, S …) and an ideographic full stop are *not* mapped here: a field
whose grammar makes that safe is repaired by ``claims.repair`` and says so in its provenance.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

__all__ = ["AmountError", "NumeralError", "parse_amount", "parse_chinese_integer", "parse_financial"]


class NumeralError(ValueError):
    """A string that is not a well-formed Chinese numeral; ``position`` indexes the offending char."""

    def __init__(self, message: str, text: str, position: int):
        super().__init__(f"{message} at position {position} in {text!r}")
        self.text, self.position = text, position


class AmountError(ValueError):
    """A string that is not an amount in figures; ``position`` indexes the offending char (or -1)."""

    def __init__(self, message: str, text: str, position: int):
        super().__init__(f"{message} at position {position} in {text!r}")
        self.text, self.position = text, position


DIGITS: dict[str, int] = {}
for _chars, _d in (("零〇○", 0), ("壹一弌", 1), ("贰貳二两兩弍", 2), ("叁參三弎", 3), ("肆四", 4), ("伍五", 5),
                   ("陆陸六", 6), ("柒七", 7), ("捌八", 8), ("玖九", 9)):
    DIGITS.update(dict.fromkeys(_chars, _d))
SMALL_UNITS = {**dict.fromkeys("拾十什", 10), **dict.fromkeys("佰百", 100), **dict.fromkeys("仟千", 1000)}
BIG_UNITS = {**dict.fromkeys("万萬", 10**4), **dict.fromkeys("亿億", 10**8)}
YUAN, JIAO, FEN, WHOLE = set("元圆圓"), set("角"), set("分"), set("整正")
_PREFIXES = ("人民币", "人民幣", "RMB", "rmb", "¥")  # ¥ (or ￥): printed before the words too


def _squeeze(text: str) -> tuple[str, list[int]]:
    """NFKC-normalise ``text`` and drop whitespace, keeping each kept char's index in ``text``."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch):
            if not c.isspace():
                chars.append(c)
                where.append(i)
    return "".join(chars), where


def parse_chinese_integer(text: str) -> int:
    """A non-negative integer in Chinese numerals, financial or plain: 壹万零叁拾 → 10030, 两百 → 200.

    Units inside a group below 万 must fall (仟 > 佰 > 拾); a bare 拾/十 may open the number (十五 = 15);
    零 may stand between digits but never right before a unit; a digit after 佰 or 仟 needs a 零 before
    it (壹佰伍 is ambiguous: 105 or 150), a digit after 拾 does not.
    """
    s, where = _squeeze(text)
    try:
        return _integer(s)
    except NumeralError as exc:
        raise NumeralError(exc.args[0].split(" at position")[0], text,
                           where[exc.position] if 0 <= exc.position < len(where) else exc.position) from None


def _integer(s: str, offset: int = 0, whole: str | None = None) -> int:
    whole = s if whole is None else whole
    if not s:
        raise NumeralError("empty number", whole, offset)
    total = 0  # everything up to the last 亿
    wan = 0  # the 万 group since the last 亿
    section = 0  # the group below 万
    pending: int | None = None  # a digit waiting for its unit
    pending_ok = True  # may ``pending`` stand alone (after 拾 or 零, or as the first character)?
    last_small = 10**4  # the last small unit used in this group (units must fall)
    seen_wan = False
    prev_zero = False
    for i, ch in enumerate(s):
        pos = offset + i
        if ch in DIGITS:
            d = DIGITS[ch]
            if pending is not None:
                raise NumeralError("two digits without a unit between them", whole, pos)
            if d == 0:
                if prev_zero:
                    raise NumeralError("repeated 零", whole, pos)
                prev_zero = True
                continue
            pending, pending_ok = d, prev_zero or last_small == 10 or i == 0
            prev_zero = False
            continue
        if (ch in SMALL_UNITS or ch in BIG_UNITS) and prev_zero:
            raise NumeralError("零 right before a unit", whole, pos)
        if ch in SMALL_UNITS:
            unit = SMALL_UNITS[ch]
            if pending is None:
                if unit != 10 or i != 0:
                    raise NumeralError(f"{ch} without a digit", whole, pos)
                pending = 1
            if unit >= last_small:
                raise NumeralError(f"unit {ch} out of order", whole, pos)
            section += pending * unit
            last_small, pending = unit, None
        elif ch in BIG_UNITS:
            if pending is not None and not pending_ok:
                raise NumeralError("digit without a unit", whole, pos - 1)
            current = section + (pending or 0)
            if BIG_UNITS[ch] == 10**8:
                if current == 0 and wan == 0:
                    raise NumeralError(f"{ch} without a number", whole, pos)
                total = (total + wan + current) * 10**8
                wan, seen_wan = 0, False
            else:
                if current == 0:
                    raise NumeralError(f"{ch} without a number", whole, pos)
                if seen_wan:
                    raise NumeralError(f"{ch} twice", whole, pos)
                wan, seen_wan = current * 10**4, True
            section, pending, last_small = 0, None, 10**4
        else:
            raise NumeralError(f"unexpected character {ch!r}", whole, pos)
    if prev_zero and (total or wan or section or pending):
        raise NumeralError("trailing 零", whole, offset + len(s) - 1)
    if pending is not None and not pending_ok:
        raise NumeralError("digit without a unit", whole, offset + len(s) - 1)
    return total + wan + section + (pending or 0)


def parse_financial(text: str) -> Decimal:
    """Money in Chinese numerals (金额合计(大写)) → Decimal with two places.

    >>> parse_financial("壹仟贰佰叁拾肆元伍角陆分"), parse_financial("壹拾贰万零叁拾肆元伍角")
    (Decimal('1234.56'), Decimal('120034.50'))
    >>> parse_financial("零元整"), parse_financial("伍角"), parse_financial("壹仟零壹元零壹分")
    (Decimal('0.00'), Decimal('0.50'), Decimal('1001.01'))
    """
    s, where = _squeeze(text)
    try:
        return _financial(s)
    except NumeralError as exc:
        pos = exc.position
        raise NumeralError(exc.args[0].split(" at position")[0], text,
                           where[pos] if 0 <= pos < len(where) else pos) from None


def _financial(s: str) -> Decimal:
    start = 0
    for p in _PREFIXES:
        if s.startswith(p):
            start = len(p)
            break
    if s[start:start + 1] in (":", "："):
        start += 1
    if start >= len(s):
        raise NumeralError("no numeral", s, start)
    positions = {name: [i for i in range(start, len(s)) if s[i] in chars]
                 for name, chars in (("元", YUAN), ("角", JIAO), ("分", FEN))}
    if not any(positions.values()):
        raise NumeralError("no 元, 角 or 分", s, len(s) - 1)
    for seen in positions.values():
        if len(seen) > 1:
            raise NumeralError(f"{s[seen[1]]} twice", s, seen[1])
    yuan, i = 0, start
    if positions["元"]:
        yuan_at = positions["元"][0]
        yuan = _integer(s[start:yuan_at], start, s)
        i = yuan_at + 1
    if i < len(s) and s[i] in WHOLE:  # 壹佰元整
        if i != len(s) - 1:
            raise NumeralError("text after 整", s, i + 1)
        return Decimal(yuan).quantize(CENT)
    if positions["元"] and i + 1 < len(s) and DIGITS.get(s[i]) == 0 and s[i + 1] not in JIAO:
        i += 1  # 壹元零伍分: this 零 stands for the missing jiao
    jiao = fen = 0
    if i + 1 < len(s) and s[i] in DIGITS and s[i + 1] in JIAO:
        jiao, i = DIGITS[s[i]], i + 2
    if i + 1 < len(s) and s[i] in DIGITS and s[i + 1] in FEN:
        fen, i = DIGITS[s[i]], i + 2
    if i == len(s) - 1 and s[i] in WHOLE and (jiao or fen):
        i += 1  # 伍角整 (the rules allow it after 角; some printers put it after 分 too)
    if i != len(s):
        raise NumeralError(f"unexpected {s[i]!r}", s, i)
    return (Decimal(yuan) + Decimal(jiao) / 10 + Decimal(fen) / 100).quantize(CENT)


CENT = Decimal("0.01")
_CURRENCY = "¥$"
# a currency sign may be followed by a colon (``¥:102.41``, as some e-receipts print it); a bare zero may
# end in its decimal point (``0.``: dot-matrix forms print an empty payment so), no other number may: a
# figure whose decimals were lost is an OCR error, not a whole number
_AMOUNT = re.compile(r"(?P<sign>[+-]?)(?:[¥$]:?)?(?P<sign2>[+-]?)(?P<num>[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)"
                     r"(?P<frac>\.[0-9]+|(?<![0-9]0)(?<=0)\.)?元?")


def parse_amount(text: str) -> Decimal:
    """Money in figures → Decimal, as printed (no rounding): '¥1,234.56' → Decimal('1234.56').

    Full-width forms (１２３４．５６, ￥) are folded by NFKC; whitespace anywhere is dropped; thousands
    separators must group by three (``12,34.5`` is an OCR error, not a number).
    """
    s, where = _squeeze(text)
    m = _AMOUNT.fullmatch(s)
    if not m or (m["sign"] and m["sign2"]):
        if not s:
            raise AmountError("no figures", text, -1)
        allowed = set("0123456789.,+-元") | set(_CURRENCY)
        bad = next((i for i, ch in enumerate(s) if ch not in allowed), None)
        if bad is None:
            bad = s.find(",") if "," in s else len(s) - 1
        raise AmountError(f"not an amount ({s[bad]!r})", text, where[bad])
    frac = m["frac"] if m["frac"] and m["frac"] != "." else ""
    return Decimal((m["sign"] or m["sign2"]) + m["num"].replace(",", "") + frac)
