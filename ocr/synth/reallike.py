"""Appearances of real receipts the other templates never draw (issue 17), in a seed space of their own.

Measured on the real development set (``../shared/data/bills/real``, its tuning part only), each a template
``render_reallike`` chooses by seed or is told:

- ``a4_receipt``: a self-printed inpatient receipt on an A4 scan (the Shanghai layout): small print, the
  upper half of the page used, three wide-spaced column groups ``收费项目 | 金额（元）`` with no rules
  between the rows, categories filled column by column, a second amount (the self-paid part) on some rows,
  合计（大写） with the figures beside the words, payment rows, a red stamp across the lower box.
- ``e_receipt_print``: the national e-receipt as hospitals print it (the Guizhou / Fujian scans): red-brown
  form, often kaishu labels, three ``项目名称 | 金额（元） | 备注`` groups without row rules, items in smaller
  print, thousands separators, 其他信息 written downwards; or as the Henan scans: one thin Ming face, names
  letter-spaced (``床 位 费``), a grey scan at low resolution.
- ``dotmatrix_form``: a pre-printed paper form on tinted paper with tractor-feed perforations down both
  edges, labels and rules in the form's ink (often kaishu: AR PL UKai), the values printed afterwards by a
  dot-matrix head in light blue or purple, offset from their labels and columns; columns
  ``收费项目 | 金额 | 个人支付金额`` (or ``项目/规格 | 数量 | 金额 | 个人支付金额``), or the items printed as
  ``检查费:10.00`` flowing over the body; amounts printed short (``1303.6``, ``68``); the total with a ``¥:`` /
  ``￥`` prefix and thousands separators, nothing paid printed ``0.``, sometimes the ways paid (支付宝, 微信,
  POS支付 …); the 监制章 across the title and red stamps across the values.
- ``photo_sheet``: two or three receipts pasted on one sheet and photographed: each turned a little, the
  sheet seen at an angle on a surface, sometimes the whole photo turned by 90°.

Ground truth is exact as everywhere in ``ocr.synth``: ``meta["fields"]`` is one receipt's fields (the format
``claims.evaluate.score_claim`` reads); a ``photo_sheet`` adds ``meta["receipts"]``, one entry per receipt
(``fields``, ``template``, ``lines`` [start, stop) into ``page.lines``, ``quad`` its paper's corners in image
pixels, clockwise from the receipt's own top-left, ``degrees``/``scale`` as pasted, ``appearance``), and its
``meta["fields"]`` is the first receipt's. Fields beyond the usual ones, which the scorer ignores:
``self_paid_column`` (category -> the second amount printed beside it, never above it) and ``payment_methods``
(way -> amount, adding up to 个人现金支付). ``meta["appearance"]`` records the options drawn. Nothing here
draws from a stream the older templates use: ``render_page`` renders every seed exactly as before.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import cv2
import numpy as np

from . import degrade as dg
from . import lexicon as lx
from .content import Bill, sample_bill
from .fonts import Face, all_faces
from .layout import REFERENCE_WIDTH, RGB, Canvas, Layout, Stamp, Style
from .page import GtLine, RenderedPage, _quad
from .render import rasterize
from .stamp import draw_stamp

TEMPLATES = ("a4_receipt", "e_receipt_print", "dotmatrix_form", "photo_sheet")
FORM_TINTS: tuple[RGB, ...] = ((250, 241, 196), (231, 242, 226), (247, 232, 232), (228, 236, 246), (246, 246, 232))
DOT_INKS: tuple[RGB, ...] = ((60, 95, 190), (85, 75, 170), (70, 120, 205), (105, 70, 160), (45, 80, 160))
FORM_INKS: tuple[RGB, ...] = ((175, 60, 50), (150, 45, 40), (40, 75, 150), (35, 110, 80), (60, 60, 60))
TOTAL_PREFIXES = ("¥:", "￥", "¥", "￥:", "")


def short_money(value: Decimal, *, thousands: bool = False) -> str:
    """An amount as dot-matrix receipts print it: no trailing zeros (``1303.6``, ``68``, ``0.5``)."""
    s = f"{Decimal(value).quantize(lx.CENT):f}"
    whole, _, cents = s.partition(".")
    cents = cents.rstrip("0")
    if thousands:
        whole = f"{int(whole):,}"
    return f"{whole}.{cents}" if cents else whole


def parse_money(text: str) -> Decimal:
    """The value a printed amount string stands for (prefixes and separators dropped)."""
    return Decimal("".join(ch for ch in text if ch.isdigit() or ch == "."))


def _faces(faces: list[Face], *styles: str, plain: bool = False) -> list[Face]:
    pool = [f for f in faces if f.style in styles and not (plain and "Bold" in f.name)]
    return pool or faces


def _canvas(width: int, r: random.Random, faces: list[Face], paper: RGB, template: str) -> Canvas:
    return Canvas(width, r, faces, paper, template)


def _self_paid(bill: Bill, r: random.Random, share: float) -> dict[str, Decimal]:
    """The self-paid part some receipts print beside a category's amount (never above it)."""
    out = {}
    for name, amount in bill.categories:
        if r.random() < share:
            out[name] = (amount * Decimal(r.randint(2, 100)) / 100).quantize(lx.CENT)
    return out


# -- a4_receipt ----------------------------------------------------------------------------------


