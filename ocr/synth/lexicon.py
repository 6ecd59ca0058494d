"""Language data for synthetic bills: word lists (the .txt files beside this module), names, codes,
dates, money in figures and in Chinese financial numerals. No geometry here.

Every sampler takes a ``random.Random`` so callers control determinism.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache, lru_cache
from importlib import resources

CENT = Decimal("0.01")

# ---------------------------------------------------------------------------------------------
# Chinese financial numerals (大写金额)

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")  # within a group of four digits
_BIG_UNITS = ("", "万", "亿", "万亿")  # between groups
_MAX_AMOUNT = Decimal(10) ** 16


def _group_words(group: int) -> str:
    """1..9999 in financial numerals, without leading 零 (the caller adds it between groups)."""
    out, zero = [], False
    for pos in range(3, -1, -1):
        d = group // 10**pos % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(_DIGITS[d] + _SMALL_UNITS[pos])
    return "".join(out)


def _integer_words(n: int) -> str:
    groups = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out, gap = "", False
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            gap = bool(out)  # a whole group of zeros: one 零 before the next non-zero group
            continue
        if out and (gap or g < 1000):
            out += "零"
        out += _group_words(g) + _BIG_UNITS[i]
        gap = False
    return out


def amount_in_words(amount: Decimal | int | str) -> str:
    """Money in Chinese financial numerals, as printed in 金额合计(大写).

    Rounded half-up to the fen. 整 closes an amount without jiao or fen; a 零 marks a missing jiao
    before fen, and zeros inside the yuan (one 零 per run of zeros, also across 万/亿 groups):

    >>> amount_in_words("1234.56"), amount_in_words(100), amount_in_words("1001.01")
    ('壹仟贰佰叁拾肆元伍角陆分', '壹佰元整', '壹仟零壹元零壹分')
    >>> amount_in_words("0.5"), amount_in_words("120034.5"), amount_in_words(0)
    ('伍角', '壹拾贰万零叁拾肆元伍角', '零元整')
    """
    value = Decimal(str(amount)).quantize(CENT, rounding=ROUND_HALF_UP)
    if value < 0:
        raise ValueError(f"negative amount: {amount}")
    if value >= _MAX_AMOUNT:
        raise ValueError(f"amount too large for financial numerals: {amount}")
    cents = int(value * 100)
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    if cents == 0:
        return "零元整"
    out = _integer_words(yuan) + "元" if yuan else ""
    if jiao == 0 and fen == 0:
        return out + "整"
    if jiao:
        out += _DIGITS[jiao] + "角"
    elif yuan:
        out += "零"
    if fen:
        out += _DIGITS[fen] + "分"
    return out


def money(value: Decimal, *, thousands: bool = False) -> str:
    """1234.5 -> '1234.50' (or '1,234.50' with thousands separators)."""
    value = Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    return f"{value:,.2f}" if thousands else f"{value:.2f}"


# ---------------------------------------------------------------------------------------------
# Word lists


@dataclass(frozen=True)
class Chargeable:
    """A drug, service or material a bill can charge for."""

    category: str  # 西药费, 检查费 ... (the receipt's grid rows)
    name: str
    spec: str  # 规格, "" for services
    unit: str
    cls: str  # 甲 / 乙 / 丙
    low: Decimal  # unit price range, yuan
    high: Decimal


def _lines(name: str) -> list[str]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@cache
def words(name: str) -> tuple[str, ...]:
    """Entries of a one-word-per-line list (whitespace also separates), deduplicated, file order."""
    seen: dict[str, None] = {}
    for ln in _lines(f"{name}.txt"):
        for w in ln.split():
            seen.setdefault(w, None)
    return tuple(seen)


@lru_cache(maxsize=1)
def chargeables() -> tuple[Chargeable, ...]:
    out = []
    for ln in _lines("drugs.txt"):
        cat, name, spec, unit, cls, lo, hi = ln.split("|")
        out.append(Chargeable(cat, name, spec, unit, cls, Decimal(lo), Decimal(hi)))
    for ln in _lines("services.txt"):
        cat, name, unit, cls, lo, hi = ln.split("|")
        out.append(Chargeable(cat, name, "", unit, cls, Decimal(lo), Decimal(hi)))
    return tuple(out)


def alphabet() -> set[str]:
    """Every character the word lists and the fixed labels can put on a page (for coverage checks)."""
    chars = set(_DIGITS + "拾佰仟万亿元角分整零")
    for name in ("surnames", "given_names", "places", "hospital_types", "departments"):
        chars.update("".join(words(name)))
    for c in chargeables():
        chars.update(c.category + c.name + c.spec + c.unit + c.cls)
    chars.update("¥￥×*x")
    return chars


# ---------------------------------------------------------------------------------------------
# Samplers

CATEGORIES = ("床位费", "诊察费", "检查费", "化验费", "治疗费", "手术费", "麻醉费", "护理费", "卫生材料费", "西药费",
              "中成药费", "中药饮片费", "挂号费", "其他费")  # the order receipts print them in
INSURANCE_TYPES = ("城镇职工基本医疗保险", "城乡居民基本医疗保险", "职工医保", "居民医保", "自费", "异地就医")
INSTITUTION_TYPES = ("综合医院", "中医医院", "专科医院", "妇幼保健院")
_HEX = "0123456789abcdef"
_ALNUM = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def person_name(r: random.Random) -> str:
    given = words("given_names")
    return r.choice(words("surnames")) + "".join(r.choice(given) for _ in range(r.choice((1, 2, 2, 2))))


def hospital(r: random.Random) -> str:
    place = r.choice(words("places"))
    kinds = words("hospital_types")
    if place.endswith("省"):
        kinds = tuple(k for k in kinds if k in {"人民医院", "中医院", "肿瘤医院", "儿童医院", "妇幼保健院"})
    elif not place.endswith("区"):
        kinds = tuple(k for k in kinds if k != "社区卫生服务中心")
    return place + r.choice(kinds)


def department(r: random.Random) -> str:
    return r.choice(words("departments"))


def digits(r: random.Random, n: int, *, lead_zero: bool = True) -> str:
    first = r.choice("0123456789" if lead_zero else "123456789")
    return first + "".join(r.choice("0123456789") for _ in range(n - 1))


def check_code(r: random.Random) -> str:
    """校验码: six lowercase hex characters (sometimes ten upper-case alphanumerics)."""
    if r.random() < 0.8:
        return "".join(r.choice(_HEX) for _ in range(6))
    return "".join(r.choice(_ALNUM) for _ in range(10))


def masked_id(r: random.Random) -> str:
    """A resident ID number with its birth date masked, as bills print it."""
    tail = digits(r, 3) + r.choice("0123456789X")
    return digits(r, 6, lead_zero=False) + "********" + tail


def inpatient_no(r: random.Random) -> str:
    return r.choice(("ZY", "", "", "Z")) + digits(r, r.choice((7, 8, 10)))


def random_date(r: random.Random, start: date = date(2019, 1, 1), days: int = 2700) -> date:
    return start + timedelta(days=r.randrange(days))


def fmt_date(d: date, style: int) -> str:
    if style == 0:
        return d.isoformat()
    if style == 1:
        return f"{d.year}年{d.month:02d}月{d.day:02d}日"
    return f"{d.year}/{d.month:02d}/{d.day:02d}"


def price(r: random.Random, c: Chargeable) -> Decimal:
    lo, hi = int(c.low * 100), int(c.high * 100)
    return Decimal(r.randint(lo, hi)) / 100


def line_text(r: random.Random) -> str:
    """A single random text line of the kinds bills carry (for line-level rendering)."""
    c = r.choice(chargeables())
    options = (
        lambda: c.name,
        lambda: c.spec or c.name,
        lambda: hospital(r),
        lambda: person_name(r),
        lambda: money(Decimal(r.randint(1, 2_000_000)) / 100, thousands=r.random() < 0.3),
        lambda: r.choice("¥￥") + money(Decimal(r.randint(1, 2_000_000)) / 100),
        lambda: amount_in_words(Decimal(r.randint(1, 2_000_000)) / 100),
        lambda: fmt_date(random_date(r), r.randrange(3)),
        lambda: "票据代码：" + digits(r, 12),
        lambda: "票据号码：" + digits(r, 10),
        lambda: "校验码：" + check_code(r),
        lambda: "交款人：" + person_name(r),
        lambda: "住院号：" + inpatient_no(r),
        lambda: department(r),
        lambda: c.category,
        lambda: f"{c.name}{c.spec}",
    )
    return r.choice(options)()
