"""Page templates: a bill's content (``content.Bill``) laid out the way real ones look.

- ``e_receipt``: national electronic receipt (医疗住院/门诊收费票据(电子)): QR code, title, code fields,
  an item grid of repeated ``项目名称 | 金额(元) | 备注`` groups, totals in 大写 and 小写, an 其他信息 block
  with the payment split, and a footer with 收款单位 under the hospital's stamp.
- ``paper_receipt``: a preprinted paper form with values from a dot-matrix printer, offset from their
  labels and in another ink.
- ``itemised``: a 费用清单 with one row per drug or service (规格, 单位, 数量, 单价, 金额, 甲/乙/丙);
  ``itemised_pages`` prints a long one over several pages (``page.render_document``).

Each template appends items in reading order of the upright page (row by row, left to right).
"""

from __future__ import annotations

import math
import random
from decimal import Decimal

from . import lexicon as lx
from .content import Bill
from .fonts import Face
from .layout import RGB, Canvas, Layout, Stamp, Style

INKS: tuple[RGB, ...] = ((15, 15, 15), (30, 30, 35), (0, 0, 0), (20, 30, 90), (45, 40, 40), (35, 20, 70))
_FRAMES: tuple[RGB, ...] = ((150, 60, 40), (120, 40, 30), (30, 30, 30), (60, 60, 60), (40, 70, 140), (30, 100, 70))


def paper_colour(r: random.Random, tinted: bool) -> RGB:
    base = r.randint(238, 255)
    if not tinted:
        return (base, base, max(225, base - r.randint(0, 8)))
    tint = r.choice(((0, -6, -12), (-8, 0, -6), (-10, -4, 0), (0, -10, -8)))
    return tuple(max(215, min(255, base + t + r.randint(-3, 3))) for t in tint)  # type: ignore[return-value]


def _pick(r: random.Random, faces: list[Face], styles: tuple[str, ...]) -> Face:
    pool = [f for f in faces if f.style in styles] or faces
    return r.choice(pool)


def _style(r: random.Random, faces: list[Face], joined: float = 0.6) -> Style:
    title = _pick(r, faces, ("serif", "kai", "sans", "ming")) if r.random() < 0.7 else r.choice(faces)
    label = r.choice(faces)
    value = label if r.random() < 0.5 else r.choice(faces)
    return Style(
        title_face=title,
        label_face=label,
        value_face=value,
        ink=r.choice(INKS),
        frame=r.choice(_FRAMES) if r.random() < 0.6 else (25, 25, 25),
        colon=r.choice(("：", "：", ":")),
        joined=r.random() < joined,
    )