def a4_receipt(bill: Bill, c: Canvas) -> tuple[Layout, dict]:
    r = c.r
    W = c.width
    face = r.choice(_faces(c.faces, "ming", "serif", "sans", plain=True))
    title_face = r.choice(_faces(c.faces, "serif", "ming", "sans"))
    ink = r.choice(((20, 20, 20), (40, 40, 40), (30, 30, 60)))
    colon = r.choice(("：", ":"))
    st = Style(title_face, face, face, ink, ink, colon, joined=False)
    size = c.size(14, 17)
    rh = round(size * r.uniform(1.7, 2.0))
    m = c.px(r.randint(40, 70))
    x0, x1 = m, W - m
    opts: dict = {"size": size, "thousands": bill.thousands}

    # title: the city above the form's name, the hospital left of it
    place = bill.title[:3] if bill.title[:3].endswith(("省", "市")) else r.choice(("上海市", "北京市", "天津市", "重庆市"))
    ty = m + c.px(60)
    tsize = c.size(20, 26)
    c.text(round(W * 0.62), ty, place, title_face, tsize, ink, anchor="ms")
    ty2 = ty + round(tsize * 1.6)
    c.text(round(W * 0.62), ty2, "医疗住院收费票据", title_face, tsize, ink, anchor="ms")
    c.text(round(W * 0.3), ty2 - c.px(10), bill.hospital, title_face, c.size(17, 21), ink, anchor="ms",
           max_width=round(W * 0.3))

    pat = dict(bill.patient)
    hdr = dict(bill.header)
    y = c.bottom + rh
    quarter = (x1 - x0) // 4
    row1 = [("业务流水号", pat["业务流水号"]), ("医疗机构类型", pat["医疗机构类型"]), ("病历号", lx.digits(r, 8)),
            ("住院号", pat.get("住院号", ""))]
    for i, (k, v) in enumerate(row1):
        c.pair(x0 + i * quarter, y, k, v, st, size, max_width=quarter - c.px(10))
    y += rh
    c.pair(x0, y, "住院时间", f"{pat.get('入院日期', '')} 到 {pat.get('出院日期', '')}", st, size,
           max_width=2 * quarter - c.px(10))
    c.pair(x0 + 2 * quarter, y, "住院天数", pat.get("住院天数", ""), st, size, max_width=quarter - c.px(10))
    box_top = y + round(rh * 0.5)
    y = box_top + rh - round(rh * 0.25)
    row2 = [("姓名", hdr["交款人"]), ("性别", pat["性别"]), ("医保类型", pat["医保类型"]),
            ("医保编号", pat.get("医保编号", ""))]
    for i, (k, v) in enumerate(row2):
        if v:
            c.pair(x0 + i * quarter + c.px(8), y, k, v, st, size, max_width=quarter - c.px(16))
    grid_top = y + round(rh * 0.4)
    c.rule(x0, grid_top, x1, grid_top, ink, 1)

    # the grid: three groups, categories down the first group first, no row rules
    groups = 3
    gw = (x1 - x0) / groups
    amount_head = r.choice(("金额（元）", "金额(元)", "金额"))
    hy = grid_top + rh
    for g in range(groups):
        a = x0 + gw * g
        c.text(round(a + gw * 0.12), hy, "收费项目", face, size, ink)
        c.text(round(a + gw * 0.48), hy, amount_head, face, size, ink)
    c.rule(x0, hy + round(rh * 0.4), x1, hy + round(rh * 0.4), ink, 1)
    cats = list(bill.categories)
    per_col = max(math.ceil(len(cats) / groups), min(len(cats), r.randint(4, 7)))
    second = _self_paid(bill, r, r.choice((0.0, 0.3, 0.5)))
    opts["self_paid_column"] = bool(second)
    body_top = hy + round(rh * 0.4)
    for i, (name, amount) in enumerate(cats):
        g, row = divmod(i, per_col)
        a = x0 + gw * g
        yb = body_top + (row + 1) * rh
        c.text(round(a + gw * 0.14), yb, name, face, size, ink, max_width=round(gw * 0.3))
        c.text(round(a + gw * 0.62), yb, bill.m(amount), face, size, ink, anchor="rs")
        if name in second:
            c.text(round(a + gw * 0.9), yb, bill.m(second[name]), face, size, ink, anchor="rs")
    y = body_top + (per_col + 1) * rh
    c.rule(x0, y - round(rh * 0.4), x1, y - round(rh * 0.4), ink, 1)

    # totals: 合计（大写）words, figures beside them, then payments
    y += round(rh * 0.3)
    figures = r.choice(TOTAL_PREFIXES) + bill.m(bill.total)
    lbox = c.text(x0, y, r.choice(("合计（大写）", "合计(大写)", "金额合计（大写）")) + colon, face, size, ink)
    words_x = (lbox[2] if lbox else x0) + c.px(r.randint(40, 90))
    wbox = c.text(words_x, y, lx.amount_in_words(bill.total), face, size, ink, max_width=round(W * 0.48) - words_x)
    fx = max(round(W * 0.5), (wbox[2] if wbox else words_x) + c.px(30))
    if r.random() < 0.5:
        c.text(fx, y, figures, face, size, ink, max_width=round(W * 0.2))
    else:
        sb = c.text(fx, y, r.choice(("(小写)", "（小写）")), face, size, ink)
        if sb:
            c.text(sb[2] + c.px(20), y, figures, face, size, ink, max_width=round(W * 0.2))
    opts["total_printed"] = figures
    c.text(round(W * 0.72), y, "当年账户结余" + colon, face, size, ink)
    c.rule(x0, y + round(rh * 0.4), x1, y + round(rh * 0.4), ink, 1)
    pays = dict(bill.payments)
    rows = [[("预缴金额", pays.get("预缴金额")), ("补缴金额", pays.get("补缴金额")), ("退费金额", pays.get("退费金额"))],
            [("个人现金支付", pays.get("个人现金支付")), ("个人账户支付", pays.get("个人账户支付")),
             ("医保统筹基金支付", pays.get("医保统筹基金支付"))]]
    third = (x1 - x0) // 3
    for row in rows:
        y += rh
        for i, (k, v) in enumerate(row):
            if v is not None:
                c.pair(x0 + i * third + c.px(8), y, k, bill.m(v), st, size, max_width=third - c.px(16))
        c.rule(x0, y + round(rh * 0.4), x1, y + round(rh * 0.4), ink, 1)
    y += rh
    c.text(x0 + c.px(8), y, f"现金支付中{colon}个人自付 {bill.m(pays.get('个人自付', Decimal(0)))} 元", face, size, ink,
           max_width=round(W * 0.5))
    lower_top = y + round(rh * 0.4)
    y = lower_top + rh
    c.text(x0 + c.px(8), y, f"医疗小计 {bill.m(bill.total - pays.get('个人自费', Decimal(0)))}", face, size, ink)
    y += rh
    c.text(x0 + c.px(8), y, f"自费小计 {bill.m(pays.get('个人自费', Decimal(0)))}", face, size, ink)
    lower_bottom = y + c.px(r.randint(90, 160))
    c.box_rules(x0, box_top, x1, lower_bottom, ink, 1)
    c.layout.stamps.append(Stamp("round", round(W * r.uniform(0.45, 0.65)), (lower_top + lower_bottom) // 2,
                                 bill.hospital, r.choice(("收费专用章", "财务专用章"))))
    y = lower_bottom + rh
    c.text(x0, y, f"中心号码{colon}{lx.digits(r, 2)}YD{lx.digits(r, 5)}", face, size, ink)
    y += rh
    c.text(x0 + c.px(30), y, "收款单位（章）" + colon, face, size, ink)
    c.pair(round(W * 0.42), y, "收款员", lx.digits(r, 4), st, size, max_width=round(W * 0.22))
    c.pair(round(W * 0.66), y, "日期", hdr["开票日期"], st, size, max_width=x1 - round(W * 0.66))
    return c.finish(min_height=round(W * 1.414), margin=60), {"self_paid": second, **opts}


