"""VAT invoices (增值税普通发票 / 增值税电子普通发票): what one says (``VatInvoice``) and how it is laid
out (``vat_invoice``), with the same exact ground truth as the medical bills.

A pharmacy, a device supplier or a service provider bills a hospital, a company or a person. Amounts
are consistent the way the tax system makes them: a line's amount is quantity × the printed unit price
(before tax) rounded to the fen, its tax is amount × rate rounded to the fen, the 合计 row adds up the
lines, and 价税合计 = 合计金额 + 合计税额, printed in 大写 (with 圆) and in figures.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from . import lexicon as lx
from .fonts import Face
from .layout import Canvas, Layout, Stamp
from .templates import _qr, _style, _title, paper_colour

EXEMPT = "免税"
_CIPHER = "0123456789+-*/<>"
_CREDIT = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # the unified social credit code's alphabet
_ROADS = ("人民路", "中山路", "解放路", "建设路", "和平路", "新华路", "长江路", "黄河路", "科技路", "健康路")
_BANKS = ("中国工商银行", "中国建设银行", "中国农业银行", "中国银行", "交通银行", "招商银行")
_MUNICIPALITIES = ("北京市", "上海市", "天津市", "重庆市")
# seller profiles: company suffix, the hospital-list categories it sells (with their tax category), its
# own goods' tax categories from vat_goods.txt
_PROFILES = {
    "pharmacy": (("大药房连锁有限公司", "医药有限公司"), {"西药费": "化学药品制剂", "中成药费": "中成药"},
                 ("医疗仪器器械",)),
    "devices": (("医疗器械有限公司", "医疗科技有限公司"), {"卫生材料费": "医疗仪器器械"}, ("医疗仪器器械",)),
    "services": (("健康管理有限公司", "医疗服务有限公司"), {}, ("现代服务", "医疗服务")),
}


@dataclass(frozen=True)
class VatLine:
    name: str  # as printed, with its tax category: *医疗仪器器械*电子血压计
    spec: str
    unit: str
    qty: Decimal
    price: str  # unit price before tax, as printed (2 to 8 decimals)
    amount: Decimal
    rate: str  # "13%", "6%", "3%" or 免税
    tax: Decimal

    @property
    def tax_text(self) -> str:
        return "***" if self.rate == EXEMPT else f"{self.tax:.2f}"


@dataclass
class VatInvoice:
    title: str
    electronic: bool
    header: list[tuple[str, str]]  # 发票代码, 发票号码, 开票日期, 校验码, 机器编号
    buyer: list[tuple[str, str]]  # 名称, 纳税人识别号, 地址、电话, 开户行及账号 (empty values not printed)
    seller: list[tuple[str, str]]
    lines: list[VatLine]
    footer: list[tuple[str, str]]  # 收款人, 复核, 开票人
    remark: str = ""
    yen: str = "¥"
    kind: str = "vat_invoice"
    amount: Decimal = Decimal(0)  # 合计金额
    tax: Decimal = Decimal(0)  # 合计税额
    total: Decimal = Decimal(0)  # 价税合计

    @property
    def words(self) -> str:
        return lx.amount_in_words(self.total).replace("元", "圆")  # VAT invoices write 圆

    def fields(self) -> dict:
        """Plain JSON-able ground truth, with the keys the medical bills use where they mean the same."""
        return {
            "kind": self.kind, "title": self.title, "hospital": "",
            "header": dict(self.header), "patient": {}, "payments": {}, "categories": {},
            "buyer": {k: v for k, v in self.buyer if v}, "seller": {k: v for k, v in self.seller if v},
            "items": [{"name": ln.name, "spec": ln.spec, "unit": ln.unit, "qty": str(ln.qty), "price": ln.price,
                       "amount": str(ln.amount), "rate": ln.rate, "tax": str(ln.tax)} for ln in self.lines],
            "amount_excl_tax": str(self.amount), "tax": str(self.tax),
            "total": str(self.total), "total_words": self.words,
            "footer": dict(self.footer), "remark": self.remark,
        }


def _credit_code(r: random.Random, kind: str) -> str:
    """A unified social credit code: 91 for a company, 12 for a public institution such as a hospital."""
    return kind + lx.digits(r, 6, lead_zero=False) + "".join(r.choice(_CREDIT) for _ in range(10))


def _party(r: random.Random, name: str, code: str, city: str) -> list[tuple[str, str]]:
    if not code:  # a private person: name only
        return [("名称", name), ("纳税人识别号", ""), ("地址、电话", ""), ("开户行及账号", "")]
    address = f"{city}{r.choice(_ROADS)}{r.randint(1, 999)}号 0{lx.digits(r, 2, lead_zero=False)}-{lx.digits(r, 8, lead_zero=False)}"
    bank = f"{r.choice(_BANKS)}{city.removesuffix('市')}{r.choice(('分行', '支行', '营业部'))} {lx.digits(r, 19, lead_zero=False)}"
    return [("名称", name), ("纳税人识别号", code), ("地址、电话", address), ("开户行及账号", bank)]


def _goods() -> list[tuple[str, str, str, str, str, Decimal, Decimal]]:
    out = []
    for ln in lx._lines("vat_goods.txt"):
        cat, name, spec, unit, rate, lo, hi = ln.split("|")
        out.append((cat, name, spec, unit, rate, Decimal(lo), Decimal(hi)))
    return out


def _line(r: random.Random, cat: str, name: str, spec: str, unit: str, rate: str, lo: Decimal, hi: Decimal,
          qty: Decimal) -> VatLine:
    with_tax = Decimal(r.randint(int(lo * 100), int(hi * 100))) / 100
    if rate == EXEMPT:
        price = f"{with_tax:.2f}"
    else:
        exact = with_tax / (1 + Decimal(rate[:-1]) / 100)
        places = r.choice((2, 6, 8, 8))
        price = format(exact.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP), "f")
        if places > 2:  # the tax system drops trailing zeros of a long price
            price = price.rstrip("0").rstrip(".") if "." in price else price
    amount = (qty * Decimal(price)).quantize(lx.CENT, ROUND_HALF_UP)
    tax = Decimal(0) if rate == EXEMPT else (amount * Decimal(rate[:-1]) / 100).quantize(lx.CENT, ROUND_HALF_UP)
    return VatLine(f"*{cat}*{name}", spec, unit, qty, price, amount, rate, tax)


def sample_vat_invoice(r: random.Random) -> VatInvoice:
    profile = r.choice(("pharmacy", "pharmacy", "devices", "services"))
    suffixes, from_lists, own_cats = _PROFILES[profile]
    small_scale = r.random() < 0.25  # a small-scale taxpayer charges 3% on everything taxable
    places = lx.words("places")
    city = r.choice([p for p in places if p.endswith("市")])
    province = r.choice([p for p in places if p.endswith("省")] + list(_MUNICIPALITIES))
    electronic = r.random() < 0.7
    title = province.removesuffix("省").removesuffix("市") + ("增值税电子普通发票" if electronic else "增值税普通发票")
    given = lx.words("given_names")
    seller_name = city.removesuffix("市") + r.choice(given) + r.choice(given) + r.choice(suffixes)

    pool: list[tuple] = [(tax_cat, c.name, c.spec, c.unit, "13%", c.low, c.high)
                         for c in lx.chargeables() if (tax_cat := from_lists.get(c.category))]
    pool += [g for g in _goods() if g[0] in own_cats]
    chosen = r.sample(pool, min(len(pool), r.choice((1, 2, 3, 3, 4, 5, 6, 8))))
    lines = []
    for cat, name, spec, unit, rate, lo, hi in chosen:
        if small_scale and rate != EXEMPT:
            rate = "3%"
        qty = Decimal(r.choice((1, 1, 2, 3, 5, 10, 20))) if hi < 200 else Decimal(r.choice((1, 1, 1, 2, 3)))
        lines.append(_line(r, cat, name, spec, unit, rate, lo, hi, qty))

    buyer_kind = r.random()
    if profile == "pharmacy" and buyer_kind < 0.5:
        buyer = _party(r, lx.person_name(r), "", city)
    elif buyer_kind < 0.85:
        buyer = _party(r, lx.hospital(r), _credit_code(r, "12"), city)
    else:
        buyer = _party(r, city.removesuffix("市") + r.choice(given) + r.choice(given) + "科技有限公司",
                       _credit_code(r, "91"), city)
    day = lx.random_date(r)
    check = " ".join(lx.digits(r, 5) for _ in range(4))
    header = [("发票代码", lx.digits(r, 12)), ("发票号码", lx.digits(r, 8)), ("开票日期", lx.fmt_date(day, 1)),
              ("校验码", check), ("机器编号", lx.digits(r, 12, lead_zero=False))]
    inv = VatInvoice(
        title=title, electronic=electronic, header=header, buyer=buyer,
        seller=_party(r, seller_name, _credit_code(r, "91"), city), lines=lines,
        footer=[("收款人", lx.person_name(r)), ("复核", lx.person_name(r)), ("开票人", lx.person_name(r))],
        remark=r.choice(("", "", f"订单号:{lx.digits(r, 10, lead_zero=False)}")), yen=r.choice(("¥", "¥", "￥")))
    inv.amount = sum((ln.amount for ln in lines), Decimal(0))
    inv.tax = sum((ln.tax for ln in lines), Decimal(0))
    inv.total = inv.amount + inv.tax
    return inv


# ---------------------------------------------------------------------------------------------

_COLUMNS = (("货物或应税劳务、服务名称", 0.29), ("规格型号", 0.12), ("单位", 0.06), ("数量", 0.07), ("单价", 0.14),
            ("金额", 0.12), ("税率", 0.07), ("税额", 0.13))


def vat_invoice(inv: VatInvoice, c: Canvas) -> Layout:
    """The national VAT invoice form: title band with the supervision stamp, code fields on the right,
    then one frame of buyer block | 密码区, the item grid, 价税合计, seller block | 备注, and the footer."""
    r = c.r
    st = _style(r, c.faces)
    W = c.width
    m = c.px(r.randint(40, 70))
    if inv.electronic:
        _qr(c, m, m, c.px(r.randint(100, 130)))
    title_bottom = _title(c, inv.title, st, m + c.px(10), 32, 38)
    c.layout.stamps.append(Stamp("oval", W // 2, title_bottom + c.px(30), "全国统一发票监制章", "国家税务总局"))

    size = c.size(18, 22)
    rh = round(size * r.uniform(1.6, 1.8))
    hdr = dict(inv.header)
    rx = round(W * r.uniform(0.64, 0.68))
    y = title_bottom + c.px(16)
    for i, key in enumerate(("发票代码", "发票号码", "开票日期", "校验码")):
        c.pair(rx, y + (i + 1) * rh, key, hdr[key], st, size, max_width=W - m - rx)
    if r.random() < 0.6:
        c.pair(m, y + 4 * rh, "机器编号", hdr["机器编号"], st, size, max_width=rx - m - c.px(300))
    top = max(c.bottom, y + 4 * rh) + c.px(16)

    x0, x1 = m, W - m
    lw = c.px(2) if r.random() < 0.5 else 1
    side = c.px(36)  # the narrow column of a block's vertical title (购买方, 密码区 …)
    mid = round(x0 + (x1 - x0) * 0.58)

    def vertical(text: str, xa: int, ya: int, yb: int) -> None:
        step = (yb - ya) / (len(text) + 1)
        for k, ch in enumerate(text):
            c.cell(xa, xa + side, round(ya + step * (k + 0.5)), round(ya + step * (k + 1.5)), ch, st.label_face,
                   size, st.frame, align="center", pad=0)
        c.rule(xa + side, ya, xa + side, yb, st.frame, 1)

    def block(title: str, party: list[tuple[str, str]], ya: int, right_title: str, right: list[str]) -> int:
        yb = ya + 4 * rh + c.px(12)
        vertical(title, x0, ya, yb)
        for i, (k, v) in enumerate(party):
            yy = ya + c.px(6) + (i + 1) * rh - round(rh * 0.3)
            if v:
                c.pair(x0 + side + c.px(10), yy, k, v, st, size, max_width=mid - x0 - side - c.px(20))
            else:
                c.text(x0 + side + c.px(10), yy, f"{k}{st.colon}", st.label_face, size, st.frame)
        c.rule(mid, ya, mid, yb, st.frame, 1)
        vertical(right_title, mid, ya, yb)
        for i, text in enumerate(right):
            yy = ya + c.px(6) + (i + 1) * rh - round(rh * 0.3)
            c.text(mid + side + c.px(10), yy, text, st.value_face, size, st.ink, max_width=x1 - mid - side - c.px(20))
        c.rule(x0, yb, x1, yb, st.frame, lw)
        return yb

    cipher = ["".join(r.choice(_CIPHER) for _ in range(26)) for _ in range(4)]
    y = block("购买方", inv.buyer, top, "密码区", cipher)

    # the item grid: a header row, the lines, blank room, the 合计 row
    gsize = c.size(17, 21)
    th = round(gsize * r.uniform(1.6, 1.9))
    xs = [x0]
    for _, frac in _COLUMNS:
        xs.append(xs[-1] + (x1 - x0) * frac)
    xs = [round(x) for x in xs]
    xs[-1] = x1
    for j, (head, _) in enumerate(_COLUMNS):
        c.cell(xs[j], xs[j + 1], y, y + th, head, st.label_face, gsize, st.frame, align="center", pad=c.px(4))
    grid_top = y
    y += th
    align = ("left", "left", "center", "right", "right", "right", "center", "right")
    for ln in inv.lines:
        row = (ln.name, ln.spec, ln.unit, format(ln.qty.normalize(), "f"), ln.price, f"{ln.amount:.2f}", ln.rate,
               ln.tax_text)
        for j, text in enumerate(row):
            c.cell(xs[j], xs[j + 1], y, y + th, text, st.value_face, gsize, st.ink, align=align[j], pad=c.px(6))
        y += th
    y += th * r.randint(0, 3)
    c.cell(xs[0], xs[1], y, y + th, r.choice(("合计", "合 计")), st.label_face, gsize, st.frame, align="center")
    c.cell(xs[5], xs[6], y, y + th, f"{inv.yen}{inv.amount:.2f}", st.value_face, gsize, st.ink, align="right",
           pad=c.px(6))
    c.cell(xs[7], xs[8], y, y + th, f"{inv.yen}{inv.tax:.2f}", st.value_face, gsize, st.ink, align="right",
           pad=c.px(6))
    y += th
    ruled = y - th if r.random() < 0.5 else grid_top + th  # column rules down the body, or in the header only
    for x in xs[1:-1]:
        c.rule(x, grid_top, x, ruled, st.frame, 1)
    c.rule(x0, grid_top + th, x1, grid_top + th, st.frame, 1)
    c.rule(x0, y, x1, y, st.frame, lw)

    # 价税合计: words after its label, figures after (小写)
    split = xs[5]
    c.cell(xs[0], xs[1], y, y + th, r.choice(("价税合计(大写)", "价税合计（大写）")), st.label_face, gsize, st.frame,
           align="center")
    c.cell(xs[1], split, y, y + th, inv.words, st.value_face, gsize, st.ink, pad=c.px(16))
    small = r.choice(("(小写)", "（小写）"))
    box = c.cell(split, x1, y, y + th, small, st.label_face, gsize, st.frame)
    if box:
        c.cell(box[2] + c.px(20), x1, y, y + th, f"{inv.yen}{inv.total:.2f}", st.value_face, gsize, st.ink, pad=0)
    c.rule(xs[1], y, xs[1], y + th, st.frame, 1)
    y += th
    c.rule(x0, y, x1, y, st.frame, lw)

    y = block("销售方", inv.seller, y, "备注", [inv.remark] if inv.remark else [])
    c.box_rules(x0, top, x1, y, st.frame, lw)

    # footer: 收款人 复核 开票人 销售方(章), the seller's 发票专用章 over it
    fy = y + c.px(20) + size
    foot = dict(inv.footer)
    for label, xf in (("收款人", 0.0), ("复核", 0.24), ("开票人", 0.46)):
        c.pair(x0 + round((x1 - x0) * xf), fy, label, foot[label], st, size, max_width=round((x1 - x0) * 0.2))
    sbox = c.text(x0 + round((x1 - x0) * 0.7), fy, f"销售方{st.colon}(章)", st.label_face, size, st.frame)
    if sbox:
        c.layout.stamps.append(Stamp("oval", sbox[2] + c.px(r.randint(0, 60)), sbox[1] - c.px(r.randint(10, 50)),
                                     dict(inv.seller)["名称"], "发票专用章"))
    return c.finish(margin=r.randint(90, 130))


def build(inv: VatInvoice, r: random.Random, faces: list[Face], width: int) -> Layout:
    """Lay a VAT invoice out on a page of the given width (white, or the pale tint of paper forms)."""
    canvas = Canvas(width, r, faces, paper_colour(r, not inv.electronic and r.random() < 0.6), "vat_invoice")
    return vat_invoice(inv, canvas)