def _title(c: Canvas, text: str, st: Style, y_top: int, lo: int = 32, hi: int = 40) -> int:
    size = c.size(lo, hi)
    y = y_top + size
    c.text(c.width // 2, y, text, st.title_face, size, st.frame if c.r.random() < 0.5 else st.ink, anchor="ms",
           max_width=c.width - 2 * c.px(200))
    if c.r.random() < 0.4:  # double rule under the title
        w = c.width_of(text, st.title_face, size) // 2 + c.px(10)
        for k in (1, 2):
            yy = y + c.px(8 + 5 * k)
            c.rule(c.width // 2 - w, yy, c.width // 2 + w, yy, st.frame, c.px(2) if k == 1 else 1)
    return c.bottom


def _flow(c: Canvas, texts: list[str], x0: int, x1: int, ncols: int, face: Face, size: int
          ) -> list[tuple[str, int, int, int]]:
    """Strings flowing left to right through ``ncols`` columns, a long one taking two:
    (text, x, row, max_width) for each, in reading order."""
    colw = (x1 - x0) // ncols
    gap = c.px(12)
    out, slot, row = [], 0, 0
    for text in texts:
        need = 1 if c.width_of(text, face, size) <= colw - gap else min(2, ncols)
        if slot + need > ncols:
            slot, row = 0, row + 1
        out.append((text, x0 + slot * colw, row, need * colw - gap))
        slot += need
    return out


def _qr(c: Canvas, x: int, y: int, side: int) -> None:
    c.layout.qr = (x, y, side)
    c.reserve((x, y, x + side, y + side))


# ---------------------------------------------------------------------------------------------


def e_receipt(bill: Bill, c: Canvas) -> Layout:
    r = c.r
    st = _style(r, c.faces)
    m = c.px(r.randint(45, 80))
    W = c.width
    top = m
    if r.random() < 0.7:
        _qr(c, m, m, c.px(r.randint(110, 140)))
    title_bottom = _title(c, bill.title, st, top)
    if r.random() < 0.8:
        c.layout.stamps.append(Stamp("oval", W // 2, title_bottom - c.px(20), "财政部监制", "票据监制章"))

    # header: two columns of label/value pairs
    size = c.size(19, 25)
    rh = round(size * r.uniform(1.6, 1.9))
    left = [p for p in bill.header if p[0] in {"票据代码", "交款人统一社会信用代码", "交款人"}]
    right = [p for p in bill.header if p[0] in {"票据号码", "校验码", "开票日期"}]
    y0 = max(c.bottom, title_bottom) + c.px(r.randint(16, 30))
    rx = round(W * r.uniform(0.56, 0.64))
    for i in range(max(len(left), len(right))):
        y = y0 + (i + 1) * rh - round(rh * 0.3)
        if i < len(left):
            c.pair(m, y, *left[i], st, size, max_width=rx - m - c.px(20))
        if i < len(right):
            c.pair(rx, y, *right[i], st, size, max_width=W - m - rx)

    # item grid: groups of 项目名称 | 金额(元) | 备注
    gsize = c.size(18, 24)
    groups = 3 if bill.kind == "inpatient" or r.random() < 0.5 else 2
    grid_top = c.bottom + c.px(r.randint(14, 24))
    x0, x1 = m, W - m
    gw = (x1 - x0) / groups
    fr = (0.44, 0.34, 0.22) if r.random() < 0.5 else (0.42, 0.38, 0.20)
    cols: list[tuple[int, int]] = []
    for g in range(groups):
        a = x0 + gw * g
        b1, b2 = a + gw * fr[0], a + gw * (fr[0] + fr[1])
        cols += [(round(a), round(b1)), (round(b1), round(b2)), (round(b2), round(a + gw))]
    th = round(gsize * r.uniform(1.7, 2.1))
    heads = ("项目名称", r.choice(("金额(元)", "金额（元）", "金额")), "备注")
    y = grid_top
    for g in range(groups):
        for k in range(3):
            c.cell(*cols[3 * g + k], y, y + th, heads[k], st.label_face, gsize, st.frame, align="center")
    cats = list(bill.categories)
    nrows = max(math.ceil(len(cats) / groups), r.randint(2, 4))
    amount_align = r.choice(("right", "center"))
    for row in range(nrows):
        yt = y + th * (row + 1)
        for g in range(groups):
            i = row * groups + g
            if i >= len(cats):
                continue
            name, amount = cats[i]
            c.cell(*cols[3 * g], yt, yt + th, name, st.value_face, gsize, st.ink, align=r.choice(("left", "center")))
            c.cell(*cols[3 * g + 1], yt, yt + th, bill.m(amount), st.value_face, gsize, st.ink, align=amount_align)
    grid_bottom = y + th * (nrows + 1)
    lw = c.px(r.choice((1, 1, 2)))
    for k in range(nrows + 2):
        c.rule(x0, y + th * k, x1, y + th * k, st.frame, lw)
    for a, _ in cols:
        c.rule(a, grid_top, a, grid_bottom, st.frame, lw)
    c.rule(x1, grid_top, x1, grid_bottom, st.frame, lw)

    # totals row: 金额合计(大写) | words | (小写) figures
    y = grid_bottom
    tb = y + th
    lab_w = round((x1 - x0) * 0.2)
    c.cell(x0, x0 + lab_w, y, tb, r.choice(("金额合计(大写)", "金额合计（大写）", "合计(大写)")), st.label_face, gsize,
           st.frame, align="center")
    split = x0 + round((x1 - x0) * 0.62)
    c.cell(x0 + lab_w, split, y, tb, lx.amount_in_words(bill.total), st.value_face, gsize, st.ink)
    small = r.choice(("(小写)", "（小写）"))
    figures = r.choice((bill.yen, bill.yen, "")) + bill.m(bill.total)
    if r.random() < 0.5:
        c.cell(split, x1, y, tb, small + figures, st.value_face, gsize, st.ink)
    else:
        box = c.cell(split, x1, y, tb, small, st.label_face, gsize, st.frame)
        if box:
            c.cell(box[2] + c.px(40), x1, y, tb, figures, st.value_face, gsize, st.ink, pad=0)
    c.rule(x0 + lab_w, y, x0 + lab_w, tb, st.frame, lw)
    c.rule(split, y, split, tb, st.frame, lw)

    # 其他信息: pairs flowing in columns, one string each
    osize = c.size(18, 22)
    oh = round(osize * r.uniform(1.5, 1.8))
    pairs = [(k, v) for k, v in bill.patient if k not in {"年龄", "床号", "住院天数"} or r.random() < 0.5]
    pairs += [(k, bill.m(v)) for k, v in bill.payments]
    olab_w = c.px(r.randint(70, 110))
    area_x0 = x0 + olab_w + c.px(10)
    texts = [f"{k}{st.colon}{v}" for k, v in pairs]
    spots = _flow(c, texts, area_x0, x1 - c.px(10), r.choice((2, 3, 3)), st.value_face, osize)
    oy = tb + c.px(6)
    other_bottom = oy + (spots[-1][2] + 1) * oh + c.px(6)
    c.cell(x0, x0 + olab_w, tb, other_bottom, "其他信息", st.label_face, osize, st.frame, align="center",
           pad=c.px(4))
    for text, x, row, width in spots:
        y_base = c.baseline_in(st.value_face, osize, oy + row * oh, oy + (row + 1) * oh)
        c.text(x, y_base, text, st.value_face, osize, st.ink, max_width=width)
    c.rule(x0 + olab_w, tb, x0 + olab_w, other_bottom, st.frame, lw)
    c.box_rules(x0, grid_top, x1, other_bottom, st.frame, lw)
    c.rule(x0, tb, x1, tb, st.frame, lw)

    # footer: 收款单位(章) / 复核人 / 收款人
    fsize = c.size(19, 24)
    fy = other_bottom + c.px(r.randint(36, 56)) + fsize
    foot = dict(bill.footer)
    box = c.pair(m, fy, r.choice(("收款单位(章)", "收款单位（章）", "收款单位")), foot["收款单位"], st, fsize,
                 max_width=round(W * 0.5) - m)
    c.pair(round(W * 0.52), fy, "复核人", foot["复核人"], st, fsize, max_width=round(W * 0.2))
    c.pair(round(W * 0.75), fy, "收款人", foot["收款人"], st, fsize, max_width=W - m - round(W * 0.75))
    if box:
        cx = box[2] - c.px(r.randint(60, 140))
        c.layout.stamps.append(Stamp("round", cx, (box[1] + box[3]) // 2 - c.px(r.randint(-10, 30)),
                                     bill.hospital, "收费专用章"))
    return c.finish(margin=r.randint(110, 160))  # room below the footer for its stamp


# ---------------------------------------------------------------------------------------------


def paper_receipt(bill: Bill, c: Canvas) -> Layout:
    """Preprinted form (labels, grid) in one ink; values printed later, offset, in another."""
    r = c.r
    st = _style(r, c.faces, joined=0.0)
    mono = [f for f in c.faces if f.style == "mono"]
    pface = r.choice(mono) if mono and r.random() < 0.7 else st.value_face
    ink = r.choice(((20, 20, 20), (50, 30, 90), (20, 30, 110), (40, 40, 40)))
    fade = r.uniform(0.7, 1.0)
    thin = pface.style in ("mono", "sans") and "Bold" not in pface.name  # bold clogs when dotted
    dots = 2 if thin and c.scale > 0.9 and r.random() < 0.5 else 0  # a dot-matrix head
    W = c.width
    m = c.px(r.randint(50, 80))
    dx, dy = c.px(r.randint(-6, 30)), c.px(r.randint(-9, 9))
    shifts = ((dx, dy), (dx, 0), (0, dy), (0, 0))

    def printed(x: int, y: int, text: str, size: int, *, anchor: str = "ls", max_width: int | None = None):
        return c.text(x, y, text, pface, size, ink, anchor=anchor, max_width=max_width, fade=fade, dots=dots,
                      shifts=shifts)

    title_bottom = _title(c, bill.title.replace("(电子)", ""), st, m, 30, 38)
    size = c.size(19, 24)
    hdr = dict(bill.header)
    y = title_bottom + c.px(20) + size
    c.text(m, y, f"票据代码{st.colon}{hdr['票据代码']}", st.label_face, size, st.frame)
    no = r.choice(("NO.", "No.", "NO:")) + hdr["票据号码"]
    c.text(W - m, y, no, st.label_face, size, (170, 40, 40), anchor="rs")

    # patient row: labels preprinted, values printed after a gap
    pat = dict(bill.patient)
    rows = [[("交款人", hdr["交款人"]), ("性别", pat.get("性别", "")), ("医保类型", pat.get("医保类型", ""))],
            [("门诊号" if "门诊号" in pat else "住院号", pat.get("门诊号") or pat.get("住院号", "")),
             ("科室", pat.get("科室") or pat.get("住院科别", "")), ("日期", hdr["开票日期"])]]
    rh = round(size * 1.9)
    colx = (m, m + round((W - 2 * m) * 0.36), m + round((W - 2 * m) * 0.62))
    for row in rows:
        y += rh
        for i, (k, v) in enumerate(row):
            lim = (colx[i + 1] if i + 1 < len(colx) else W - m) - colx[i] - c.px(10)
            lbox = c.text(colx[i], y, k, st.label_face, size, st.frame, max_width=lim)
            if lbox and v:
                vx = lbox[2] + c.px(r.randint(40, 70))
                room = colx[i] + lim - vx
                if room > size:
                    printed(vx, y, v, size, max_width=room)

    # grid of preprinted categories with printed amounts
    gsize = c.size(19, 24)
    th = round(gsize * r.uniform(1.9, 2.2))
    groups = 2 if r.random() < 0.5 else 3
    x0, x1 = m, W - m
    gw = (x1 - x0) / groups
    top = c.bottom + c.px(18)
    cats = dict(bill.categories)
    names = list(lx.CATEGORIES)
    nrows = max(math.ceil(len(cats) / groups), r.randint(3, 5))
    while len(names) > nrows * groups:  # drop unused preprinted rows from the end
        names.remove(next(n for n in reversed(names) if n not in cats))
    for g in range(groups):
        a = round(x0 + gw * g)
        c.cell(a, round(a + gw * 0.5), top, top + th, "项目", st.label_face, gsize, st.frame, align="center")
        c.cell(round(a + gw * 0.5), round(a + gw), top, top + th, "金额", st.label_face, gsize, st.frame, align="center")
    for row in range(nrows):
        yt = top + th * (row + 1)
        for g in range(groups):
            i = row * groups + g
            if i >= len(names):
                continue
            a = round(x0 + gw * g)
            c.cell(a, round(a + gw * 0.5), yt, yt + th, names[i], st.label_face, gsize, st.frame, align="center")
            if names[i] in cats:
                yb = c.baseline_in(pface, gsize, yt, yt + th)
                printed(round(a + gw * 0.55), yb, bill.m(cats[names[i]]), gsize,
                        max_width=round(gw * 0.45) - c.px(16))
    bottom = top + th * (nrows + 1)
    for k in range(nrows + 2):
        c.rule(x0, top + th * k, x1, top + th * k, st.frame, 1)
    for g in range(groups + 1):
        a = round(x0 + gw * g)
        c.rule(a, top, a, bottom, st.frame, 2 if g in (0, groups) else 1)
        if g < groups:
            c.rule(round(a + gw * 0.5), top, round(a + gw * 0.5), bottom, st.frame, 1)

    # totals and payments, each a preprinted label and a printed value
    y = bottom + c.px(14)
    lines = [("合计(大写)", lx.amount_in_words(bill.total)), ("(小写)", bill.yen + bill.m(bill.total))]
    pays = dict(bill.payments)
    lines += [(k, bill.m(pays[k])) for k in ("医保统筹基金支付", "个人账户支付", "个人现金支付") if k in pays]
    half = (W - 2 * m) // 2
    for i, (k, v) in enumerate(lines):
        if i % 2 == 0:
            y += rh
        x = m + (i % 2) * half
        lbox = c.text(x, y, k, st.label_face, size, st.frame)
        if lbox:
            vx = lbox[2] + c.px(r.randint(36, 60))
            printed(vx, y, v, size, max_width=x + half - vx - c.px(10))
    y += rh + c.px(20)
    foot = dict(bill.footer)
    lbox = c.text(m, y, "收款单位(盖章)", st.label_face, size, st.frame)
    if lbox and r.random() < 0.6:
        printed(lbox[2] + c.px(40), y, foot["收款单位"], size, max_width=round(W * 0.55) - lbox[2])
    c.layout.stamps.append(Stamp("round", m + c.px(r.randint(140, 260)), y - c.px(r.randint(0, 30)),
                                 bill.hospital, r.choice(("收费专用章", "财务专用章"))))
    lbox = c.text(round(W * 0.62), y, "收款人", st.label_face, size, st.frame)
    if lbox:
        printed(lbox[2] + c.px(40), y, foot["收款人"], size, max_width=W - m - lbox[2] - c.px(40))
    return c.finish(margin=r.randint(110, 160))  # room below the footer for its stamp


# ---------------------------------------------------------------------------------------------


def _qty(q: Decimal) -> str:
    return format(q.normalize(), "f")


def itemised(bill: Bill, c: Canvas) -> Layout:
    return itemised_pages(bill, c)[0][0]


def itemised_pages(bill: Bill, c: Canvas, rows_per_page: int = 0) -> list[tuple[Layout, list]]:
    """A 费用清单 as pages, each with the items it prints: one page, or with ``rows_per_page`` as many as
    the rows need. A later page repeats the title, the patient's name and 住院号 and the column header,
    and continues the grid; only the last page holds the totals, payments and footer. The random draws
    of a one-page list are those it always made."""
    r = c.r
    st = _style(r, c.faces, joined=1.0)
    W = c.width
    m = c.px(r.randint(40, 70))
    if r.random() < 0.3:
        top = _title(c, bill.hospital + bill.title, st, m, 30, 38)
    else:
        hs = c.size(26, 34)
        c.text(W // 2, m + hs, bill.hospital, st.title_face, hs, st.ink, anchor="ms")
        top = _title(c, bill.title, st, c.bottom + c.px(10), 30, 38)

    # patient block: 3 or 4 pairs per row
    size = c.size(18, 23)
    rh = round(size * r.uniform(1.6, 1.9))
    hdr = dict(bill.header)
    info = [("姓名", hdr["交款人"])] + [(k, v) for k, v in bill.patient if k not in {"业务流水号", "医疗机构类型"}]
    y0 = top + c.px(16)
    texts = [f"{k}{st.colon}{v}" for k, v in info]
    for text, x, row, width in _flow(c, texts, m, W - m, r.choice((3, 4)), st.label_face, size):
        c.text(x, y0 + (row + 1) * rh, text, st.label_face, size, st.ink, max_width=width)

    # the table
    tsize = c.size(18, 22)
    th = round(tsize * r.uniform(1.55, 1.9))
    four = r.random() < 0.4
    columns = ["项目名称", "规格", "单位", "数量", "单价", "金额"]
    if r.random() < 0.4:
        columns.insert(0, "序号")
    elif r.random() < 0.4:
        columns.insert(0, "日期")
    cls_head = r.choice(("类别", "医保类别", "甲乙类", ""))
    if cls_head:
        columns.append(cls_head)
    cls_fmt = r.choice(("{}", "{}类"))
    grouped = r.random() < 0.7
    items = sorted(bill.items, key=lambda it: lx.CATEGORIES.index(it.charge.category)) if grouped else bill.items
    subtotals = grouped and r.random() < 0.5

    def cells(idx: int, it) -> dict[str, str]:
        return {
            "序号": str(idx + 1), "日期": it.day, "项目名称": it.charge.name, "规格": it.spec,
            "单位": it.charge.unit, "数量": _qty(it.qty), "单价": f"{it.price:.4f}" if four else f"{it.price:.2f}",
            "金额": bill.m(it.amount), cls_head: cls_fmt.format(it.charge.cls) if cls_head else "",
        }

    rows = [cells(i, it) for i, it in enumerate(items)]
    pad = c.px(8)
    need = {col: max([c.width_of(col, st.label_face, tsize)] + [c.width_of(rw[col], st.value_face, tsize)
                                                                  for rw in rows if rw[col]]) + 2 * pad
            for col in columns}
    avail = W - 2 * m
    over = sum(need.values()) - avail
    if over > 0:  # long names: the name column gives way first (its cells shrink or cut their text)
        need["项目名称"] = max(need["项目名称"] - over, round(avail * 0.22))
    scale = avail / sum(need.values())
    xs = [m]
    for col in columns:
        xs.append(xs[-1] + need[col] * scale)
    xs = [round(x) for x in xs]
    xs[-1] = W - m
    align = {"项目名称": "left", "规格": "left", "金额": "right", "单价": "right", "数量": "right"}
    rule_style = r.choice(("grid", "rows", "open"))

    y = c.bottom + c.px(20)
    table_top = y
    for j, col in enumerate(columns):
        c.cell(xs[j], xs[j + 1], y, y + th, col, st.label_face, tsize, st.frame, align="center", pad=pad)
    y += th
    c.rule(m, table_top, W - m, table_top, st.frame, c.px(2))
    c.rule(m, y, W - m, y, st.frame, 1)
    prev_cat = None
    running = Decimal(0)
    pages: list[tuple[Layout, list]] = []
    on_page: list = []  # the items of the page being drawn
    n_rows = len(items) + (len({it.charge.category for it in items}) if subtotals else 0)
    n_pages = -(-n_rows // rows_per_page) if rows_per_page else 1
    page_no = r.choice(("第{k}页/共{n}页", "第{k}页共{n}页", "第{k}页")) if n_pages > 1 else ""
    drawn = 0

    def close_grid(y: int) -> None:
        c.rule(m, y, W - m, y, st.frame, c.px(2))
        if rule_style == "grid":
            for x in xs:
                c.rule(x, table_top, x, y, st.frame, 1)

    def row_room(y: int) -> int:
        """Before each row: past a full page, close it and start the next one with the grid's header."""
        nonlocal c, table_top, drawn, on_page
        drawn += 1
        if not rows_per_page or drawn <= rows_per_page * (len(pages) + 1):
            return y
        close_grid(y)
        c.text(W - m, y + rh + c.px(20), page_no.format(k=len(pages) + 1, n=n_pages), st.label_face, size, st.ink,
               anchor="rs")
        pages.append((c.finish(min_height=round(W * 1.414), margin=r.randint(40, 80)), on_page))
        c, on_page = Canvas(W, r, c.faces, c.layout.paper, c.layout.template), []
        y = _title(c, f"{bill.title}(续)", st, m, 26, 32) + c.px(12) + size
        c.text(m, y, f"姓名{st.colon}{hdr['交款人']}", st.label_face, size, st.ink)
        who = dict(bill.patient)
        if "住院号" in who:
            c.text(round(W * 0.4), y, f"住院号{st.colon}{who['住院号']}", st.label_face, size, st.ink)
        y = c.bottom + c.px(20)
        table_top = y
        for j, col in enumerate(columns):
            c.cell(xs[j], xs[j + 1], y, y + th, col, st.label_face, tsize, st.frame, align="center", pad=pad)
        c.rule(m, y, W - m, y, st.frame, c.px(2))
        c.rule(m, y + th, W - m, y + th, st.frame, 1)
        return y + th

    def subtotal_row(cat: str, value: Decimal, y: int) -> int:
        c.cell(xs[columns.index("项目名称")], xs[columns.index("项目名称") + 1], y, y + th, f"{cat}小计", st.label_face,
               tsize, st.ink, pad=pad)
        j = columns.index("金额")
        c.cell(xs[j], xs[j + 1], y, y + th, bill.m(value), st.value_face, tsize, st.ink, align="right", pad=pad)
        if rule_style != "open":
            c.rule(m, y + th, W - m, y + th, st.frame, 1)
        return y + th

    for it, rw in zip(items, rows):
        cat = it.charge.category
        if subtotals and prev_cat is not None and cat != prev_cat:
            y = subtotal_row(prev_cat, running, row_room(y))
            running = Decimal(0)
        prev_cat = cat
        running += it.amount
        y = row_room(y)
        on_page.append(it)
        for j, col in enumerate(columns):
            c.cell(xs[j], xs[j + 1], y, y + th, rw[col], st.value_face, tsize, st.ink, align=align.get(col, "center"),
                   pad=pad)
        y += th
        if rule_style != "open":
            c.rule(m, y, W - m, y, st.frame, 1)
    if subtotals and prev_cat is not None:
        y = subtotal_row(prev_cat, running, row_room(y))
    close_grid(y)

    # totals, payments, footer
    y += c.px(10)
    j = columns.index("金额")
    c.cell(xs[0], xs[2], y, y + th, r.choice(("合计", "费用合计", "总计")), st.label_face, tsize, st.ink, pad=pad)
    c.cell(xs[j], xs[j + 1], y, y + th, bill.m(bill.total), st.value_face, tsize, st.ink, align="right", pad=pad)
    y += th + rh
    c.text(m, y, f"金额合计(大写){st.colon}{lx.amount_in_words(bill.total)}", st.label_face, size, st.ink,
           max_width=round(W * 0.6))
    c.text(round(W * 0.64), y, f"(小写){st.colon}{bill.yen}{bill.m(bill.total)}", st.label_face, size, st.ink,
           max_width=W - m - round(W * 0.64))
    pays = [(k, bill.m(v)) for k, v in bill.payments if k not in {"其他支付", "大病保险"}]
    ncols = 3
    colw = (W - 2 * m) // ncols
    for i, (k, v) in enumerate(pays):
        if i % ncols == 0:
            y += rh
        c.text(m + (i % ncols) * colw, y, f"{k}{st.colon}{v}", st.label_face, size, st.ink, max_width=colw - c.px(12))
    y += rh + c.px(20)
    foot = dict(bill.footer)
    c.text(m, y, f"打印日期{st.colon}{hdr['开票日期']}", st.label_face, size, st.ink)
    c.text(round(W * 0.4), y, f"制表人{st.colon}{foot['收款人']}", st.label_face, size, st.ink)
    last = r.choice(("第1页/共1页", "第1页共1页", "第1页"))
    box = c.text(W - m, y, page_no.format(k=n_pages, n=n_pages) if page_no else last, st.label_face, size, st.ink,
                 anchor="rs")
    if r.random() < 0.5:
        cx = round(W * r.uniform(0.55, 0.8))
        c.layout.stamps.append(Stamp("round", cx, (box[1] if box else y) - c.px(60), bill.hospital, "费用清单专用章"))
    return [*pages, (c.finish(min_height=round(W * 1.414), margin=r.randint(40, 80)), on_page)]


def build_pages(bill: Bill, r: random.Random, faces: list[Face], width: int, rows_per_page: int
                ) -> list[tuple[Layout, list]]:
    """A long 费用清单 laid out over pages of ``rows_per_page`` grid rows: (layout, its items) per page."""
    canvas = Canvas(width, r, faces, paper_colour(r, r.random() < 0.2), itemised.__name__)
    return itemised_pages(bill, canvas, rows_per_page)


def build(bill: Bill, r: random.Random, faces: list[Face], width: int) -> Layout:
    """Lay a bill out on a page of the given width with a template that suits its kind."""
    if bill.kind == "itemised":
        template, tinted = itemised, r.random() < 0.2
    elif r.random() < (0.3 if bill.kind == "inpatient" else 0.5):
        template, tinted = paper_receipt, r.random() < 0.7
    else:
        template, tinted = e_receipt, r.random() < 0.3
    canvas = Canvas(width, r, faces, paper_colour(r, tinted), template.__name__)
    return template(bill, canvas)