# -- e_receipt_print -----------------------------------------------------------------------------


def e_receipt_print(bill: Bill, c: Canvas) -> tuple[Layout, dict]:
    """The national e-receipt as a hospital's printer puts it on paper (the Guizhou / Fujian scans): the form's
    labels and frame in red-brown, often kaishu; three ``项目名称 | 金额（元） | 备注`` groups with no rules
    between rows and the items in smaller print than the form, filled row by row, 备注 empty; amounts with
    thousands separators; 其他信息 written downwards, its values right after their labels, some printed short
    (``35000``, ``0``); the 监制章 across the title and the hospital's stamp across the footer.

    Or, as the Henan scans (grey, low resolution): the whole form in a thin Ming face, item names and grid
    heads letter-spaced (``床 位 费``), scanned in grey at a low resolution (``opts["grey_scan"]``), the print
    the recogniser reads as 費 for 费."""
    r = c.r
    W = c.width
    kai = [f for f in c.faces if f.style == "kai"]
    label_face = r.choice(kai) if kai and r.random() < 0.7 else r.choice(_faces(c.faces, "serif", "ming"))
    title_face = r.choice(_faces(c.faces, "serif", "kai"))
    value_face = r.choice(_faces(c.faces, "ming", "serif", "sans", plain=True))
    frame = r.choice(((185, 70, 40), (200, 80, 50), (160, 50, 40), (190, 90, 40)))
    ink = r.choice(((20, 20, 20), (35, 35, 35)))
    colon = r.choice(("：", ":"))
    short = r.random() < 0.5
    thin = r.random() < 0.4
    if thin:  # the Henan print: one thin Ming face for form and values, names letter-spaced, a grey scan
        ming = [f for f in c.faces if f.style == "ming"]
        label_face = value_face = ming[0] if ming else value_face
    spaced = thin and r.random() < 0.7
    opts: dict = {"label_face": label_face.name, "short_amounts": short, "thousands": bill.thousands,
                  "thin": thin, "spaced": spaced, "grey_scan": round(r.uniform(0.5, 0.7), 3) if thin else 0}

    def sp(text: str) -> str:
        return " ".join(text) if spaced else text
    m = c.px(r.randint(50, 80))
    x0, x1 = m, W - m
    side = c.px(r.randint(90, 120))
    _qr(c, x1 - side, m, side)
    tsize = c.size(30, 36)
    tbox = c.text(W // 2, m + tsize + c.px(10), bill.title, title_face, tsize, frame, anchor="ms",
                  max_width=W - 2 * m - 2 * side - c.px(40))
    if tbox:
        c.layout.stamps.append(Stamp("oval", (tbox[0] + tbox[2]) // 2 + c.px(r.randint(-60, 60)), tbox[3] + c.px(10),
                                     "票据监制章", "财政部监制"))
    size = c.size(18, 22)
    rh = round(size * r.uniform(1.6, 1.8))

    def pair(x: int, y: int, k: str, v: str, limit: int) -> None:
        lbox = c.text(x, y, k + colon, label_face, size, frame, max_width=limit)
        if lbox and v:
            vx = lbox[2] + c.px(6)
            if x + limit - vx > size:
                c.text(vx, y, v, value_face, size, ink, max_width=x + limit - vx)

    hdr = dict(bill.header)
    y = max(c.bottom, m + side) + c.px(10)
    left = [("票据代码", hdr["票据代码"]), ("交款人统一社会信用代码", hdr.get("交款人统一社会信用代码", "")),
            ("交款人", hdr["交款人"])]
    right = [("票据号码", hdr["票据号码"]), ("校验码", hdr["校验码"]), ("开票日期", hdr["开票日期"])]
    rx = round(W * 0.6)
    for i in range(3):
        y += rh
        pair(x0, y, *left[i], limit=rx - x0 - c.px(20))
        pair(rx, y, *right[i], limit=x1 - rx)
    grid_top = y + round(rh * 0.6)

    # the grid: three groups, header in the form's face, body smaller, no row rules
    hsize = c.size(19, 23)
    th = round(hsize * 1.9)
    gw = (x1 - x0) / 3
    amount_head = r.choice(("金额（元）", "金额(元)", "金额 （元）"))
    for g in range(3):
        a = x0 + gw * g
        for text, fx in ((sp("项目名称"), 0.12), (amount_head, 0.5), (sp("备注"), 0.82)):
            c.text(round(a + gw * fx), c.baseline_in(label_face, hsize, grid_top, grid_top + th), text, label_face,
                   hsize, frame, max_width=round(gw * 0.3))
    c.rule(x0, grid_top + th, x1, grid_top + th, frame, 1)
    bsize = c.size(14, 17)
    bh = round(bsize * r.uniform(1.9, 2.3))
    cats = list(bill.categories)
    nrows = max(math.ceil(len(cats) / 3), r.randint(6, 9))
    for i, (name, amount) in enumerate(cats):
        row, g = divmod(i, 3)
        a = x0 + gw * g
        yb = grid_top + th + (row + 1) * bh
        c.text(round(a) + c.px(4), yb, sp(name), value_face, bsize, ink, max_width=round(gw * 0.44))
        c.text(round(a + gw * 0.5), yb, bill.m(amount), value_face, bsize, ink, max_width=round(gw * 0.3))
    y = grid_top + th + (nrows + 1) * bh
    c.rule(x0, y, x1, y, frame, 1)

    # totals
    tb = y + th
    yb = c.baseline_in(label_face, size, y, tb)
    lbox = c.text(x0 + c.px(6), yb, r.choice(("金额合计（大写）", "金额合计(大写)")), label_face, size, frame)
    wx = (lbox[2] if lbox else x0) + c.px(6)
    c.text(wx, yb, lx.amount_in_words(bill.total), value_face, size, ink, max_width=round(W * 0.6) - wx)
    sbox = c.text(round(W * 0.6), yb, "（小写）" if r.random() < 0.5 else "(小写)", label_face, size, frame)
    figures = r.choice(("", "", "¥", "￥")) + bill.m(bill.total)
    if sbox:
        c.text(sbox[2] + c.px(6), yb, figures, value_face, size, ink, max_width=x1 - sbox[2] - c.px(12))
    opts["total_printed"] = figures
    c.rule(x0, tb, x1, tb, frame, 1)

    # 其他信息: the label downwards in its own column, pairs in four columns
    pat = dict(bill.patient)
    osize = c.size(17, 20)
    oh = round(osize * 1.75)
    lab_w = c.px(50)
    pairs = [(k, pat[k]) for k in ("业务流水号", "住院号", "住院科别", "门诊号", "科室", "医保类型", "医保编号", "性别",
                                   "医疗机构类型") if k in pat]
    pairs += [(k, short_money(v) if short else bill.m(v)) for k, v in bill.payments]
    colw = (x1 - x0 - lab_w) // 4
    for i, (k, v) in enumerate(pairs):
        row, col = divmod(i, 4)
        yy = tb + (row + 1) * oh
        xx = x0 + lab_w + col * colw
        lbox = c.text(xx, yy, k + colon, label_face, osize, frame, max_width=colw - c.px(10))
        if lbox and colw - (lbox[2] - xx) - c.px(16) > osize:
            c.text(lbox[2] + c.px(6), yy, v, value_face, osize, ink, max_width=xx + colw - lbox[2] - c.px(16))
    other_bottom = tb + (math.ceil(len(pairs) / 4) + 1) * oh - round(oh * 0.5)
    step = (other_bottom - tb) / 5
    for k, ch in enumerate("其他信息"):
        c.text(x0 + lab_w // 2, round(tb + step * (k + 1) + osize * 0.4), ch, label_face, osize, frame, anchor="ms")
    c.rule(x0 + lab_w, tb, x0 + lab_w, other_bottom, frame, 1)
    c.box_rules(x0, grid_top, x1, other_bottom, frame, c.px(2))

    # footer
    y = other_bottom + c.px(14) + size
    foot = dict(bill.footer)
    lbox = c.text(x0, y, r.choice(("收款单位（章）", "收款单位(章)")) + colon, label_face, size, frame)
    if lbox:
        hbox = c.text(lbox[2] + c.px(6), y, foot["收款单位"], value_face, size, ink, max_width=round(W * 0.5) - lbox[2])
        cx = (hbox or lbox)[0] + c.px(r.randint(20, 90))
        c.layout.stamps.append(Stamp("round", cx, y - c.px(r.randint(0, 30)), bill.hospital, "收费专用章"))
    pair(round(W * 0.55), y, "复核人", foot["复核人"], limit=round(W * 0.2))
    pair(round(W * 0.76), y, "收款人", foot["收款人"], limit=x1 - round(W * 0.76))
    return c.finish(margin=r.randint(100, 140)), opts


def _qr(c: Canvas, x: int, y: int, side: int) -> None:
    c.layout.qr = (x, y, side)
    c.reserve((x, y, x + side, y + side))


# -- dotmatrix_form ------------------------------------------------------------------------------


def dotmatrix_form(bill: Bill, c: Canvas) -> tuple[Layout, dict]:
    """A pre-printed form, values from a dot-matrix head in light colour, offset from the form."""
    r = c.r
    W = c.width
    kai = [f for f in c.faces if f.style == "kai"]
    label_face = r.choice(kai) if kai and r.random() < 0.75 else r.choice(_faces(c.faces, "serif", "ming", "sans"))
    title_face = r.choice(kai) if kai and r.random() < 0.6 else r.choice(_faces(c.faces, "serif", "ming"))
    pface = r.choice(_faces(c.faces, "mono", plain=True))
    frame = r.choice(FORM_INKS)
    ink = r.choice(DOT_INKS)
    fade = r.uniform(0.6, 0.9)
    dots = 2 if c.scale > 0.9 and r.random() < 0.7 else 0
    dx, dy = c.px(r.randint(-8, 40)), c.px(r.randint(-10, 10))  # the printer's offset from the form
    shifts = ((dx, dy), (dx, 0), (0, dy), (0, 0))
    colon = r.choice(("：", ":"))
    short = r.random() < 0.7
    zero_dot = short and r.random() < 0.5  # nothing paid this way: "0."
    opts: dict = {"label_face": label_face.name, "dot_pitch": dots, "offset": [dx, dy], "short_amounts": short,
                  "zero_dot": zero_dot, "ink": list(ink), "thousands": bill.thousands}

    def money(v: Decimal) -> str:
        if zero_dot and v == 0:
            return "0."
        return short_money(v, thousands=bill.thousands) if short else bill.m(v)

    def printed(x: int, y: int, text: str, size: int, *, anchor: str = "ls", max_width: int | None = None):
        return c.text(x, y, text, pface, size, ink, anchor=anchor, max_width=max_width, fade=fade, dots=dots,
                      shifts=shifts)

    def label(x: int, y: int, text: str, size: int, **kw):
        return c.text(x, y, text, label_face, size, frame, **kw)

    hole_margin = c.px(70)  # tractor-feed holes live here
    m = hole_margin + c.px(r.randint(20, 40))
    x0, x1 = m, W - m
    title = bill.title.replace("(电子)", "")
    if not title.startswith(tuple(lx.words("places"))) and r.random() < 0.7:
        title = r.choice([p for p in lx.words("places") if p.endswith("省")] or ["山东省"]) + title
    tsize = c.size(34, 42)
    ty = c.px(r.randint(40, 60)) + tsize
    tbox = c.text(W // 2, ty, title, title_face, tsize, frame, anchor="ms", max_width=W - 2 * m - c.px(200))
    if tbox:
        c.layout.stamps.append(Stamp("oval", (tbox[0] + tbox[2]) // 2 + c.px(r.randint(-120, 120)),
                                     (tbox[1] + tbox[3]) // 2, "票据监制章", "财政部监制"))
    hdr = dict(bill.header)
    pat = dict(bill.patient)
    size = c.size(17, 21)
    rh = round(size * r.uniform(1.8, 2.1))
    c.text(x1, ty + c.px(40), r.choice(("№", "No.B", "NO.")) + hdr["票据号码"], pface, c.size(24, 30), (190, 40, 40),
           anchor="rs")
    y = c.bottom + rh

    # header rows: labels of the form, values printed after them
    def pairs(y: int, row: list[tuple[str, str]]) -> None:
        colw = (x1 - x0) // len(row)
        for i, (k, v) in enumerate(row):
            lbox = label(x0 + i * colw, y, k + colon, size, max_width=colw - c.px(10))
            if lbox and v:
                vx = lbox[2] + c.px(r.randint(20, 50))
                room = x0 + (i + 1) * colw - vx - c.px(10) - max(dx, 0)
                if room > size:
                    printed(vx, y, v, size, max_width=room)

    pairs(y, [("业务流水号", pat["业务流水号"]), ("医疗机构类型", pat["医疗机构类型"]), ("校验码", hdr["校验码"])])
    box_top = y + round(rh * 0.45)
    y = box_top + rh - round(rh * 0.25)
    pairs(y, [("姓名", hdr["交款人"]), ("性别", pat["性别"]), ("医保类型", pat["医保类型"])])
    grid_top = y + round(rh * 0.45)

    # grid header: two groups of columns
    heads = r.choice((("收费项目", "金额", "个人支付金额"), ("项目/规格", "数量", "金额", "个人支付金额")))
    opts["columns"] = list(heads)
    hsize = c.size(15, 18)
    th = round(hsize * 2.0)
    gw = (x1 - x0) / 2
    fr = (0.0, 0.42, 0.66) if len(heads) == 3 else (0.0, 0.38, 0.5, 0.74)
    for g in range(2):
        a = x0 + gw * g
        for k, h in enumerate(heads):
            label(round(a + gw * fr[k]) + c.px(8), c.baseline_in(label_face, hsize, grid_top, grid_top + th), h, hsize)
    c.rule(x0, grid_top + th, x1, grid_top + th, frame, 1)
    c.rule(round(x0 + gw), grid_top, round(x0 + gw), grid_top + th, frame, 1)
    body_top = grid_top + th
    cats = list(bill.categories)
    self_paid = _self_paid(bill, r, r.choice((0.0, 0.4, 1.0)))
    vsize = c.size(18, 22)
    vh = round(vsize * r.uniform(1.7, 2.0))
    flow = r.random() < 0.35  # 检查费:10.00 flowing in three columns (the Hunan form)
    opts["body"] = "flow" if flow else "columns"
    if flow:
        colw = (x1 - x0) // 3
        for i, (name, amount) in enumerate(cats):
            row, col = divmod(i, 3)
            printed(x0 + col * colw + c.px(30), body_top + (row + 1) * vh + c.px(10), f"{name}:{money(amount)}", vsize,
                    max_width=colw - c.px(40))
        nrows = math.ceil(len(cats) / 3)
        self_paid = {}
    else:
        nrows = math.ceil(len(cats) / 2)
        for i, (name, amount) in enumerate(cats):
            g, row = divmod(i, nrows)
            a = x0 + gw * g
            yb = body_top + (row + 1) * vh
            printed(round(a) + c.px(14), yb, name, vsize, max_width=round(gw * 0.4))
            k = heads.index("金额")
            if len(heads) == 4:
                printed(round(a + gw * fr[1]) + c.px(10), yb, "1" if r.random() < 0.5 else "1项", vsize)
            printed(round(a + gw * fr[k]) + c.px(10), yb, money(amount), vsize,
                    max_width=round(gw * (fr[k + 1] - fr[k])) - c.px(16) - max(dx, 0))
            if name in self_paid:
                printed(round(a + gw * fr[-1]) + c.px(14), yb, money(self_paid[name]), vsize,
                        max_width=round(gw * (1 - fr[-1])) - c.px(20) - max(dx, 0))
    body_bottom = body_top + (nrows + 1) * vh + c.px(r.randint(30, 120))
    stamp_y = (body_top + body_bottom) // 2
    c.layout.stamps.append(Stamp("round", round(x0 + (x1 - x0) * r.uniform(0.45, 0.75)), stamp_y, bill.hospital,
                                 "收费专用章"))
    if r.random() < 0.4:
        c.layout.stamps.append(Stamp("round", round(x0 + (x1 - x0) * r.uniform(0.1, 0.3)), stamp_y + c.px(40),
                                     bill.hospital, r.choice(("现金收讫", "门诊收款"))))

    # the ways the patient paid (the Shandong form), then 合计(大写) / ¥ figures, then the insurance row
    pays = dict(bill.payments)
    if r.random() < 0.5:
        ways = r.sample(("支付宝", "微信", "银行卡", "POS支付", "现金", "其他记帐"), 4)
        paid = dict.fromkeys(ways, Decimal(0))
        paid[r.choice(ways)] = pays.get("个人现金支付", Decimal(0))
        opts["payment_methods"] = {k: str(v) for k, v in paid.items()}
        colw = (x1 - x0) // 4
        body_bottom += rh
        for i, (k, v) in enumerate(paid.items()):
            printed(x0 + i * colw + c.px(20), body_bottom - round(rh * 0.4), f"{k}{colon}{money(v)}", vsize,
                    max_width=colw - c.px(30) - max(dx, 0))
    y = body_bottom
    c.rule(x0, y, x1, y, frame, 1)
    y += rh
    words_label = r.choice(("合计(大写)", "合计（大写）", "金额合计(大写)"))
    lbox = label(x0 + c.px(8), y, words_label, size)
    wx = (lbox[2] if lbox else x0) + c.px(r.randint(30, 60))
    printed(wx, y, lx.amount_in_words(bill.total), vsize, max_width=round(W * 0.62) - wx)
    split = round(x0 + (x1 - x0) * 0.68)
    prefix = r.choice(TOTAL_PREFIXES[:4])
    small = r.random() < 0.5
    fx = split + c.px(16)
    if small:
        sbox = label(fx, y, "(小写)", size)
        fx = (sbox[2] if sbox else fx) + c.px(10)
    else:
        pbox = label(fx, y, prefix, size)  # the form prints ¥: or ￥ itself, the printer only the figures
        opts["total_label"] = prefix
        prefix = ""
        fx = (pbox[2] if pbox else fx) + c.px(r.randint(10, 30))
    figures = prefix + (short_money(bill.total, thousands=bill.thousands) if short and r.random() < 0.5
                        else bill.m(bill.total))
    printed(fx, y, figures, vsize, max_width=x1 - fx - c.px(10))
    opts["total_printed"] = figures
    c.rule(split, y - round(rh * 0.6), split, y + round(rh * 0.4), frame, 1)
    c.rule(x0, y + round(rh * 0.4), x1, y + round(rh * 0.4), frame, 1)
    y += rh
    row = [("医保统筹基金支付", pays.get("医保统筹基金支付")), ("个人账户支付", pays.get("个人账户支付")),
           ("个人现金支付", pays.get("个人现金支付"))]
    x = x0 + c.px(8)
    for k, v in row:  # one after another, so that no value is ever cut short
        if v is None:
            continue
        text = money(v)
        need = c.width_of(k + colon, label_face, size) + c.px(40) + max(dx, 0) + c.width_of(text, pface, vsize)
        if x + need > x1 - c.px(10):
            y += rh
            x = x0 + c.px(8)
        lbox = label(x, y, k + colon, size)
        if lbox:
            vbox = printed(lbox[2] + c.px(r.randint(16, 40)), y, text, vsize)
            x = (vbox[2] if vbox else lbox[2]) + c.px(r.randint(40, 90))
    box_bottom = y + round(rh * 0.45)
    c.box_rules(x0, box_top, x1, box_bottom, frame, c.px(2))
    c.rule(x0, grid_top, x1, grid_top, frame, 1)
    y = box_bottom + rh
    label(x0, y, "收款单位(章)" + colon, size)
    lbox = label(round(W * 0.4), y, "收款人(签章)" + colon, size)
    if lbox:
        printed(lbox[2] + c.px(20), y, lx.digits(r, 4), vsize)
    printed(round(W * 0.66), y, hdr["开票日期"], vsize, max_width=x1 - round(W * 0.66))
    layout = c.finish(margin=r.randint(50, 80))
    return layout, {"self_paid": self_paid, "perforated": True, "hole_margin": hole_margin, **opts}


def perforate(img: np.ndarray, margin: int, r: random.Random) -> dict:
    """Tractor-feed holes down both edges (in place): light discs with a shadowed rim, and a tear line of
    small slits inside them. Drawn only in the margins, where the form prints nothing."""
    h, w = img.shape[:2]
    pitch = max(20, round(margin * r.uniform(0.55, 0.7)))
    rad = max(4, round(pitch * 0.22))
    cx_l, cx_r = round(margin * 0.4), w - round(margin * 0.4)
    hole = (r.randint(235, 255),) * 3
    rim = tuple(int(v) for v in np.clip(np.array(hole) - r.randint(40, 90), 0, 255))
    y = pitch // 2 + r.randint(0, pitch // 2)
    while y < h - rad:
        for cx in (cx_l, cx_r):
            cv2.circle(img, (cx, y), rad + 1, rim, -1, lineType=cv2.LINE_AA)
            cv2.circle(img, (cx + 1, y + 1), rad, hole, -1, lineType=cv2.LINE_AA)
        y += pitch
    tear = tuple(int(v) for v in np.clip(img[h // 2, margin - 2].astype(int) - 35, 0, 255))
    for x in (margin - 4, w - margin + 4):
        for yy in range(0, h, 9):
            cv2.line(img, (x, yy), (x, yy + 4), tear, 1)
    return {"name": "perforations", "pitch": pitch, "radius": rad}


def grey_scan(img: np.ndarray, factor: float) -> np.ndarray:
    """A grey scan at a low resolution: one channel (kept as three equal ones), sampled at ``factor`` of the
    page's resolution and shown at full size again; thin strokes break up and fade."""
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(dg.downscale(grey, factor), cv2.COLOR_GRAY2RGB)


# -- rendering -------------------------------------------------------------------------------------


BUILDERS = {"a4_receipt": a4_receipt, "e_receipt_print": e_receipt_print, "dotmatrix_form": dotmatrix_form}


def _receipt(seed_key: str, template: str, faces: list[Face], width: int) -> tuple[Bill, Layout, dict]:
    """Content and layout of one receipt of a real-like template, from its own stream ``seed_key``."""
    r = random.Random(f"reallike:{seed_key}")
    if template == "a4_receipt":
        kind = "inpatient"
    else:
        kind = r.choice(("inpatient", "inpatient", "outpatient") if template == "e_receipt_print"
                        else ("inpatient", "outpatient", "outpatient"))
    bill = sample_bill(r, kind)
    bill.thousands = r.random() < 0.5  # real totals often carry separators
    if template in ("a4_receipt", "e_receipt_print"):
        paper: RGB = (r.randint(244, 255),) * 3  # type: ignore[assignment]
    else:
        paper = r.choice(FORM_TINTS)
    layout, opts = BUILDERS[template](bill, _canvas(width, r, faces, paper, template))
    return bill, layout, opts


def _fields(bill: Bill, opts: dict) -> dict:
    fields = bill.fields()
    if opts.get("self_paid"):
        fields["self_paid_column"] = {k: str(v) for k, v in opts["self_paid"].items()}
    if opts.get("payment_methods"):
        fields["payment_methods"] = opts["payment_methods"]
    return fields


def _clean(layout: Layout, opts: dict, faces: list[Face], scale: float, key: str) -> tuple[np.ndarray, list, list]:
    """The upright printed receipt with its stamps (always drawn: they are part of this appearance)."""
    img, gt = rasterize(layout, np.random.default_rng(list(key.encode())))
    img = img.copy()
    applied: list[dict] = []
    if opts.get("perforated"):
        applied.append(perforate(img, opts["hole_margin"], random.Random(f"holes:{key}")))
    sr, srng = random.Random(f"stamps:{key}"), np.random.default_rng([*key.encode(), 7])
    for st in layout.stamps:
        params = draw_stamp(img, st, faces, scale, sr, srng)
        if params:
            applied.append(params)
    return img, gt, applied


def _meta(template: str, layout: Layout, kind: str, fields: dict, applied: list[dict], opts: dict) -> dict:
    return {
        "template": template,
        "kind": kind,
        "upright_size": [layout.width, layout.height],
        "paper": list(layout.paper),
        "fonts": sorted({it.face.name for it in layout.items}),
        "font_sizes": sorted({it.size for it in layout.items}),
        "degradations": applied,
        "dropped_items": layout.dropped,
        "appearance": {k: v for k, v in opts.items() if k not in ("self_paid", "perforated", "hole_margin")},
        "fields": fields,
    }


def render_reallike(seed: int, *, template: str | None = None, degrade: bool = True, width: int = REFERENCE_WIDTH,
                    fonts: Sequence[Path] | None = None):
    """One page in one of ``TEMPLATES`` (default: chosen by the seed). Same arguments, same pixels.

    Its own seed space: ``render_reallike(s)`` and ``render_page(s)`` are unrelated bills. ``degrade=False``
    leaves out the scan (or photo) damage but keeps what the paper itself shows: tint, perforations, stamps.
    """
    if template is not None and template not in TEMPLATES:
        raise ValueError(f"template must be one of {TEMPLATES}, not {template!r}")
    template = template or random.Random(f"reallike-template:{seed}").choice(TEMPLATES)
    faces = all_faces(tuple(Path(f) for f in fonts) if fonts is not None else None)
    scale = width / REFERENCE_WIDTH
    if template == "photo_sheet":
        return _photo_sheet(seed, faces, width, degrade)
    bill, layout, opts = _receipt(str(seed), template, faces, width)
    img, gt, applied = _clean(layout, opts, faces, scale, f"{seed}")
    quads = np.stack([q for _, q in gt]) if gt else np.zeros((0, 4, 2))
    if degrade and opts.get("grey_scan"):
        img = grey_scan(img, opts["grey_scan"])
        applied.append({"name": "grey_scan", "factor": opts["grey_scan"]})
    if degrade:
        img, quads, more = dg.page(img, quads, paper=layout.paper, stamps=[], faces=faces, scale=scale,
                                   r=random.Random(f"reallike-degrade:{seed}"),
                                   rng=np.random.default_rng([seed, 41]))
        applied += more
    h, w = img.shape[:2]
    quads = np.clip(quads, 0, [w, h])
    lines = tuple(GtLine(text, _quad(q)) for (text, _), q in zip(gt, quads))
    meta = _meta(template, layout, bill.kind, _fields(bill, opts), applied, opts)
    return RenderedPage(image=img, lines=lines, rotation=0, seed=seed, meta=meta)


def _photo_sheet(seed: int, faces: list[Face], width: int, degrade: bool):
    """Two or three receipts pasted on one sheet, photographed at an angle, sometimes turned by 90°."""
    r = random.Random(f"reallike-sheet:{seed}")
    rng = np.random.default_rng([seed, 43])
    n = r.choice((2, 2, 3))
    sw = round(width * 1.33)
    sh = round(sw * 1.414)
    paper = (r.randint(240, 255),) * 3
    sheet = np.full((sh, sw, 3), paper, np.uint8)
    slot_h = sh / n
    all_gt: list[tuple[str, np.ndarray]] = []
    receipts: list[dict] = []
    applied: list[dict] = []
    scale = width / REFERENCE_WIDTH
    dropped = 0
    fonts: set[str] = set()
    sizes: set[int] = set()  # as pasted: the print's sizes times the receipt's scale
    for k in range(n):
        template = r.choice(("dotmatrix_form", "dotmatrix_form", "e_receipt_print", "a4_receipt"))
        bill, layout, opts = _receipt(f"{seed}:{k}", template, faces, width)
        img, gt, done = _clean(layout, opts, faces, scale, f"{seed}:{k}")
        dropped += layout.dropped
        if template == "a4_receipt":  # the A4 printout is cut below its content before pasting
            used = max((int(q[:, 1].max()) for _, q in gt), default=img.shape[0])
            cut = min(img.shape[0], used + round(scale * 140))
            img = img[:cut]
        h, w = img.shape[:2]
        angle = r.uniform(-4.0, 4.0)
        fit = min(0.92 * sw / w, 0.9 * slot_h / h)  # after the turn it must stay inside its slot
        rad = math.radians(abs(angle))
        fit = min(fit, 0.92 * sw / (w * math.cos(rad) + h * math.sin(rad)),
                  0.9 * slot_h / (w * math.sin(rad) + h * math.cos(rad)))
        s = fit * r.uniform(0.9, 1.0)
        cx = sw / 2 + r.uniform(-0.03, 0.03) * sw
        cy = slot_h * (k + 0.5)
        M = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, s)
        M[0, 2] += cx - w / 2
        M[1, 2] += cy - h / 2
        warped = cv2.warpAffine(img, M, (sw, sh), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        cover = cv2.warpAffine(np.ones((h, w), np.float32), M, (sw, sh), flags=cv2.INTER_LINEAR)[..., None]
        shade = cv2.GaussianBlur(np.roll(cover[..., 0], (6, 6), axis=(0, 1)), (0, 0), 4)[..., None]  # the receipt's edge shadow
        base = sheet.astype(np.float32) * (1 - 0.25 * shade * (1 - cover))
        sheet = np.clip(warped * cover + base * (1 - cover), 0, 255).astype(np.uint8)
        corners = dg.affine_points(np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64), M)[0]
        start = len(all_gt)
        for text, q in gt:
            all_gt.append((text, dg.affine_points(q[None], M)[0]))
        receipts.append({"template": template, "fields": _fields(bill, opts), "lines": [start, len(all_gt)],
                         "corners": corners, "degrees": round(angle, 3), "scale": round(s, 4),
                         "appearance": {kk: v for kk, v in opts.items()
                                        if kk not in ("self_paid", "perforated", "hole_margin")}})
        applied += [{**d, "receipt": k} for d in done]
        fonts |= {it.face.name for it in layout.items}
        sizes |= {round(it.size * s) for it in layout.items}
    quads = np.stack([q for _, q in all_gt])
    corners = np.stack([rc["corners"] for rc in receipts])
    both = np.concatenate([quads, corners])
    photo = random.Random(f"reallike-photo:{seed}")
    if degrade:
        img, both, params = dg.angled_shot(sheet, both, photo, rng)
        applied.append(params)
        if photo.random() < 0.6:
            img, params = dg.shadow(img, photo)
            applied.append(params)
        img = dg._optics(img, random.Random(f"reallike-optics:{seed}"), np.random.default_rng([seed, 44]), applied)
    else:
        img = sheet
    rotation = photo.choice((0, 0, 90, 270)) if degrade else 0
    img, both = dg.rotate90(img, both, rotation)
    h, w = img.shape[:2]
    both = np.clip(both, 0, [w, h])
    quads, corners = both[: len(quads)], both[len(quads):]
    lines = tuple(GtLine(text, _quad(q)) for (text, _), q in zip(all_gt, quads))
    for rc, q in zip(receipts, corners):
        del rc["corners"]
        rc["quad"] = [[round(float(x), 1), round(float(y), 1)] for x, y in q]
    meta = {
        "template": "photo_sheet",
        "kind": receipts[0]["fields"]["kind"],
        "upright_size": [sw, sh],
        "paper": list(paper),
        "fonts": sorted(fonts),
        "font_sizes": sorted(sizes),
        "degradations": applied,
        "dropped_items": dropped,
        "fields": receipts[0]["fields"],
        "receipts": receipts,
    }
    return RenderedPage(image=img, lines=lines, rotation=rotation, seed=seed, meta=meta)
